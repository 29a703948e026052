"""mem0's own `Memory`, built to run offline against a real database (mem0-contract.md 6).

Importing this module imports mem0, so it first makes sure mem0 cannot phone home: with
telemetry on, mem0 sends PostHog events and fetches a notice file from GitHub, and it writes
`config.json` into MEM0_DIR at import. Tests therefore import it lazily, after pointing
MEM0_DIR at a temporary directory; the defaults below only protect a careless import.

Nothing here replaces the database: the vector store is mem0's real pgvector provider on
psycopg 3. Only the embedder is swapped for a deterministic hash (no API keys, no network),
and the LLM, which `infer=False` never calls, is an OpenAI client aimed at a closed port.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import struct
import sys
import tempfile
from collections.abc import Mapping
from typing import Any, Literal

OFFLINE_OPENAI_URL = "http://127.0.0.1:9/v1"  # discard port: any stray call fails at once
OFFLINE_API_KEY = "sk-offline"

if "mem0" not in sys.modules:
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    os.environ.setdefault("OPENAI_BASE_URL", OFFLINE_OPENAI_URL)
    if not os.environ.get("MEM0_DIR"):
        os.environ["MEM0_DIR"] = tempfile.mkdtemp(prefix="mem0-dir-")

from mem0 import Memory  # noqa: E402
from mem0.embeddings.base import EmbeddingBase  # noqa: E402
from mem0.memory import telemetry  # noqa: E402

if telemetry.MEM0_TELEMETRY:
    # mem0 reads MEM0_TELEMETRY once, at import: too late to turn it off now.
    raise RuntimeError("mem0 was imported with telemetry on; set MEM0_TELEMETRY=False first")


class HashEmbedder(EmbeddingBase):
    """Deterministic, normalised vectors from a hash of the text.

    The same text always gives the same vector (so searching a memory's own text scores a
    cosine similarity of 1), while different texts, however alike, give unrelated vectors:
    tests cannot pass by accident of semantic closeness.
    """

    def __init__(self, dims: int) -> None:
        super().__init__(None)
        self.dims = dims

    def embed(self, text: str,
              memory_action: Literal["add", "search", "update"] | None = None) -> list[float]:
        values: list[float] = []
        block = 0
        while len(values) < self.dims:
            digest = hashlib.sha512(f"{block}:{text}".encode()).digest()
            values += [v / 2**31 - 1.0 for v in struct.unpack(">16I", digest)]
            block += 1
        values = values[: self.dims]
        norm = math.sqrt(sum(v * v for v in values))
        return [v / norm for v in values]


def offline_config(vector_store: Mapping[str, Any], embedder_dims: int) -> dict[str, Any]:
    """A `Memory.from_config` dictionary: the given `vector_store` section, as-is, plus an
    offline embedder and LLM and an in-memory SQLite history.

    The OpenAI embedder is only a placeholder that `memory()` replaces; its `embedding_dims`
    is set all the same, because mem0 never syncs it with the store's `embedding_model_dims`.
    """
    openai = {"api_key": OFFLINE_API_KEY, "openai_base_url": OFFLINE_OPENAI_URL}
    return {
        "vector_store": copy.deepcopy(dict(vector_store)),
        "embedder": {"provider": "openai", "config": {**openai, "embedding_dims": embedder_dims}},
        "llm": {"provider": "openai", "config": dict(openai)},
        "history_db_path": ":memory:",
    }


def memory(vector_store: Mapping[str, Any], embedder_dims: int) -> Memory:
    """mem0's Memory over `vector_store`, embedding with a `HashEmbedder(embedder_dims)`."""
    built = Memory.from_config(offline_config(vector_store, embedder_dims))
    built.embedding_model = HashEmbedder(embedder_dims)
    return built


def close(built: Memory) -> None:
    """Release what `Memory.close()` leaves open: the psycopg pools of its stores."""
    stores = [built.vector_store, getattr(built, "_entity_store", None)]
    for store in stores:
        pool = getattr(store, "connection_pool", None)
        if pool is not None:
            pool.close()
    built.close()
