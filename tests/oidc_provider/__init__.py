"""A real OpenID Connect provider for the single sign-on tests: the npm package oidc-provider, run by Node.js
from provider.mjs beside this file (`npm ci` here installs it; .ci/run does).

Its issuer is http://localhost:PORT, another site than the daemon's http://127.0.0.1:PORT, as a real
provider's is: the browser then treats the way back to the daemon as a cross-site navigation.
"""

from __future__ import annotations

import select
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

HERE = Path(__file__).resolve().parent
CLIENT_ID = "bastion-test"
CLIENT_SECRET = "bastion-test-client-secret"
START_WAIT_S = 30.0


@dataclass(frozen=True)
class RunningProvider:
    issuer: str
    client_id: str
    client_secret: str


@contextmanager
def provider(redirect_uri: str) -> Iterator[RunningProvider]:
    """The provider, with one client (CLIENT_ID) that may come back to `redirect_uri`. Its test accounts
    (provider.mjs): carol, alice (verified, example.com), mallory (unverified), eve (another domain)."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
        raise AssertionError("the test provider needs Node.js and `npm ci --prefix tests/oidc_provider` "
                             "(.ci/run does both)")
    port = free_port()
    process = subprocess.Popen([node, str(HERE / "provider.mjs"), str(port), CLIENT_ID, CLIENT_SECRET, redirect_uri],
                               cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], START_WAIT_S)
        line = process.stdout.readline() if ready else ""  # "listening", or nothing when it died
        if line.strip() != "listening":
            raise AssertionError(f"the OpenID provider did not start (exit {process.poll()})")
        yield RunningProvider(f"http://localhost:{port}", CLIENT_ID, CLIENT_SECRET)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
