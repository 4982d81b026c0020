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

The copies also give each row one bit a dimension, the sign of its code about the codes' mean (`Codes.signs`):
where no graph width reaches the recall target (uniform data), the sign scan (`nearest_by_signs`) proposes a
share of the rows by Hamming distance to the query's bits, 48 bytes a row at 384 dimensions, and only those
are searched as above. That answer is not exact; its recall is measured like a graph's (local.py).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import threading

import numkong
import numpy as np

from daemon.stores.vectors.arena import close_up, grown

FIT_QUANTILE = 0.9999  # of the values' magnitudes, coded as 127: the rarer ones beyond it are clipped
FIT_SAMPLE = 2_000  # rows a scale is fitted on, spread over the namespace (768,000 values at 384 dimensions)
# A scan of fewer rows goes in float32: the coded one's fixed costs (the witnesses, the slack) win nothing.
MIN_ROWS = 4_096
# Witnesses are the rows of highest estimate one per block of this many: a pass over the estimates, where
# a partition of all of them to find the k highest cost 0.43 ms of a 100,000-row search.
WITNESS_BLOCK = 256
# Scores are float32 sums of hundreds of products: a margin for their rounding, relative to their terms.
ROUNDING = 1e-4
Scorer = Callable[[np.ndarray], np.ndarray]  # positions -> their exact scores
# Rows whose sign bits numkong packs together for its Hamming kernel, which reads a packed matrix 5-10x as
# fast as the rows' bits as they are (100,000 x 384: 0.4-0.8 ms against 2.2; packing them 6 ms): a write
# repacks only its rows' blocks, when a query next reads them.
SIGN_BLOCK = 32_768
# Shares of the rows the sign scan may propose, narrowest first; wider than an eighth, the exact scan costs
# about as much. On uniform data at 100,000 x 384, a 16th held 0.98 of the true top 10.
SIGN_SHARES = (1 / 64, 1 / 32, 1 / 16, 1 / 8)


def next_share(share: float) -> float | None:
    wider = [s for s in SIGN_SHARES if s > share]
    return wider[0] if wider else None


def fitted_scale(sample: np.ndarray) -> float:
    """The scale that codes `sample`'s values (and values like them) as i8: its FIT_QUANTILE to 127."""
    top = float(np.quantile(np.abs(sample), FIT_QUANTILE)) if sample.size else 0.0
    return 127.0 / top if top > 0 else 127.0


class Codes:
    """The i8 copies of a namespace's rows, by slot (kept in step with the shelf's), and their errors."""

    def __init__(self, scale: float, dimension: int, capacity: int, centre: np.ndarray) -> None:
        self.scale = scale
        self.rows = np.empty((capacity, dimension), dtype=np.int8)
        self.error = np.empty(capacity, dtype=np.float32)  # |y - c / s| of each row
        self.length = 0.0  # at least the norm of every row coded (a removal leaves it: it only bounds)
        # The sign of each code about `centre` (the codes' mean, fitted once), a bit a dimension: about the
        # mean, since data all on one side of zero would get the same bits everywhere.
        self.centre = centre.astype(np.int8)
        self.signs = np.empty((capacity, (dimension + 7) // 8), dtype=np.uint8)
        self._packed: dict[int, tuple[int, int, object]] = {}  # block -> (its version, rows, numkong's pack)
        self._versions: dict[int, int] = {}  # bumped by every write into a block
        self._lock = threading.Lock()  # a measurement in a thread reads the packs while the loop writes

    @staticmethod
    def fitted(sample: np.ndarray, capacity: int) -> Codes:
        """Codes for rows like `sample` (as searched), with room for `capacity`."""
        scale = fitted_scale(sample)
        centre = np.clip(np.rint(sample.mean(axis=0) * scale), -127, 127) if len(sample) else np.zeros(sample.shape[1])
        return Codes(scale, sample.shape[1], capacity, centre)

    def put(self, slots: np.ndarray, rows: np.ndarray) -> None:
        """Code these rows (as searched: of unit length for cosine) into these slots."""
        codes = np.clip(np.rint(rows * np.float32(self.scale)), -127, 127)
        self.rows[slots] = codes
        error = rows - codes * np.float32(1.0 / self.scale)
        self.error[slots] = np.sqrt(np.einsum("ij,ij->i", error, error))
        if len(rows):
            self.length = max(self.length, float(np.sqrt(np.einsum("ij,ij->i", rows, rows).max())))
        self.signs[slots] = np.packbits(codes > self.centre, axis=1)
        self._written(np.unique(np.asarray(slots) // SIGN_BLOCK).tolist())

    def _written(self, blocks: list[int]) -> None:
        with self._lock:
            for block in blocks:
                self._versions[block] = self._versions.get(block, 0) + 1
                self._packed.pop(block, None)

    def _pack(self, block: int, n: int) -> object:
        """numkong's pack of the sign bits of rows [block x SIGN_BLOCK, ...) of the first n, current."""
        rows = min(n, (block + 1) * SIGN_BLOCK) - block * SIGN_BLOCK
        with self._lock:
            version = self._versions.get(block, 0)
            held = self._packed.get(block)
        if held is not None and held[0] == version and held[1] == rows:
            return held[2]
        packed = numkong.hammings_pack(self.signs[block * SIGN_BLOCK : block * SIGN_BLOCK + rows])
        with self._lock:  # kept only if no write came into the block while it was packed
            if self._versions.get(block, 0) == version:
                self._packed[block] = (version, rows, packed)
        return packed

    def nearest_by_signs(self, query: np.ndarray, n: int, count: int) -> np.ndarray:
        """The slots (sorted) of the `count` of the first n rows whose sign bits differ least from the query's
        (`query` as searched), ties at the cut taken in slot order."""
        bits = np.packbits(query * np.float32(self.scale) > self.centre)[None, :]
        distances = np.concatenate([
            np.asarray(numkong.hammings_packed(bits, self._pack(block, n)))[0]
            for block in range((n + SIGN_BLOCK - 1) // SIGN_BLOCK)
        ])
        if count >= n:
            return np.arange(n)
        # The distances are small integers: the cut is found in a histogram, cheaper than a partition.
        cut = int(np.searchsorted(np.cumsum(np.bincount(distances)), count))
        below = np.flatnonzero(distances < cut)
        return np.sort(np.concatenate([below, np.flatnonzero(distances == cut)[: count - len(below)]]))

    def estimates(self, query: np.ndarray, slots: np.ndarray | None, n: int, blocks: int = 1,
                  pool: Executor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each row's coded estimate of its dot product with `query` (as searched), and the most it can be
        off by, over `slots` (None: the first n); in `blocks` at once, all but the first on `pool` (numkong
        lets go of the GIL: 100,000 rows 1.8 ms on one thread, 1.2-1.4 on two)."""
        top = float(np.abs(query).max())
        scale = 127.0 / top if top > 0 else 1.0
        coded = np.rint(query * np.float32(scale))
        miss = float(np.linalg.norm(query - coded * np.float32(1.0 / scale)))
        # np.take gathers rows in about 0.6 of the time of indexing with `slots` (6,250 of 100,000 x 384: 0.16
        # against 0.25 ms)
        rows, error = (self.rows[:n], self.error[:n]) if slots is None else (np.take(self.rows, slots, axis=0),
                                                                             self.error[slots])
        estimate = np.empty(len(rows), dtype=np.float32)
        coded = coded.astype(np.int8)
        bounds = [len(rows) * b // blocks for b in range(blocks + 1)]
        pending = [pool.submit(numkong.inner, rows[start:stop], coded, out=estimate[start:stop], out_dtype="float32")
                   for start, stop in zip(bounds[1:-1], bounds[2:])] if pool is not None else []
        try:
            numkong.inner(rows[: bounds[1]], coded, out=estimate[: bounds[1]], out_dtype="float32")
        finally:
            for future in pending:  # always: a block must not write into `estimate` after this returns
                future.result()
        estimate *= np.float32(1.0 / (self.scale * scale))
        slack = error * np.float32(miss + float(np.linalg.norm(query)))
        slack += np.float32(self.length * miss)
        return estimate, slack

    # Kept in step with the shelf's slots.

    def grown(self, capacity: int, used: int) -> tuple[np.ndarray, ...]:
        """The rows, their errors and signs with room for `capacity` (the first `used` kept), to take()."""
        return tuple(grown(array, capacity, used=used) for array in (self.rows, self.error, self.signs))

    def take(self, arrays: tuple[np.ndarray, ...]) -> None:
        self.rows, self.error, self.signs = arrays  # the same rows: the packs stay current

    def move(self, slot: int, last: int) -> None:
        self.rows[slot] = self.rows[last]
        self.error[slot] = self.error[last]
        self.signs[slot] = self.signs[last]
        self._written([slot // SIGN_BLOCK, last // SIGN_BLOCK])

    def keep(self, kept: np.ndarray, n: int) -> None:
        for array in (self.rows, self.error, self.signs):
            close_up(array, kept, n)
        self._written(list(range((n + SIGN_BLOCK - 1) // SIGN_BLOCK)))

    def saved(self, n: int) -> dict[str, np.ndarray]:
        return {"rows": self.rows[:n], "error": self.error[:n], "scale": np.asarray(self.scale),
                "length": np.asarray(self.length), "centre": self.centre}

    @staticmethod
    def restored(arrays: dict[str, np.ndarray]) -> Codes:
        """The codes as saved() left them; the signs are made again from them (saved before there were
        signs: about the mean of the codes, as fitted() takes it)."""
        rows = arrays["rows"]
        centre = arrays["centre"] if "centre" in arrays else np.rint(rows[:: max(1, len(rows) // FIT_SAMPLE)].mean(axis=0))
        codes = Codes(float(arrays["scale"]), rows.shape[1], 0, centre)
        codes.rows, codes.error, codes.length = rows, arrays["error"], float(arrays["length"])
        codes.signs = np.empty((len(rows), codes.signs.shape[1]), dtype=np.uint8)
        for start in range(0, len(rows), SIGN_BLOCK):  # a block at a time: a million rows' comparison is 384 MB
            codes.signs[start : start + SIGN_BLOCK] = np.packbits(rows[start : start + SIGN_BLOCK] > codes.centre, axis=1)
        return codes

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.error.nbytes + self.signs.nbytes


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
