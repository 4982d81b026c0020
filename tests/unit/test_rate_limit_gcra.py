"""The pure GCRA step both cache backends share (their behaviour is in tests/contract/test_cache.py)."""

from daemon.stores.cache import gcra


def test_a_burst_of_the_whole_limit_is_allowed_then_one_interval_must_pass():
    tat, first = gcra(None, 0.0, 4, 4.0, 4)
    assert first.allowed and first.remaining == 0
    _, second = gcra(tat, 0.0, 4, 4.0, 1)
    assert not second.allowed and second.retry_after_s == 1.0
    _, later = gcra(tat, 1.0, 4, 4.0, 1)
    assert later.allowed and later.remaining == 0


def test_an_idle_key_is_a_full_bucket_again():
    tat, _ = gcra(None, 0.0, 10, 60.0, 10)
    _, decision = gcra(tat, 1000.0, 10, 60.0, 1)
    assert decision.allowed and decision.remaining == 9 and decision.reset_s == 6.0
