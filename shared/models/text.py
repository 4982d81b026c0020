"""The models of docs/api.md's Text search that stand apart from vectors: the embedders."""

from __future__ import annotations

from pydantic import BaseModel


class Embedder(BaseModel):
    name: str
    dimension: int
    available: bool  # its files are on this machine, so a collection may name it


class EmbedderList(BaseModel):
    items: list[Embedder]
