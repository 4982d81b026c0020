"""Reciprocal rank fusion: one ranking out of several, from ranks alone (Cormack, Clarke and Büttcher, 2009).

BM25 scores and cosine similarities live on scales that cannot be added; ranks can. Each ranking gives a
record 1 / (k + rank), rank counted from 1, and a record's fused score is the sum over the rankings that
hold it. k = 60 is the paper's value (and Elasticsearch's, Qdrant's and Weaviate's default): it keeps the
first few places of one ranking from outweighing agreement between rankings.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = 60

Key = TypeVar("Key", bound=Hashable)


def fuse(rankings: Sequence[Sequence[Key]], k: int = K) -> list[tuple[Key, float]]:
    """Every key of the rankings (each best first, without repeats) with its fused score, best first;
    a tie keeps the order in which the keys were first met, ranking by ranking."""
    scores: dict[Key, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
