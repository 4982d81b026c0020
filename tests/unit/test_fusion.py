"""Reciprocal rank fusion (daemon/services/fusion.py)."""

from __future__ import annotations

import pytest

from daemon.services.fusion import fuse


def test_each_ranking_gives_one_over_k_plus_rank():
    fused = dict(fuse([["a", "b"], ["b", "c"]]))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)


def test_agreement_beats_one_first_place():
    # "both" is second in each ranking; "v" and "w" are each first in one only.
    assert fuse([["v", "both"], ["w", "both"]])[0][0] == "both"


def test_best_first_and_ties_keep_the_order_first_met():
    assert [key for key, _ in fuse([["x", "y"], ["p", "q"]])] == ["x", "p", "y", "q"]


def test_a_single_ranking_keeps_its_order():
    assert [key for key, _ in fuse([["c", "a", "b"]])] == ["c", "a", "b"]


def test_k_is_a_parameter():
    assert dict(fuse([["a"]], k=1))["a"] == pytest.approx(0.5)


def test_no_rankings_fuse_to_nothing():
    assert fuse([]) == [] and fuse([[], []]) == []
