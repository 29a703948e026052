"""Names the model renders unquoted are exactly the ones PostgreSQL prints unquoted."""

from __future__ import annotations

from components.identifiers import QUOTED_KEYWORDS, identifier_problem
from tests.conftest import TestDatabase


def test_every_keyword_the_server_quotes_is_refused(database: TestDatabase) -> None:
    with database.connect() as conn:
        quoted = {w for (w,) in conn.execute(
            "SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'").fetchall()}
    assert quoted <= QUOTED_KEYWORDS, sorted(quoted - QUOTED_KEYWORDS)


def test_accepted_names_are_printed_unquoted_by_the_server(database: TestDatabase) -> None:
    names = ["memories", "agent_memory_2", "_private", "mem0", "analyse_x"]
    with database.connect() as conn:
        for name in names:
            assert identifier_problem(name) is None
            assert conn.execute("SELECT quote_ident(%s)", (name,)).fetchone() == (name,)
