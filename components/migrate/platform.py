"""The Mem0 Platform, read through mem0ai's own `MemoryClient` (mem0-contract.md 13).

What the client does, and therefore what an export relies on (mem0ai 2.2.1,
`mem0/client/main.py`):

- construction sends `GET /v1/ping/` with `Authorization: Token KEY`; a refused key
  comes back as a bare `ValueError`, so a response hook records the status to tell a bad
  key (401, 403) from another failure;
- `users()` sends `GET /v1/entities/`: every user, agent, app and run that holds
  memories. The API reference documents a JSON array; the SDK's own `delete_users` reads
  `{"results": [...]}`: both are accepted;
- `get_all(filters={"user_id": NAME}, page=P, page_size=N, show_expired=True)` sends
  `POST /v3/memories/?page=P&page_size=N` with the filters in the body and returns
  `{"count", "next", "previous", "results"}`; expired memories are hidden unless
  `show_expired` (an export wants them all). Its errors are `mem0.exceptions.MemoryError`.

Importing mem0 with telemetry on sends PostHog events (with a hash of the API key) and
fetches a notice file: `connect` turns it off unless the caller's environment says
otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from components.migrate.records import MigrationError

__all__ = ["DEFAULT_HOST", "MAX_PAGE_SIZE", "Entity", "Page", "PlatformReader", "connect"]

DEFAULT_HOST: Final = "https://api.mem0.ai"
MAX_PAGE_SIZE: Final = 200  # the Platform's limit for get_all
ENTITY_TYPES: Final = ("user", "agent", "app", "run")
TIMEOUT_S: Final = 60.0


@dataclass(frozen=True)
class Entity:
    """One user, agent, app or run that holds memories: `get_all` filters on `key`."""

    type: str
    name: str
    total: int | None  # the entity list's total_memories, when it says

    @property
    def key(self) -> str:
        return f"{self.type}_id"

    def describe(self) -> str:
        return f"{self.type} {self.name!r}"


@dataclass(frozen=True)
class Page:
    """One page of one entity's memories, raw."""

    number: int
    results: list[dict[str, Any]]
    count: int | None
    has_next: bool


class PlatformReader:
    """Reads entities and their pages through a connected `MemoryClient`."""

    def __init__(self, client: Any, host: str) -> None:
        self.client = client
        self.host = host

    def entities(self) -> list[Entity]:
        answer = self._call("list the entities (GET /v1/entities/)", self.client.users)
        items = answer.get("results") if isinstance(answer, Mapping) else answer
        if not isinstance(items, list):
            raise MigrationError(f"the Platform at {self.host} answered the entity list with "
                                 f"{type(answer).__name__}, not a list of entities")
        found: list[Entity] = []
        for item in items:
            kind, name = item.get("type"), item.get("name") or item.get("id")
            if kind in ENTITY_TYPES and isinstance(name, str) and name:
                total = item.get("total_memories")
                found.append(Entity(kind, name, total if isinstance(total, int) else None))
        return found

    def page(self, entity: Entity, number: int, page_size: int) -> Page:
        answer = self._call(
            f"read page {number} of {entity.describe()}'s memories (POST /v3/memories/)",
            lambda: self.client.get_all(filters={entity.key: entity.name}, page=number,
                                        page_size=page_size, show_expired=True))
        results = answer.get("results") if isinstance(answer, Mapping) else None
        if not isinstance(results, list):
            raise MigrationError(f"the Platform at {self.host} answered page {number} of "
                                 f"{entity.describe()} without a `results` list")
        count = answer.get("count")
        following = answer.get("next")
        has_next = bool(following) if "next" in answer else len(results) >= page_size
        return Page(number, results, count if isinstance(count, int) else None, has_next)

    def pages(self, entity: Entity, first: int, page_size: int) -> Iterator[Page]:
        number = first
        while True:
            page = self.page(entity, number, page_size)
            yield page
            if not page.has_next or not page.results:
                return
            number += 1

    def _call(self, what: str, call: Any) -> Any:
        from mem0.exceptions import MemoryError as Mem0Error  # type: ignore[import-untyped]
        try:
            return call()
        except Mem0Error as exc:
            status = getattr(exc, "debug_info", {}).get("status_code")
            if status in (401, 403):
                raise MigrationError(_bad_key(self.host, exc.message)) from exc
            raise MigrationError(f"could not {what} at {self.host}: {exc.message}"
                                 f"{f' (HTTP {status})' if status else ''}") from exc


def _bad_key(host: str, detail: object) -> str:
    return (f"the Platform at {host} refused the API key ({detail}): check --api-key "
            "(or MEM0_API_KEY)")


def connect(api_key: str | None, host: str | None) -> PlatformReader:
    """A `MemoryClient` for `host` (the Platform by default), its key checked by its own
    ping; errors name --api-key or --host."""
    key = api_key or os.environ.get("MEM0_API_KEY")
    if not key:
        raise MigrationError("no API key: pass --api-key KEY or set MEM0_API_KEY")
    base = (host or DEFAULT_HOST).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise MigrationError(f"--host {host!r} is not a URL: give http(s)://HOST[:PORT]")
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    import httpx
    from mem0 import MemoryClient  # type: ignore[import-untyped]  # ships no types

    statuses: list[int] = []
    http = httpx.Client(timeout=TIMEOUT_S,
                        event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
    try:
        client = MemoryClient(api_key=key, host=base, client=http)
    except ValueError as exc:  # the client's own wording for a failed ping
        detail = str(exc).removeprefix("Error: ")
        if statuses and statuses[-1] in (401, 403):
            raise MigrationError(_bad_key(base, detail)) from exc
        raise MigrationError(f"the Platform at {base} failed its ping (GET /v1/ping/): "
                             f"{detail}") from exc
    except httpx.HTTPError as exc:
        raise MigrationError(f"cannot reach the Platform at {base} (--host): {exc}") from exc
    return PlatformReader(client, base)
