"""QR codes of otpauth:// and device-login URIs: drawn in a terminal (the CLI, the console) or as SVG (the web view).

In a terminal two rows of modules share one line of half blocks. Light modules are drawn filled, so the
code reads as dark on light on the usual dark terminal, as a phone's camera expects.
"""

from __future__ import annotations

import segno

_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def terminal_qr(data: str) -> str:
    """The QR code of `data` as lines of text, with the quiet zone (two modules) around it."""
    rows = [[not dark for dark in row] for row in segno.make(data, error="m").matrix_iter(border=2)]
    if len(rows) % 2:
        rows.append([True] * len(rows[0]))
    return "\n".join(
        "".join(_HALF_BLOCKS[(top, bottom)] for top, bottom in zip(rows[i], rows[i + 1]))
        for i in range(0, len(rows), 2)
    )


def svg_qr(data: str) -> str:
    """An inline <svg> element (no XML declaration) for a page."""
    return segno.make(data, error="m").svg_inline(scale=4, border=2)
