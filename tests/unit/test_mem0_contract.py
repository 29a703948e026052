"""components.mem0: the statements, LIMIT and payload as mem0 2.2.1 sends them."""

from __future__ import annotations

import hashlib
import json

from components import mem0


def test_the_limit_is_mem0s_overfetch() -> None:
    assert mem0.DEFAULT_SEARCH_LIMIT == mem0.search_limit() == 80
    assert [mem0.search_limit(k) for k in (1, 15, 16, 500)] == [60, 60, 64, 2000]


def test_verbatim_statements_are_mem0s_text() -> None:
    sql = mem0.Statements.verbatim("memories")
    assert sql.search(filtered=False) == ('SELECT id, vector <=> %s::vector AS distance, '
                                          'payload FROM "memories" ORDER BY distance LIMIT %s')
    assert sql.search() == ('SELECT id, vector <=> %s::vector AS distance, payload FROM '
                            '"memories" WHERE payload->>%s = %s ORDER BY distance LIMIT %s')
    assert sql.insert() == 'INSERT INTO "memories" (id, vector, payload) VALUES (%s, %s, %s)'
    assert sql.list() == 'SELECT id, payload FROM "memories" WHERE payload->>%s = %s LIMIT %s'
    assert sql.get() == 'SELECT id, payload FROM "memories" WHERE id = %s'


def test_qualified_statements_name_pgvectors_schema() -> None:
    sql = mem0.Statements.qualified_names("public.memories", "extensions")
    assert sql.search() == ("SELECT id, vector OPERATOR(extensions.<=>) %s::extensions.vector"
                            " AS distance, payload FROM public.memories WHERE payload->>%s = %s"
                            " ORDER BY distance LIMIT %s")
    assert mem0.search_params([0.5], "alice") == ([0.5], "user_id", "alice", 80)
    assert mem0.search_params([0.5], None, 60) == ([0.5], 60)


def test_the_payload_is_flat_with_mem0s_keys() -> None:
    text = "I love hiking in the Alps"
    at = mem0.timestamp()
    found = mem0.payload(text, user_id="alice", created_at=at, updated_at=at, score=7)
    assert list(found) == [*mem0.PAYLOAD_KEYS, "score"]
    assert found["hash"] == hashlib.md5(text.encode()).hexdigest()
    assert found["role"] == "user" and found["text_lemmatized"] == text
    bare = json.loads(mem0.payload_json(text, digest="x", role=None, org_id="o"))
    assert bare == {"data": text, "hash": "x", "text_lemmatized": text, "org_id": "o"}


def test_one_guidance_names_the_pool_without_prepared_statements() -> None:
    assert "prepare_threshold': None" in mem0.CONNECTION_GUIDANCE
    assert "session-mode pooler" in mem0.CONNECTION_GUIDANCE
