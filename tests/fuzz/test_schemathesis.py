"""Schemathesis (v4) against a real bastiond: its own /openapi.json, an admin's bearer token, every
check, and all four phases including the stateful one (following the links between operations).

The fuzzer is an admin, so it can end its own access: log out, change or reset its password, revoke its
session, disable or delete itself once it has created a second admin. A run that did so would test the
rest of the API with a dead token and prove nothing. So the API is fuzzed in two runs, each against a
fresh daemon: everything else with the token kept alive (a run in which operations saw only 401s
fails), then the operations that can end the fuzzer's access by themselves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_process import start

CONFIG = Path(__file__).with_name("schemathesis.toml")
SELF_ENDING = [
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/auth/password-reset"),
    ("DELETE", "/api/v1/auth/sessions/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
]
# RFC 8628 section 3.5: a device polling for its tokens hears 400 (authorization_pending, slow_down,
# expired_token, access_denied) for requests its schema accepts, an unknown device code among them, which the
# positive-data check counts as a failure. Fuzzed on their own, with every other check.
ANSWERS_400_BY_DESIGN = [("POST", "/api/v1/auth/device/token")]
BUDGET_S = 300


def _names(operations: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in operations]


def _fuzz(tmp_path: Path, *selection: str) -> str:
    # Rate limits off: the fuzzer sends far more than a client may, and 429s would hide the answers.
    daemon = start(tmp_path / "data", BASTION_RATE_LIMIT_PER_MINUTE="0", BASTION_AUTH_RATE_LIMIT_PER_MINUTE="0",
                   BASTION_ACCESS_TOKEN_TTL_S="3600")
    try:
        daemon.create_admin()
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
            "run", f"{daemon.url}/openapi.json",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--header", f"Authorization: Bearer {daemon.admin_token()}", "--workers", "2", "--no-color",
            *selection,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUDGET_S, cwd=tmp_path)
    finally:
        daemon.stop()
    report = done.stdout[-12000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    errors = [line for line in daemon.log.read_text().splitlines() if "unhandled error" in line]
    assert not errors, "\n".join(errors[:5])
    return done.stdout


def test_the_api_passes_every_check_in_every_phase_with_a_live_admin_token(tmp_path: Path) -> None:
    excluded = [arg for name in _names(SELF_ENDING + ANSWERS_400_BY_DESIGN) for arg in ("--exclude-name", name)]
    output = _fuzz(tmp_path, *excluded)
    # The token stayed good to the end, and the stateful phase really followed links.
    assert "Authentication failed" not in output, output[-6000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-6000:]
    assert " 0 covered" not in output, output[-6000:]


@pytest.mark.parametrize("operation", _names(SELF_ENDING))
def test_the_operations_that_can_end_the_fuzzers_own_access_pass_every_check(tmp_path: Path, operation: str) -> None:
    _fuzz(tmp_path, "--include-name", operation)


@pytest.mark.parametrize("operation", _names(ANSWERS_400_BY_DESIGN))
def test_the_operations_that_answer_400_by_design_pass_every_other_check(tmp_path: Path, operation: str) -> None:
    _fuzz(tmp_path, "--include-name", operation, "--exclude-checks", "positive_data_acceptance")
