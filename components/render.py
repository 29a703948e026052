"""A stack's complete SQL as one psql script (and as a Supabase migration file)."""

from __future__ import annotations

from components.model import build_model
from components.settings import Settings


def render_script(settings: Settings) -> str:
    index = settings.vector_index
    lines = [
        f"-- mem0infra: the SQL of stack {settings.stack!r} (target {settings.target}),",
        "-- rendered by `python -m components render`. Apply to an empty database with",
        "--   psql -v ON_ERROR_STOP=1 -f THIS_FILE",
        f"-- collection={settings.collection} dimensions={settings.dimensions} "
        f"tenancy={settings.tenancy} vector index={index.method}",
    ]
    lines += [f"-- WARNING: {w}" for w in settings.warnings]
    lines += [
        "",
        "BEGIN;",
        "-- Every name below is schema-qualified, as PostgreSQL's catalog prints it.",
        "SELECT pg_catalog.set_config('search_path', '', true);",
    ]
    for spec in build_model(settings):
        lines += ["", f"-- {spec.key}: {spec.comment}" if spec.comment else f"-- {spec.key}",
                  spec.ddl]
    lines += ["", "COMMIT;", ""]
    return "\n".join(lines)
