"""Text embedders: fastembed's ONNX models on ONNX Runtime (CPU), loaded from disk, never downloaded.

Where models come from, in this order:
- `BASTION_EMBED_MODEL_DIR`: one directory per model, named as the model (`BAAI/bge-small-en-v1.5` lives
  in `<dir>/BAAI/bge-small-en-v1.5/`), holding its ONNX file and tokenizer files (tokenizer.json,
  tokenizer_config.json, config.json, special_tokens_map.json). A model fastembed knows needs nothing
  more (its ONNX file name, pooling, normalisation and dimension are fastembed's); any other needs a
  `bastion-embedder.json` beside them: `{"dimension": 384, "pooling": "mean"|"cls", "normalize": true,
  "model_file": "model.onnx"}`.
- fastembed's own cache (`FASTEMBED_CACHE_PATH`, else fastembed's default), as fastembed fills it on a
  machine that can reach the model hub: loaded with `local_files_only`, so a daemon never tries the network.
docs/embedders.md tells an operator how to put bge-small-en-v1.5 or all-MiniLM-L6-v2 on an offline machine.

Embedding runs in one worker thread of its own, in batches, with ONNX Runtime's own threads limited
(`BASTION_EMBED_THREADS`, default 1): a large ingest then takes one core and never the event loop, and
requests that embed wait their turn in that thread's queue rather than all at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.threads import lower_priority

if TYPE_CHECKING:  # fastembed and numpy load when a collection first embeds, not with every daemon
    import numpy as np

log = logging.getLogger("bastion.embedders")

MANIFEST = "bastion-embedder.json"
BATCH = 64  # texts per ONNX run: larger batches pad more (to the longest text) for little gain on CPU
POOLINGS = ("mean", "cls")


class EmbedderError(Exception):
    """A model that cannot run here: unknown, not on disk, or its files are unusable."""


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    dimension: int
    available: bool


@dataclass(frozen=True)
class _Local:
    """A model in BASTION_EMBED_MODEL_DIR."""

    path: Path
    dimension: int
    pooling: str | None  # None: fastembed knows the model and its pooling
    normalize: bool
    model_file: str


EMBED_NICE = 10  # added to the worker thread's nice value: below the loop's, not so low that a busy machine starves it


def _yield_to_requests() -> None:
    """In the worker thread: a lower scheduling priority for it alone (on Linux each thread has its own nice
    value), so that on a busy machine the event loop's thread runs first. ONNX Runtime lets go of the GIL
    while it computes, so the loop does not wait on this thread for the GIL either. In paired runs of 5,000
    texts on a loaded 2-core machine, /users/me's p99 during the ingest read 9 and 12 ms with it, 19 to 21 ms
    without (bench/RESULTS.md)."""
    lower_priority(EMBED_NICE)


def _known() -> dict[str, dict[str, Any]]:
    """fastembed's dense text models, by name: their dimension, ONNX file and where the hub keeps them."""
    from fastembed import TextEmbedding

    return {m["model"]: m for m in TextEmbedding.list_supported_models()}


def _cache_dir() -> Path:
    # fastembed's own default, so a cache it filled is found without configuration.
    return Path(os.environ.get("FASTEMBED_CACHE_PATH") or Path(tempfile.gettempdir()) / "fastembed_cache")


def _in_cache(cache: Path, description: dict[str, Any]) -> bool:
    repo = (description.get("sources") or {}).get("hf")
    if not repo:
        return False
    snapshots = cache / f"models--{repo.replace('/', '--')}" / "snapshots"
    return any(snapshots.glob(f"*/{description['model_file']}"))


class Embedders:
    def __init__(self, model_dir: Path | None, threads: int = 1, cache_dir: Path | None = None) -> None:
        self._model_dir = Path(model_dir) if model_dir else None
        self._cache = Path(cache_dir) if cache_dir else _cache_dir()
        self._threads = threads
        self._models: dict[str, Any] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed", initializer=_yield_to_requests)
        self._catalog: dict[str, dict[str, Any]] | None = None
        self._local: dict[str, _Local] | None = None

    # --- what can run ------------------------------------------------------------------------------------

    def _known_models(self) -> dict[str, dict[str, Any]]:
        if self._catalog is None:
            self._catalog = _known()
        return self._catalog

    def _local_models(self) -> dict[str, _Local]:
        """Read once: a model copied in later is seen after a restart, as a daemon's other settings are."""
        if self._local is None:
            self._local = {}
            if self._model_dir is not None and self._model_dir.is_dir():
                for tokenizer in sorted(self._model_dir.glob("**/tokenizer.json")):
                    found = self._describe_local(tokenizer.parent)
                    if found is not None:
                        self._local[tokenizer.parent.relative_to(self._model_dir).as_posix()] = found
        return self._local

    def _describe_local(self, path: Path) -> _Local | None:
        name = path.relative_to(self._model_dir).as_posix()  # type: ignore[arg-type]
        manifest = path / MANIFEST
        try:
            if manifest.exists():
                spec = json.loads(manifest.read_text(encoding="utf-8"))
                found = _Local(path, int(spec["dimension"]), str(spec.get("pooling", "mean")).lower(),
                               bool(spec.get("normalize", True)), str(spec.get("model_file", "model.onnx")))
                if found.pooling not in POOLINGS or found.dimension < 1:
                    raise ValueError(f"pooling must be one of {POOLINGS} and dimension positive")
            elif name in self._known_models():
                known = self._known_models()[name]
                found = _Local(path, int(known["dim"]), None, True, known["model_file"])
            else:
                log.warning("a model directory fastembed does not know, without %s; skipped", MANIFEST,
                            extra={"path": str(path)})
                return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("unusable %s; model skipped", MANIFEST, extra={"path": str(path), "reason": str(exc)})
            return None
        if not (path / found.model_file).is_file():
            log.warning("model file missing; model skipped", extra={"path": str(path / found.model_file)})
            return None
        return found

    def list(self) -> list[EmbedderInfo]:
        """Every model this daemon knows, those it can run first."""
        local = self._local_models()
        items = [EmbedderInfo(name, model.dimension, True) for name, model in local.items()]
        for name, description in self._known_models().items():
            if name not in local:
                items.append(EmbedderInfo(name, int(description["dim"]), _in_cache(self._cache, description)))
        return sorted(items, key=lambda item: (not item.available, item.name.lower()))

    def dimension(self, name: str) -> int:
        """The model's dimension; EmbedderError when it cannot run here."""
        for item in self.list():
            if item.name == name:
                if not item.available:
                    raise EmbedderError(f"the model '{name}' is not on this machine (see GET /api/v1/embedders)")
                return item.dimension
        raise EmbedderError(f"no model named '{name}' (see GET /api/v1/embedders)")

    # --- running one --------------------------------------------------------------------------------------

    def _load(self, name: str) -> Any:
        """In the worker thread."""
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        local = self._local_models().get(name)
        if local is None:
            return TextEmbedding(name, cache_dir=str(self._cache), threads=self._threads, local_files_only=True)
        if local.pooling is not None and name not in self._known_models():
            # fastembed runs only models it has in its registry: a custom one is added to it, once.
            TextEmbedding.add_custom_model(
                model=name,
                pooling=PoolingType.MEAN if local.pooling == "mean" else PoolingType.CLS,
                normalization=local.normalize,
                sources=ModelSource(url=local.path.as_uri()),  # never fetched: the files are given below
                dim=local.dimension,
                model_file=local.model_file,
            )
            self._catalog = None
        return TextEmbedding(name, specific_model_path=str(local.path), threads=self._threads)

    async def _model(self, name: str) -> Any:
        model = self._models.get(name)
        if model is not None:
            return model
        self.dimension(name)  # unknown or absent: EmbedderError before any work
        async with self._loading.setdefault(name, asyncio.Lock()):
            model = self._models.get(name)
            if model is None:
                try:
                    model = await asyncio.get_running_loop().run_in_executor(self._worker, self._load, name)
                except EmbedderError:
                    raise
                except Exception as exc:
                    log.warning("could not load an embedding model", extra={"model": name, "reason": str(exc)})
                    raise EmbedderError(f"the model '{name}' could not be loaded: {exc}") from None
                self._models[name] = model
        return model

    async def embed_documents(self, name: str, texts: list[str]) -> np.ndarray:
        """float32, one row per text."""
        model = await self._model(name)

        def run() -> np.ndarray:
            import numpy as np

            return np.asarray(list(model.passage_embed(texts, batch_size=BATCH)), dtype=np.float32)

        return await asyncio.get_running_loop().run_in_executor(self._worker, run)

    async def embed_query(self, name: str, text: str) -> np.ndarray:
        model = await self._model(name)

        def run() -> np.ndarray:
            import numpy as np

            return np.asarray(next(iter(model.query_embed(text))), dtype=np.float32)

        return await asyncio.get_running_loop().run_in_executor(self._worker, run)

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
