"""The Pulumi program: read the stack's settings, declare one Mem0Backend, export outputs.

`__main__.py` only calls `run()`, so nothing the engine pickles is defined there.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from components.resources import Mem0Backend
from components.settings import PROJECT, Settings, settings_from_pulumi_config


def mem0_config(settings: Settings, connection_uri: pulumi.Input[str]) -> dict[str, Any]:
    """What `Memory.from_config(...)` needs for this stack's vector store."""
    return {
        "vector_store": {
            "provider": "pgvector",
            "config": {
                "connection_string": pulumi.Output.secret(connection_uri),
                "collection_name": settings.collection,
                "embedding_model_dims": settings.dimensions,
            },
        },
    }


def read_settings() -> Settings:
    config = pulumi.Config(PROJECT)
    prefix = f"{PROJECT}:"
    # The engine hands config over either in-process (set_all_config) or via PULUMI_CONFIG.
    every_key = set(CONFIG.get()) | set(get_config_env())
    keys = sorted(k[len(prefix):] for k in every_key if k.startswith(prefix))
    return settings_from_pulumi_config(config.get, keys, pulumi.get_stack())


def run() -> None:
    settings = read_settings()
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    backend = Mem0Backend(f"mem0-{settings.stack}", settings)
    pulumi.export("target", settings.target)
    pulumi.export("database", backend.database)
    pulumi.export("tables", backend.tables)
    pulumi.export("vectorIndex", {
        "method": settings.vector_index.method, "measure": settings.vector_index.measure,
        "reason": settings.vector_index.reason})
    pulumi.export("mem0Config", mem0_config(settings, backend.app_connection_uri))
