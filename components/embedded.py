"""The embedded development database as a resource (target `embedded`).

`create` starts (or reuses) a local PostgreSQL with pgvector from the `pgserver` package,
data under the stack's data directory; `delete` stops it and keeps the data directory, so
nothing is lost by a destroy that a later `up` cannot see again.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi import dynamic

from components.connection import (
    embedded_data_dir,
    embedded_spec,
    start_embedded,
    stop_embedded,
)


class EmbeddedPostgresProvider(dynamic.ResourceProvider):
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        spec = embedded_spec(props["data_dir"])
        uri = start_embedded(embedded_data_dir(spec))
        return dynamic.CreateResult(spec, {**props, "connection": spec, "uri": uri})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        moved = olds.get("data_dir") != news.get("data_dir")
        return dynamic.DiffResult(changes=moved, replaces=["data_dir"] if moved else [])

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        data_dir = embedded_data_dir(embedded_spec(props["data_dir"]))
        if not (data_dir / "PG_VERSION").exists():
            return dynamic.ReadResult(None, {})
        return dynamic.ReadResult(id_, props, {"data_dir": props["data_dir"]})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stop_embedded(embedded_data_dir(embedded_spec(props["data_dir"])))


class EmbeddedPostgres(dynamic.Resource, module="mem0", name="EmbeddedPostgres"):
    connection: pulumi.Output[str]
    uri: pulumi.Output[str]
    data_dir: pulumi.Output[str]

    def __init__(self, name: str, data_dir: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            EmbeddedPostgresProvider(), name,
            {"data_dir": data_dir, "connection": None, "uri": None},
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["uri"])),
        )
