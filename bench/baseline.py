"""The baseline: a bare aiohttp handler that returns a fixed JSON body, on the event loop bastiond uses.

`python -m bench.baseline PORT BODY_FILE [SPEND_US]` serves the body at every GET path. Nothing else runs
in the request path (no middlewares, no access log), so the ratio to it is what Bastion's pipeline costs.
SPEND_US: microseconds of CPU spent in each request before answering, so that the bare server runs at
Bastion's rate and its latencies show what that rate alone costs on this machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from aiohttp import web

from daemon.cli import _use_uvloop


def main(port: int, body: bytes, spend_us: float = 0.0) -> None:
    spend_s = spend_us / 1e6

    async def answer(request: web.Request) -> web.Response:
        if spend_s:
            until = time.perf_counter() + spend_s
            while time.perf_counter() < until:
                pass
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    _use_uvloop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes(), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
