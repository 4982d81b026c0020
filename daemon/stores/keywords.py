"""The keyword index: BM25 over records' text, one tantivy index per collection and namespace.

Why tantivy: it is the Rust search engine's own Python binding (BM25, segments, deletes by term, atomic
commits), and it takes writes one request at a time. Measured in-process at 100,000 documents on this
machine (`python -m bench.text`, figures in bench/RESULTS.md): tantivy answers a three-word query in about
0.1 ms at p50 and ingests 1,000-document batches, each committed and visible, at about 12,000 documents/s;
bm25s answers in about 3 ms at p50 and has no incremental update at all: its index is built from the whole
corpus, 11 s at 100,000 documents, so every upsert or delete would rebuild it. Qdrant's embedded engine
(issue 16) was not adopted by the vector store, so its BM25 is not a candidate here.

Words: tantivy's simple tokenizer (runs of letters and digits), lowercased and folded to ASCII (é → e,
ß → ss), tokens over 40 characters dropped; no stemming, which would need a language. Scores are BM25
(k1 = 1.2, b = 0.75) with the statistics of the namespace alone: each namespace is its own index, so one
tenant's words never move another's scores.

SQL is the truth and this index a companion rebuilt from it, keeping the vector store's promises:
- a write reaches the index after SQL committed it and before the request answers: the old document
  out, the new one in, one tantivy commit, and the reader reloaded (Manual policy: visible at once, not
  "soon" as with tantivy's OnCommit policy);
- each document carries a version, a 63-bit hash of its id and text, indexed and as a fast field, so
  that a replacement or a delete takes the old text out by its version;
- a kill -9 loses nothing committed: tantivy's commit is atomic, and at start `reconcile` compares the
  versions held with the table's and deletes or adds the difference, as the HNSW index is reconciled.
Writes run in a thread (the commit writes files); searches run on the event loop (a tenth of a
millisecond at 100k documents).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import tantivy

from daemon.stores.vectors import Hit

log = logging.getLogger("bastion.keywords")

FOLDED = "folded"
MAX_WORD = 40  # characters: longer tokens are mostly base64, hashes or URLs, never typed as a query
# A writer's memory budget, not an allocation (16 open writers hold the same RSS at 15 and 64 MB). Below
# about 50 MB each commit of 1,000 documents flushed and merged more: committed batches of 1,000 went at
# 6,560 documents/s with 15 MB and 11,700 to 12,300/s with 50 to 100 MB (100,000 documents of 48 words).
WRITER_HEAP = 64_000_000
OPEN_WRITERS = 16  # writers kept open (each holds a merge thread pool); the least recently used closes
OVERFETCH = 4  # with a filter, candidates asked per result before falling back to every match
NAMESPACE_FILE = "namespace"


def analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_WORD))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


_ANALYZER = analyzer()


def words(text: str) -> list[str]:
    """The words of `text` as the index holds them (case- and accent-folded), each once, in order."""
    return list(dict.fromkeys(_ANALYZER.analyze(text)))


def version(record_id: str, text: str) -> int:
    digest = hashlib.blake2b(f"{record_id}\0{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # 63 bits: a positive i64


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # A signed field: tantivy-py turns a Python int into an i64 term, which never matches a u64 field's
    # terms, so deletes by term would silently do nothing.
    builder.add_integer_field("version", indexed=True, fast=True)
    # Frequencies without positions: BM25 needs no more, and positions would double the index.
    builder.add_text_field("text", stored=False, tokenizer_name=FOLDED, index_option="freq")
    return builder.build()


SCHEMA = _schema()
_SHOULD = tantivy.Occur.Should


class _Shelf:
    """One namespace: its tantivy index, and which record holds which version (rebuilt from SQL at start)."""

    def __init__(self, path: Path, namespace: str) -> None:
        self.path = path
        self.namespace = namespace
        self.index = self._open(path, namespace)
        self.writer: tantivy.IndexWriter | None = None
        self.version_of: dict[str, int] = {}
        self.id_of: dict[int, str] = {}
        self.lock = asyncio.Lock()

    @staticmethod
    def _open(path: Path, namespace: str) -> tantivy.Index:
        path.mkdir(parents=True, exist_ok=True)
        (path / NAMESPACE_FILE).write_text(namespace, encoding="utf-8")
        try:
            index = tantivy.Index(SCHEMA, path=str(path), reuse=True)
        except Exception:  # a torn or foreign directory: the table rebuilds it
            log.warning("keyword index unreadable; rebuilding it from the table", extra={"path": str(path)})
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            (path / NAMESPACE_FILE).write_text(namespace, encoding="utf-8")
            index = tantivy.Index(SCHEMA, path=str(path), reuse=False)
        index.register_tokenizer(FOLDED, analyzer())
        index.config_reader(reload_policy="Manual")
        return index

    def held_versions(self) -> list[int]:
        searcher = self.index.searcher()
        if searcher.num_docs == 0:
            return []
        found = searcher.search(tantivy.Query.all_query(), searcher.num_docs, count=False)
        return searcher.fast_field_values("version", [address for _, address in found.hits])

    def write(self, writer: tantivy.IndexWriter, removed: list[int], added: list[tuple[int, str]]) -> None:
        """In a thread: one commit, then the reader sees it."""
        for old in removed:
            writer.delete_documents_by_term("version", old)
        for new, text in added:
            document = tantivy.Document()
            document.add_integer("version", new)
            document.add_text("text", text)
            writer.add_document(document)
        writer.commit()
        self.index.reload()


class KeywordIndex:
    """Every collection's keyword indexes, under `directory/<collection id>/<namespace hash>/`."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        self._shelves: dict[tuple[str, str], _Shelf] = {}
        self._writers: list[_Shelf] = []  # those with an open writer, least recently used first

    def _path(self, space_id: str, namespace: str) -> Path:
        return self._dir / space_id / hashlib.sha256(namespace.encode()).hexdigest()[:32]

    def _shelf(self, space_id: str, namespace: str, create: bool) -> _Shelf | None:
        shelf = self._shelves.get((space_id, namespace))
        if shelf is None and create:
            shelf = self._shelves[(space_id, namespace)] = _Shelf(self._path(space_id, namespace), namespace)
        return shelf

    async def _writer(self, shelf: _Shelf) -> tantivy.IndexWriter:
        if shelf in self._writers:
            self._writers.remove(shelf)
        self._writers.append(shelf)
        if shelf.writer is None:
            shelf.writer = shelf.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        idle = [other for other in self._writers[:-1] if not other.lock.locked()]
        for other in idle[: max(0, len(self._writers) - OPEN_WRITERS)]:
            await self._close_writer(other)
        return shelf.writer

    async def _close_writer(self, shelf: _Shelf) -> None:
        if shelf in self._writers:
            self._writers.remove(shelf)
        writer, shelf.writer = shelf.writer, None
        if writer is not None:
            await asyncio.to_thread(writer.wait_merging_threads)

    # --- writes (after SQL committed them) ------------------------------------------------------------

    async def write(self, space_id: str, namespace: str, texts: Mapping[str, str | None]) -> None:
        """Each id now holds this text, or none (None: the record is gone or has no text)."""
        pending = await self.enqueue(space_id, namespace, texts)
        if pending is not None:
            await pending()

    async def enqueue(
        self, space_id: str, namespace: str, texts: Mapping[str, str | None]
    ) -> Callable[[], Awaitable[None]] | None:
        """`write` in two steps: this takes the namespace's turn now (writes apply in the order their turns
        were taken) and returns the write itself, for the caller to await once it has let go of its own lock;
        None when there is nothing to write. So the vector store orders writes under its lock while one
        request's indexing (most of a text upsert's time) overlaps the next one's SQL."""
        shelf = self._shelf(space_id, namespace, create=any(t is not None for t in texts.values()))
        if shelf is None:
            return None
        await shelf.lock.acquire()

        async def pending() -> None:
            try:
                await self._apply(shelf, texts)
            finally:
                shelf.lock.release()

        return pending

    async def _apply(self, shelf: _Shelf, texts: Mapping[str, str | None]) -> None:
        """With the shelf's lock held."""
        removed, added = [], []
        for record_id, text in texts.items():
            new = version(record_id, text) if text is not None else None
            old = shelf.version_of.get(record_id)
            if old == new:
                continue
            if old is not None:
                removed.append(old)
            if new is not None:
                added.append((new, text))
        if not removed and not added:
            return
        writer = await self._writer(shelf)
        await asyncio.to_thread(shelf.write, writer, removed, added)
        # The commit is done: the maps follow, with no await in between.
        for record_id, text in texts.items():
            old = shelf.version_of.pop(record_id, None)
            if old is not None:
                shelf.id_of.pop(old, None)
            if text is not None:
                new = version(record_id, text)
                shelf.version_of[record_id] = new
                shelf.id_of[new] = record_id

    async def clear(self, space_id: str, namespace: str) -> None:
        """The namespace is empty now."""
        shelf = self._shelves.pop((space_id, namespace), None)
        if shelf is not None:
            async with shelf.lock:
                await self._close_writer(shelf)
        await asyncio.to_thread(shutil.rmtree, self._path(space_id, namespace), True)

    async def drop(self, space_id: str) -> None:
        for key in [key for key in self._shelves if key[0] == space_id]:
            await self.clear(*key)
        await asyncio.to_thread(shutil.rmtree, self._dir / space_id, True)

    async def reconcile(self, space_id: str, table: Mapping[str, Mapping[str, str]]) -> int:
        """Make this collection's indexes hold exactly the table's texts (namespace -> id -> text), after a
        start or a crash; returns how many documents had to change."""
        changed = 0
        base = self._dir / space_id
        present = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
        wanted = {self._path(space_id, namespace) for namespace in table}
        for path in present:
            if path not in wanted:  # a namespace emptied while the index could not follow
                await asyncio.to_thread(shutil.rmtree, path, True)
        for namespace, texts in table.items():
            shelf = self._shelf(space_id, namespace, create=True)
            assert shelf is not None
            async with shelf.lock:
                current = {version(record_id, text): (record_id, text) for record_id, text in texts.items()}
                held = set(await asyncio.to_thread(shelf.held_versions))
                stale = [v for v in held if v not in current]
                missing = [(v, text) for v, (_, text) in current.items() if v not in held]
                if stale or missing:
                    writer = await self._writer(shelf)
                    await asyncio.to_thread(shelf.write, writer, stale, missing)
                    changed += len(stale) + len(missing)
                shelf.id_of = {v: record_id for v, (record_id, _) in current.items()}
                shelf.version_of = {record_id: v for v, record_id in shelf.id_of.items()}
        if changed:
            log.info("keyword index caught up with the table", extra={"space": space_id, "changed": changed})
        return changed

    # --- search ----------------------------------------------------------------------------------------

    def top(self, space_id: str, namespace: str, text: str, limit: int) -> list[Hit]:
        """The best `limit` records for these words, best first: `search` without the count of every match,
        which tantivy then skips (a keyword query without a filter never uses it)."""
        return self._search(space_id, namespace, text, limit, False)[0]

    def search(self, space_id: str, namespace: str, text: str, limit: int) -> tuple[list[Hit], int]:
        """The best `limit` records for these words, best first, and how many records match any of them."""
        return self._search(space_id, namespace, text, limit, True)

    def _search(
        self, space_id: str, namespace: str, text: str, limit: int, count: bool
    ) -> tuple[list[Hit], int]:
        shelf = self._shelves.get((space_id, namespace))
        if shelf is None or limit < 1:
            return [], 0
        terms = words(text)
        if not terms:
            return [], 0
        query = tantivy.Query.boolean_query([(_SHOULD, tantivy.Query.term_query(SCHEMA, "text", t)) for t in terms])
        searcher = shelf.index.searcher()
        found = searcher.search(query, limit, count=count)
        ranked = found.hits  # a property that builds a new list each time it is read
        total = found.count if count else 0
        if not ranked:
            return [], total
        versions = searcher.fast_field_values("version", [address for _, address in ranked])
        id_of = shelf.id_of
        hits = []
        for (score, _), held in zip(ranked, versions):
            record_id = id_of.get(held)
            if record_id is not None:  # None only for a document written a moment ago, not yet mapped
                hits.append(Hit(record_id, score))  # the vector store's own hit: not made twice
        return hits, total

    async def search_where(
        self,
        space_id: str,
        namespace: str,
        text: str,
        limit: int,
        keep: Callable[[list[str]], Awaitable[list[bool]]],
    ) -> list[Hit]:
        """The best `limit` records for these words among those `keep` accepts: the top few first, then,
        if too few of them pass, every match, so a filter never loses a record that exists."""
        hits, total = self.search(space_id, namespace, text, limit * OVERFETCH)
        passing = [hit for hit, ok in zip(hits, await keep([h.id for h in hits])) if ok]
        if len(passing) >= limit or total <= len(hits):
            return passing[:limit]
        hits, _ = self.search(space_id, namespace, text, total)
        return [hit for hit, ok in zip(hits, await keep([h.id for h in hits])) if ok][:limit]

    def count(self, space_id: str, namespace: str) -> int:
        shelf = self._shelf(space_id, namespace, create=False)
        return 0 if shelf is None else shelf.index.searcher().num_docs

    async def close(self) -> None:
        for shelf in list(self._writers):
            await self._close_writer(shelf)
