"""The QR codes drawn in the terminal are the codes segno makes, module for module."""

from __future__ import annotations

import segno

from shared.qr import svg_qr, terminal_qr

URI = "otpauth://totp/Bastion:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Bastion"
_TOP = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}


def test_the_terminal_drawing_holds_every_module_light_ones_filled() -> None:
    drawn = terminal_qr(URI).splitlines()
    light = [[not dark for dark in row] for row in segno.make(URI, error="m").matrix_iter(border=2)]
    read = []
    for line in drawn:
        pairs = [_TOP[ch] for ch in line]
        read += [[top for top, _ in pairs], [bottom for _, bottom in pairs]]
    assert read[:len(light)] == light
    assert all(all(row) for row in read[len(light):])  # the padding row, if any, is quiet zone


def test_the_svg_is_an_inline_element() -> None:
    svg = svg_qr(URI)
    assert svg.startswith("<svg") and "<?xml" not in svg
