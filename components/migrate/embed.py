"""The application's embedder, built from the embedder config it gives mem0.

The file (JSON, or YAML) is either mem0's whole config, whose `embedder` section is used,
or that section alone: `{"provider": "openai", "config": {"model": ..., ...}}`. Every
provider mem0 supports is built by mem0's own `EmbedderFactory` (openai, ollama,
huggingface, ...), so the import embeds exactly as the application will search. Provider
`class` loads a custom `mem0.embeddings.base.EmbeddingBase` subclass named by
`config.class` as `module:Name` (mem0-contract.md 6); the rest of `config` goes to it as
mem0's `BaseEmbedderConfig`.

`load_embedder` embeds one probe text at once: a wrong key, an unreachable server or
vectors of the wrong size stop the import before anything is written.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from components.migrate.records import Embedder, MigrationError

__all__ = ["CLASS_PROVIDER", "Mem0Embedder", "load_embedder", "read_embedder_config"]

CLASS_PROVIDER: Final = "class"
PROBE_TEXT: Final = "a probe text to learn the embedder's dimensions"


class Mem0Embedder:
    """A mem0 embedding model behind the migration's `Embedder` interface."""

    def __init__(self, name: str, model: Any, dims: int) -> None:
        self.name = name
        self.model = model
        self.dims: int | None = dims

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        texts = list(texts)
        batch = getattr(self.model, "embed_batch", None)
        if batch is not None:
            vectors = batch(texts, "add")
        else:
            vectors = [self.model.embed(text, "add") for text in texts]
        found = [[float(v) for v in vector] for vector in vectors]
        if len(found) != len(texts):
            raise MigrationError(f"embedder {self.name} returned {len(found)} vectors for "
                                 f"{len(texts)} texts")
        for vector in found:
            if len(vector) != self.dims:
                raise MigrationError(
                    f"embedder {self.name} gives {len(vector)}-dimension vectors, the "
                    f"stack's vector column has {self.dims}: set the embedder's model or "
                    f"embedding_dims to {self.dims}, or deploy the stack with "
                    f"{len(vector)} dimensions")
        return found


def read_embedder_config(path: Path) -> dict[str, Any]:
    """The embedder section of the file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MigrationError(f"embedder config {path}: {exc.strerror or exc}") from exc
    try:
        document = (json.loads(text) if path.suffix.lower() == ".json"
                    else yaml.safe_load(text))
    except (ValueError, yaml.YAMLError) as exc:
        raise MigrationError(f"embedder config {path} is not valid JSON or YAML: {exc}") from exc
    if isinstance(document, Mapping) and isinstance(document.get("embedder"), Mapping):
        document = document["embedder"]
    if not isinstance(document, Mapping) or not isinstance(document.get("provider"), str):
        raise MigrationError(
            f"embedder config {path}: give mem0's config with an `embedder` section, or "
            'the section alone: {"provider": "openai", "config": {...}}')
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise MigrationError(f"embedder config {path}: `config` must be a mapping")
    return {"provider": document["provider"], "config": dict(config)}


def _custom(path: Path, config: dict[str, Any]) -> Any:
    from mem0.configs.embeddings.base import (  # type: ignore[import-untyped]
        BaseEmbedderConfig,
    )
    from mem0.embeddings.base import EmbeddingBase  # type: ignore[import-untyped]

    target = config.pop("class", None)
    if not isinstance(target, str) or target.count(":") != 1:
        raise MigrationError(f"embedder config {path}: provider {CLASS_PROVIDER!r} needs "
                             'config.class as "module:Name"')
    module_name, class_name = target.split(":")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise MigrationError(f"embedder config {path}: cannot load {target}: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, EmbeddingBase)):
        raise MigrationError(f"embedder config {path}: {target} is not a subclass of "
                             "mem0.embeddings.base.EmbeddingBase")
    return found(BaseEmbedderConfig(**config) if config else None)


def load_embedder(path: Path, dims: int) -> Embedder:
    """The embedder `path` configures, checked to give `dims`-dimension vectors."""
    section = read_embedder_config(path)
    provider, config = section["provider"], section["config"]
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    from mem0.utils.factory import EmbedderFactory  # type: ignore[import-untyped]

    try:
        if provider == CLASS_PROVIDER:
            model = _custom(path, config)
            name = f"{CLASS_PROVIDER}:{type(model).__name__}"
        elif provider in EmbedderFactory.provider_to_class:
            model = EmbedderFactory.create(provider, config, None)
            name = f"{provider}:{config.get('model') or 'default model'}"
        else:
            known = ", ".join([*sorted(EmbedderFactory.provider_to_class), CLASS_PROVIDER])
            raise MigrationError(f"embedder config {path}: provider {provider!r} is not one "
                                 f"mem0 supports ({known})")
    except MigrationError:
        raise
    except Exception as exc:  # a provider's own error: a missing package, a bad option
        raise MigrationError(f"embedder config {path}: mem0 could not build the {provider} "
                             f"embedder: {exc}") from exc
    embedder = Mem0Embedder(name, model, dims)
    try:
        embedder.embed([PROBE_TEXT])
    except MigrationError:
        raise
    except Exception as exc:
        raise MigrationError(f"embedder {name} ({path}) failed on a probe text: "
                             f"{exc}") from exc
    return embedder
