"""i8 copies of a namespace's rows, each with a bound on how far it is from its row, so that an exact search
reads a quarter of the float32 rows' bytes, in integer dot products (numkong's kernels: AVX-512 VNNI, AVX2,
NEON), and still returns exactly what scoring every row in float32 returns.

Why the answer stays exact. A row y (of unit length for cosine) is held as c = round(y s), on one scale s
fitted to the namespace's values (`fitted_scale`), with the norm r of its error e = y - c / s. A query z is
coded on its own scale t (its largest component to 127), as c_q with an error d of norm rho. Then

    y . z = (c . c_q) / (s t) + (c / s) . d + e . z,   |(c / s) . d + e . z| <= (|y| + r) rho + r |z|

(Cauchy-Schwarz), so a row's score lies within a slack of its coded estimate that is known per row.
`contenders` scores k rows of high estimate exactly (the witnesses): the k-th best true score is at least the
lowest of theirs. Only a row whose estimate plus slack reaches that can be among the k best, and those few
are scored exactly by the caller. A clipped value (beyond the fitted range) only widens its row's slack.

Measured at 100,000 x 384 on 2 cores (bench.vectors's shapes, held-out queries): the same top 10 as the
float32 scan for every query, from 18 (uniform), 23 (anisotropic) and 327 (mixture) rows scored exactly at
the median; 3.1-4.2 ms in all against numpy's 8.9-11.8 ms, of which the integer scan 1.8 ms.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import numkong
import numpy as np

from daemon.stores.vectors.arena import close_up, grown

FIT_QUANTILE = 0.9999  # of the values' magnitudes, coded as 127: the rarer ones beyond it are clipped
FIT_SAMPLE = 2_000  # rows a scale is fitted on, spread over the namespace (768,000 values at 384 dimensions)
# A scan of fewer rows goes in float32: the coded one's fixed costs (the witnesses, the slack) win nothing.
MIN_ROWS = 4_096
# ...but rows gathered from all over the namespace (a filter's, the partition's lists') are read at memory's latency,
# a float32 row 24 cache lines and its copy 6: from about 500 of 100,000 x 384 on, the copies win (1,000 rows
# 0.39 ms in float32 against 0.22; 4,000, 1.32 against 0.52).
MIN_GATHERED = 512
# Witnesses are the rows of highest estimate one per block of this many: a pass over the estimates, where
# a partition of all of them to find the k highest cost 0.43 ms of a 100,000-row search.
WITNESS_BLOCK = 256
# Scores are float32 sums of hundreds of products: a margin for their rounding, relative to their terms.
ROUNDING = 1e-4
Scorer = Callable[[np.ndarray], np.ndarray]  # positions -> their exact scores


def in_blocks(count: int, blocks: int, pool: Executor | None, work: Callable[[int, int], None]) -> None:
    """work(start, stop) over [0, count) in `blocks` parts of even size, all but the first on `pool` (None: in
    one part, here), the first on this thread. Returns once every part is done, a failed one too: no part may
    write into its caller's arrays after this returns."""
    if pool is None:
        work(0, count)
        return
    bounds = [count * b // blocks for b in range(blocks + 1)]
    pending = [pool.submit(work, start, stop) for start, stop in zip(bounds[1:-1], bounds[2:])]
    try:
        work(bounds[0], bounds[1])
    finally:
        for future in pending:
            future.result()


def fitted_scale(sample: np.ndarray) -> float:
    """The scale that codes `sample`'s values (and values like them) as i8: its FIT_QUANTILE to 127."""
    top = float(np.quantile(np.abs(sample), FIT_QUANTILE)) if sample.size else 0.0
    return 127.0 / top if top > 0 else 127.0


class Codes:
    """The i8 copies of a namespace's rows, by slot (kept in step with the shelf's), and their errors."""

    def __init__(self, scale: float, dimension: int, capacity: int) -> None:
        self.scale = scale
        self.rows = np.empty((capacity, dimension), dtype=np.int8)
        self.error = np.empty(capacity, dtype=np.float32)  # |y - c / s| of each row
        self.length = 0.0  # at least the norm of every row coded (a removal leaves it: it only bounds)

    def put(self, slots: np.ndarray, rows: np.ndarray) -> None:
        """Code these rows (as searched: of unit length for cosine) into these slots."""
        codes = np.clip(np.rint(rows * np.float32(self.scale)), -127, 127)
        self.rows[slots] = codes
        error = rows - codes * np.float32(1.0 / self.scale)
        self.error[slots] = np.sqrt(np.einsum("ij,ij->i", error, error))
        if len(rows):
            self.length = max(self.length, float(np.sqrt(np.einsum("ij,ij->i", rows, rows).max())))

    def estimates(self, query: np.ndarray, slots: np.ndarray | None, n: int, blocks: int = 1,
                  pool: Executor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each row's coded estimate of its dot product with `query` (as searched), and the most it can be
        off by, over `slots` (None: the first n); in `blocks` at once, all but the first on `pool` (numkong
        lets go of the GIL: 100,000 rows 1.8 ms on one thread, 1.2-1.4 on two). Each block gathers its own
        rows of `slots`: a gather waits on memory, and two wait in parallel (10,000 rows of 384 not in the
        cache: 0.92-0.96 ms in one block, 0.72-0.79 in two)."""
        top = float(np.abs(query).max())
        scale = 127.0 / top if top > 0 else 1.0
        coded = np.rint(query * np.float32(scale)).astype(np.int8)
        miss = float(np.linalg.norm(query - coded * np.float32(1.0 / scale)))
        # Read once: a live check runs this in a thread, and a write may replace the arrays meanwhile.
        codes, errors = self.rows, self.error
        count = n if slots is None else len(slots)
        estimate = np.empty(count, dtype=np.float32)

        def block(start: int, stop: int) -> None:
            # np.take gathers rows in about 0.6 of the time of indexing with `slots` (6,250 of 100,000 x 384:
            # 0.16 against 0.25 ms)
            rows = codes[start:stop] if slots is None else np.take(codes, slots[start:stop], axis=0)
            numkong.inner(rows, coded, out=estimate[start:stop], out_dtype="float32")

        in_blocks(count, blocks, pool, block)
        error = errors[:n] if slots is None else errors[slots]
        estimate *= np.float32(1.0 / (self.scale * scale))
        slack = error * np.float32(miss + float(np.linalg.norm(query)))
        slack += np.float32(self.length * miss)
        return estimate, slack

    # Kept in step with the shelf's slots.

    def grown(self, capacity: int, used: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows and their errors with room for `capacity` (the first `used` kept), to take()."""
        return grown(self.rows, capacity, used=used), grown(self.error, capacity, used=used)

    def take(self, arrays: tuple[np.ndarray, np.ndarray]) -> None:
        self.rows, self.error = arrays

    def move(self, slot: int, last: int) -> None:
        self.rows[slot] = self.rows[last]
        self.error[slot] = self.error[last]

    def keep(self, kept: np.ndarray, n: int) -> None:
        close_up(self.rows, kept, n)
        close_up(self.error, kept, n)

    def saved(self, n: int) -> dict[str, np.ndarray]:
        return {"rows": self.rows[:n], "error": self.error[:n], "scale": np.asarray(self.scale),
                "length": np.asarray(self.length)}

    @staticmethod
    def restored(arrays: dict[str, np.ndarray]) -> Codes:
        codes = Codes(float(arrays["scale"]), arrays["rows"].shape[1], 0)
        codes.rows, codes.error, codes.length = arrays["rows"], arrays["error"], float(arrays["length"])
        return codes

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.error.nbytes


def contenders(estimate: np.ndarray, slack: np.ndarray, k: int, exact: Scorer, magnitude: float) -> np.ndarray:
    """The positions (of `estimate`) whose true score may be among the k best: every one of them for sure.
    `exact` scores positions exactly; the caller then ranks what this returns. `magnitude`: how large the
    terms of a score can be (|x| |q| for a dot product; a squared distance's terms are larger than itself), as
    float32 rounds in proportion to them. Uses `estimate` as scratch."""
    count = len(estimate)
    if count <= WITNESS_BLOCK * k:
        witnesses = np.argpartition(-estimate, k - 1)[:k]
    else:
        whole = count - count % WITNESS_BLOCK
        best = estimate[:whole].reshape(-1, WITNESS_BLOCK).argmax(axis=1)
        best += np.arange(0, whole, WITNESS_BLOCK)
        witnesses = best[np.argpartition(-estimate[best], k - 1)[:k]]
    floor = float(exact(witnesses).min())
    floor -= ROUNDING * (1.0 + abs(floor) + magnitude)
    estimate += slack
    return np.flatnonzero(estimate >= floor)
