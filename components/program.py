"""The Pulumi program: read the stack's settings, declare one Mem0Backend, export outputs.

`__main__.py` only calls `run()`, so nothing the engine pickles is defined there.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

from components.mem0 import CONNECTION_GUIDANCE
from components.resources import Mem0Backend
from components.settings import PROJECT, Settings, settings_from_pulumi_config


def mem0_config(settings: Settings, connection_uri: pulumi.Input[str]) -> dict[str, Any]:
    """What the application's mem0 needs for this stack's vector store.

    Python profile: the dictionary for `Memory.from_config(...)`, with the app role's
    connection string (secret). TypeScript profile: the TS SDK's Supabase store settings;
    it connects over the Data API with the project's URL and key, which this stack does
    not hold, so those two stay for the application to fill in.
    """
    if settings.client_profile == "typescript":
        return {
            "vectorStore": {
                "provider": "supabase",
                "config": {"tableName": settings.collection,
                           "embeddingModelDims": settings.dimensions,
                           "supabaseUrl": "<SUPABASE_URL>", "supabaseKey": "<SUPABASE_KEY>"},
            },
            "historyStore": {
                "provider": "supabase",
                "config": {"tableName": "memory_history", "supabaseUrl": "<SUPABASE_URL>",
                           "supabaseKey": "<SUPABASE_KEY>"},
            },
        }
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
    return settings_from_pulumi_config(config.get, keys, pulumi.get_stack(),
                                       lambda key: is_config_secret(prefix + key))


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
    pulumi.export("appRole", settings.app_role)
    pulumi.export("access", {
        "tenancy": settings.tenancy, "appRoleIdentity": settings.app_role_identity,
        "sharedAgentKnowledge": settings.shared_agent_knowledge,
        "sessionScope": settings.session_scope, "owner": settings.owner_role,
        "readonlyRole": settings.readonly_role, "serviceRole": settings.service_role})
    pulumi.export("mem0Config", mem0_config(settings, backend.app_connection_uri))
    pulumi.export("poolerGuidance", CONNECTION_GUIDANCE)
    pulumi.export("checks", backend.checks.summary)
