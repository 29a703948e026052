"""A stand-in for the Mem0 Platform's HTTP API, enough for mem0ai's `MemoryClient` to
export through: a stdlib `http.server` in a thread on 127.0.0.1.

It serves what the client calls (mem0ai 2.2.1, `mem0/client/main.py`), in the shapes the
Platform's API reference documents (docs.mem0.ai, api-reference: entities/get-users,
memory/get-memories):

- `GET /v1/ping/`: the client's key check at construction; `org_id`, `project_id`,
  `user_email` are the fields it reads;
- `GET /v1/entities/`: a JSON array of entities (`id`, `name`, `type` of user, agent, app
  or run, `total_memories`, `created_at`, `updated_at`, `owner`, `organization`,
  `metadata`), as the reference's schema says (`entities_wrapped=True` answers
  `{"results": [...]}` instead, the shape the SDK's `delete_users` reads);
- `POST /v3/memories/?page=P&page_size=N` with `{"filters": {...}}`: the entity's
  memories in pages of `{"count", "next", "previous", "results"}`; `page_size` at most
  200; an entity filter required (400 otherwise, the reference's message); memories whose
  `expiration_date` has passed hidden unless `show_expired`.

Every request needs `Authorization: Token KEY`; another key gets 401 with a `detail`, as
the Platform's REST framework answers. `fail_once` makes chosen pages fail with a 500 the
first time they are asked for: an export stopped mid-way.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

MAX_PAGE_SIZE = 200
ENTITY_FILTERS = ("user_id", "agent_id", "app_id", "run_id")
_WORDS = ("likes", "prefers", "is allergic to", "works on", "plans a trip to", "reads about",
          "is learning", "avoids", "collects", "writes about")
_THINGS = ("hiking in the Alps", "green tea", "peanuts", "a compiler", "Lisbon", "jazz",
           "Japanese", "late meetings", "vinyl records", "PostgreSQL")
_CATEGORIES = ("hobbies", "food", "health", "work", "travel", "learning")
PROJECT_ZONE = timezone(timedelta(hours=-7))  # the Platform answers in the project's zone


def synthetic_memories(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` Platform memories over 4 users, 2 agents and 3 runs, with only documented
    fields: some for a user alone, some for a user and an agent (listed under both), some
    for an agent alone, some in a run (`session_id`, as v3 items carry it), with metadata,
    categories, immutable, and an expiration date (a few already past)."""
    rng = random.Random(seed)
    base = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    memories = []
    for n in range(count):
        user = f"user-{n % 4}"
        created = base + timedelta(minutes=7 * n, microseconds=rng.randrange(10**6))
        kind = n % 5
        expires = None
        if n % 11 == 0:
            expires = (date(2024, 1, 1) if n % 22 == 0 else date(2030, 1, 1)).isoformat()
        memories.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "memory": f"{user} {rng.choice(_WORDS)} {rng.choice(_THINGS)} (#{n})",
            "user_id": None if kind == 3 else user,
            "agent_id": f"agent-{n % 2}" if kind in (1, 3) else None,
            "app_id": None,
            "session_id": f"run-{n % 3}" if kind == 4 else None,
            "metadata": {"source": "chat", "turn": n} if n % 2 else None,
            "categories": [rng.choice(_CATEGORIES)] if n % 3 else [],
            "immutable": n % 13 == 0,
            "expiration_date": expires,
            "created_at": created.astimezone(PROJECT_ZONE).isoformat(),
            "updated_at": (created + timedelta(hours=1)).astimezone(PROJECT_ZONE).isoformat(),
        })
    return memories


def _matches(memory: dict[str, Any], key: str, value: str) -> bool:
    if key == "run_id":
        return value in (memory.get("run_id"), memory.get("session_id"))
    return bool(memory.get(key) == value)


def _expired(memory: dict[str, Any], today: date) -> bool:
    expires = memory.get("expiration_date")
    return expires is not None and date.fromisoformat(expires) < today


@dataclass
class PlatformServer:
    """The server's data and knobs; `url` once started."""

    memories: list[dict[str, Any]]
    api_key: str = "m0-test-key"
    entities_wrapped: bool = False
    fail_once: set[tuple[str, int]] = field(default_factory=set)  # (entity name, page)
    page_delay_s: float = 0.0  # answer each page this late: room to kill a client mid-way
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path+query)
    url: str = ""
    today: date = field(default_factory=lambda: date(2026, 12, 6))
    _listed: dict[tuple[str, bool], list[dict[str, Any]]] = field(default_factory=dict)

    def entity_list(self) -> list[dict[str, Any]]:
        found: dict[tuple[str, str], int] = {}
        for memory in self.memories:
            for key in ENTITY_FILTERS:
                name = memory.get("session_id") if key == "run_id" and not memory.get(
                    "run_id") else memory.get(key)
                if name:
                    found[(key[:-3], name)] = found.get((key[:-3], name), 0) + 1
        stamp = "2025-03-01T09:00:00Z"
        return [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{name}")), "name": name,
                 "type": kind, "total_memories": total, "created_at": stamp,
                 "updated_at": stamp, "owner": "owner@example.com",
                 "organization": "org-test", "metadata": {}}
                for (kind, name), total in sorted(found.items())]

    def page(self, filters: dict[str, Any], page: int, size: int,
             show_expired: bool) -> dict[str, Any]:
        key = (json.dumps(filters, sort_keys=True), show_expired)
        if key not in self._listed:  # the memories never change while the server runs
            self._listed[key] = sorted(
                (m for m in self.memories
                 if all(_matches(m, k, v) for k, v in filters.items() if k in ENTITY_FILTERS)
                 and (show_expired or not _expired(m, self.today))),
                key=lambda m: (m["created_at"], m["id"]))
        chosen = self._listed[key]
        start = (page - 1) * size

        def link(number: int) -> str:
            return f"{self.url}/v3/memories/?{urlencode({'page': number, 'page_size': size})}"

        return {"count": len(chosen),
                "next": link(page + 1) if start + size < len(chosen) else None,
                "previous": link(page - 1) if page > 1 else None,
                "results": chosen[start:start + size]}


def _handler(server: PlatformServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Token {server.api_key}":
                return True
            self._send(401, {"detail": "Invalid API key."})
            return False

        def do_GET(self) -> None:
            server.requests.append(("GET", self.path))
            if not self._authorised():
                return
            path = urlsplit(self.path).path
            if path == "/v1/ping/":
                self._send(200, {"status": "ok", "org_id": "org-test",
                                 "project_id": "project-test",
                                 "user_email": "owner@example.com"})
            elif path == "/v1/entities/":
                entities = server.entity_list()
                self._send(200, {"results": entities} if server.entities_wrapped
                           else entities)
            else:
                self._send(404, {"detail": "Not found."})

        def do_POST(self) -> None:
            server.requests.append(("POST", self.path))
            if not self._authorised():
                return
            parts = urlsplit(self.path)
            if parts.path != "/v3/memories/":
                self._send(404, {"detail": "Not found."})
                return
            query = parse_qs(parts.query)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))
                              or b"{}")
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", ["100"])[0])
            filters = body.get("filters") or {}
            if size > MAX_PAGE_SIZE or size < 1 or page < 1:
                self._send(400, {"detail": f"page_size must be 1 to {MAX_PAGE_SIZE}"})
                return
            named = [v for k, v in filters.items() if k in ENTITY_FILTERS]
            if not named:
                self._send(400, {"message": "One of the filters: app_id, user_id, agent_id, "
                                            "run_id is required!"})
                return
            if (named[0], page) in server.fail_once:
                server.fail_once.discard((named[0], page))
                self._send(500, {"detail": "A server error occurred."})
                return
            time.sleep(server.page_delay_s)
            self._send(200, server.page(filters, page, size, bool(body.get("show_expired"))))

    return Handler


@contextmanager
def platform_server(memories: list[dict[str, Any]], **knobs: Any) -> Iterator[PlatformServer]:
    """Serve `memories` on 127.0.0.1 (a free port) for the block's duration."""
    state = PlatformServer(memories, **knobs)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
