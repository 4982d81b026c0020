"""A namespace's strings by slot, held end to end in one buffer: record ids (found by slot or by value) and
metadata. A Python object a row costs more than the row's text: at a million rows ('v0'..'v999999' with
{genre, year} metadata) the ids as str, the dict from id to slot with its int values, and the metadata as
bytes took 186 MiB (tracemalloc) beside the 1,465 MiB of float32 rows; here 63 MiB (ids and their table 30,
metadata 32).

Slots are dense, as in the shelf: a removal moves the last slot into the hole."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

NONE = -1  # a length: the slot holds None


def grown(array: np.ndarray, size: int, fill: Any = None, used: int | None = None) -> np.ndarray:
    """A by-slot array with room for `size` slots: its first `used` (all) copied, the rest `fill` (or left
    unwritten, where nothing reads a slot before it is written). Growth by doubling goes through here."""
    used = len(array) if used is None else used
    bigger = np.empty((size, *array.shape[1:]), dtype=array.dtype)
    bigger[:used] = array[:used]
    if fill is not None:
        bigger[used:] = fill
    return bigger


CLOSE_UP_BYTES = 1_572_864  # moved at once by close_up: 1,024 rows of 384 float32 (1.5 MB)


def close_up(array: np.ndarray, kept: np.ndarray, n: int, fill: Any = None) -> None:
    """Move the slots `kept` (ascending) of the first n to the front, in their order, and `fill` the slots
    freed behind them (or leave them). A bulk removal goes through here. In pieces, so that no copy of the kept
    rows is made whole; a row only moves down, onto rows read already, and those before the first removed one
    stay where they are."""
    count = len(kept)
    first = int(np.argmax(kept != np.arange(count))) if count and kept[-1] != count - 1 else count
    step = max(1, CLOSE_UP_BYTES // max(1, array[:1].nbytes))
    for start in range(first, count, step):
        piece = kept[start : start + step]
        array[start : start + len(piece)] = array[piece]
    if fill is not None:
        array[count:n] = fill


class Blobs:
    """Byte strings (or None) by slot. A replaced or removed one leaves its bytes behind as garbage, taken
    back by a compaction once there is more garbage than live bytes."""

    COMPACT_MIN = 1 << 16  # garbage below this is left alone: a compaction copies every live byte

    def __init__(self, capacity: int = 16) -> None:
        self.n = 0
        self._buffer = bytearray()
        self._start = np.zeros(capacity, dtype=np.uint32)  # int64 once the buffer passes 4 GiB (_room)
        self._length = np.full(capacity, NONE, dtype=np.int32)
        self._garbage = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, slot: int) -> bytes | None:
        if not 0 <= slot < self.n:
            raise IndexError(slot)
        length = int(self._length[slot])
        if length == NONE:
            return None
        start = int(self._start[slot])
        return bytes(self._buffer[start : start + length])

    def __iter__(self) -> Iterator[bytes | None]:
        return (self[slot] for slot in range(self.n))

    @property
    def nbytes(self) -> int:
        return len(self._buffer) + self._start.nbytes + self._length.nbytes

    def extend(self, values: list[bytes | None]) -> None:
        """Append these at slots n, n+1, ..."""
        count = len(values)
        if self.n + count > len(self._start):
            size = max(2 * len(self._start), self.n + count)
            self._start = grown(self._start, size, fill=0)
            self._length = grown(self._length, size, fill=NONE)
        lengths = np.fromiter((NONE if v is None else len(v) for v in values), dtype=np.int64, count=count)
        sizes = np.maximum(lengths, 0)
        self._room(int(sizes.sum()))
        self._start[self.n : self.n + count] = len(self._buffer) + np.cumsum(sizes) - sizes
        self._length[self.n : self.n + count] = lengths
        self._buffer += b"".join(v for v in values if v is not None)
        self.n += count

    def saved(self) -> dict[str, np.ndarray]:
        """The arrays restored() takes back (garbage and all: a compaction is the next write's business)."""
        return {"buffer": np.frombuffer(self._buffer, dtype=np.uint8), "start": self._start[: self.n],
                "length": self._length[: self.n]}

    @classmethod
    def restored(cls, arrays: Mapping[str, np.ndarray]) -> Blobs:
        blobs = cls(0)
        blobs._buffer = bytearray(arrays["buffer"].tobytes())
        blobs._start, blobs._length = arrays["start"], arrays["length"]
        blobs.n = len(blobs._length)
        blobs._garbage = len(blobs._buffer) - int(np.maximum(blobs._length, 0).sum())
        return blobs

    def texts(self) -> list[str]:
        """Every value decoded as utf-8 (none may be None), by slot: sliced from the buffer decoded at once
        where it is ASCII (a million ids in 0.2 s against 0.8 one by one)."""
        if not self._buffer.isascii():
            return [bytes(value).decode() for value in self]  # type: ignore[arg-type]
        whole = self._buffer.decode("ascii")
        return [whole[s : s + n] for s, n in zip(self._start[: self.n].tolist(), self._length[: self.n].tolist())]

    def __setitem__(self, slot: int, value: bytes | None) -> None:
        if not 0 <= slot < self.n:
            raise IndexError(slot)
        self._garbage += max(int(self._length[slot]), 0)
        if value is None:
            self._length[slot] = NONE
        else:
            self._room(len(value))
            self._start[slot], self._length[slot] = len(self._buffer), len(value)
            self._buffer += value
        self._compact_if_wasteful()

    def _room(self, added: int) -> None:
        """Starts are 4 bytes while the buffer is under 4 GiB (4 MB less at a million rows), 8 after."""
        if self._start.dtype == np.uint32 and len(self._buffer) + added > np.iinfo(np.uint32).max:
            self._start = self._start.astype(np.int64)

    def remove(self, slot: int) -> None:
        """Drop this slot's value, moving the last slot's into it."""
        last = self.n - 1
        self._garbage += max(int(self._length[slot]), 0)
        self._start[slot], self._length[slot] = self._start[last], self._length[last]
        self._length[last] = NONE
        self.n = last
        self._compact_if_wasteful()

    def keep(self, kept: np.ndarray) -> None:
        """Keep only these slots (ascending), closed up in their order; the others' bytes become garbage."""
        count = len(kept)
        live = np.maximum(self._length[: self.n], 0)
        self._garbage += int(live.sum()) - int(live[kept].sum())
        close_up(self._start, kept, self.n)
        close_up(self._length, kept, self.n, fill=NONE)
        self.n = count
        self._compact_if_wasteful()

    def _compact_if_wasteful(self) -> None:
        if self._garbage < max(self.COMPACT_MIN, len(self._buffer) - self._garbage):
            return
        lengths = np.maximum(self._length[: self.n], 0).astype(np.int64)
        starts = np.cumsum(lengths) - lengths
        # Each live byte's old position: its value's old start plus its place within the value.
        moved = np.repeat(self._start[: self.n].astype(np.int64) - starts, lengths) + np.arange(int(lengths.sum()))
        old = np.frombuffer(self._buffer, dtype=np.uint8)
        self._buffer = bytearray(old[moved].tobytes())
        del old
        self._start[: self.n] = starts
        self._garbage = 0


class Ids:
    """Record ids by slot (utf-8 in Blobs), and the slot of an id through an open-addressing table of
    their hashes (linear probing, at most LOAD full). Python's str hash is 64 bits and fixed for the
    process, which is all the table lives for: its low bits give an id's home cell, its high 32 are kept
    in the cell as a tag; two ids of one cell and tag are told apart by their text."""

    EMPTY = -1  # a cell never used: a search for an id ends here
    GONE = -2  # a cell whose id was removed: a search goes on past it, an insert may take it
    LOAD = 0.6
    hash_of = staticmethod(hash)  # a test puts a weaker one here to make ids share hashes

    def __init__(self, capacity: int = 16) -> None:
        """`capacity`: the ids expected, so that a namespace read at a start grows nothing."""
        self._text = Blobs(capacity)
        self._new_table(capacity)

    def __len__(self) -> int:
        return self._text.n

    def __getitem__(self, slot: int) -> str:
        return self._text[slot].decode()  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def all(self) -> list[str]:
        """Every id, by slot."""
        return self._text.texts()

    def __contains__(self, record_id: str) -> bool:
        return self.slot(record_id) is not None

    @property
    def nbytes(self) -> int:
        return self._text.nbytes + self._cell_tag.nbytes + self._cell_slot.nbytes

    def slot(self, record_id: str) -> int | None:
        """slots() of one id, without numpy's cost per call (a removal asks one at a time)."""
        wanted, mask = self.hash_of(record_id), len(self._cell_slot) - 1
        cell, tag, text = wanted & mask, wanted >> 32, None
        while (slot := int(self._cell_slot[cell])) != self.EMPTY:
            if slot >= 0 and int(self._cell_tag[cell]) == tag:
                text = text or record_id.encode()
                if self._text[slot] == text:
                    return slot
            cell = (cell + 1) & mask
        return None

    def slots(self, ids: list[str]) -> np.ndarray:
        """The slot of each id, -1 where it has none."""
        hashes = self._hashes(ids)
        tags = self._tags(hashes)
        found = np.full(len(ids), -1, dtype=np.int64)
        cells = self._home(hashes)
        todo = np.arange(len(ids))
        while len(todo):
            slots = self._cell_slot[cells[todo]]
            hit = (self._cell_tag[cells[todo]] == tags[todo]) & (slots >= 0)
            for i in np.flatnonzero(hit).tolist():
                if self._text[int(slots[i])] == ids[todo[i]].encode():
                    found[todo[i]] = slots[i]
                else:  # another id of the same hash
                    hit[i] = False
            todo = todo[~(hit | (slots == self.EMPTY))]
            cells[todo] = (cells[todo] + 1) & (len(self._cell_slot) - 1)
        return found

    def append(self, ids: list[str]) -> None:
        """Give these ids (none held yet, none twice) slots n, n+1, ..."""
        first, count = len(self), len(ids)
        self._text.extend([i.encode() for i in ids])
        if self._used + count > self.LOAD * len(self._cell_slot):
            # A table made anew only when the ids have grown by about half, or the removals have filled it.
            self._table_anew()
        else:
            self._place(self._hashes(ids), np.arange(first, first + count, dtype=np.int32))

    def remove(self, slot: int) -> None:
        """Drop the id at this slot, moving the last slot's id into it."""
        last = len(self) - 1
        self._cell_slot[self._cell_of(slot)] = self.GONE
        if slot != last:
            self._cell_slot[self._cell_of(last)] = slot
        self._text.remove(slot)

    def keep(self, kept: np.ndarray) -> None:
        """Keep only these slots (ascending), closed up in their order."""
        self._text.keep(kept)
        self._table_anew()

    def saved(self) -> dict[str, np.ndarray]:
        return self._text.saved()  # the table is of hashes that hold for this process only

    @classmethod
    def restored(cls, arrays: Mapping[str, np.ndarray]) -> Ids:
        ids = cls(0)
        ids._text = Blobs.restored(arrays)
        ids._table_anew()
        return ids

    def _table_anew(self) -> None:
        """A fresh table, without GONE cells, for all the ids held. Their hashes are computed again rather
        than kept (8 bytes an id): 0.25 s at a million."""
        self._new_table(len(self))
        self._place(self._hashes(self.all()), np.arange(len(self), dtype=np.int32))

    def _hashes(self, ids: list[str]) -> np.ndarray:
        return np.fromiter(map(self.hash_of, ids), dtype=np.int64, count=len(ids))

    @staticmethod
    def _tags(hashes: np.ndarray) -> np.ndarray:
        return (hashes >> 32).astype(np.int32)

    def _home(self, hashes: np.ndarray) -> np.ndarray:
        return hashes.view(np.uint64) & np.uint64(len(self._cell_slot) - 1)

    def _cell_of(self, slot: int) -> int:
        mask = len(self._cell_slot) - 1
        cell = self.hash_of(self[slot]) & mask
        while self._cell_slot[cell] != slot:
            cell = (cell + 1) & mask
        return cell

    def _place(self, hashes: np.ndarray, slots: np.ndarray) -> None:
        """Put these (hash, slot) pairs in free cells, each at or after its home."""
        cells, tags = self._home(hashes), self._tags(hashes)
        todo = np.arange(len(hashes))
        while len(todo):
            at = cells[todo]
            free = self._cell_slot[at] < 0
            # Of the pairs that found one cell free, the first takes it; the others go on.
            taken, first = np.unique(at[free], return_index=True)
            winners = todo[free][first]
            self._used += int(np.count_nonzero(self._cell_slot[taken] == self.EMPTY))
            self._cell_slot[taken] = slots[winners]
            self._cell_tag[taken] = tags[winners]
            placed = np.zeros(len(todo), dtype=bool)
            placed[np.flatnonzero(free)[first]] = True
            todo = todo[~placed]
            cells[todo] = (cells[todo] + 1) & (len(self._cell_slot) - 1)

    def _new_table(self, ids: int) -> None:
        """An empty table for this many ids with an eighth more room: the smallest power of two that holds
        them under LOAD (at a million, 2M cells, 16 MB); it doubles as the ids grow."""
        size = 64
        while size * self.LOAD < ids * 9 / 8:
            size *= 2
        self._cell_tag = np.zeros(size, dtype=np.int32)
        self._cell_slot = np.full(size, self.EMPTY, dtype=np.int32)
        self._used = 0  # cells not EMPTY
