from daemon.pipeline import pipeline
from daemon.settings import Settings


def test_the_stages_run_in_the_designed_order():
    names = [m.__module__.rsplit(".", 1)[-1] for m in pipeline(Settings.from_env({}))]
    assert names == [
        "request_context",
        "access_log",
        "security_headers",
        "errors",
        "rate_limit",
        "authentication",
        "validation",
        "transform",
    ]
