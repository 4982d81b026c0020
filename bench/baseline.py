"""The baseline: a bare aiohttp handler that returns a fixed JSON body, on the event loop bastiond uses.

`python -m bench.baseline PORT BODY_FILE` serves the body at every GET path. Nothing else runs in the
request path (no middlewares, no access log), so the ratio to it is what Bastion's pipeline costs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

from daemon.cli import _use_uvloop


def main(port: int, body: bytes) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    _use_uvloop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes())
