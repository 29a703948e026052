"""SQL identifiers: validation and quoting.

Every name the project puts into DDL passes through here. Names are restricted to
lowercase ASCII so that PostgreSQL's catalog (pg_get_indexdef, format_type) prints them
exactly as the model renders them, unquoted; that keeps declared and live DDL comparable
byte for byte.
"""

from __future__ import annotations

import re

# PostgreSQL truncates identifiers at NAMEDATALEN - 1 bytes.
MAX_IDENTIFIER_LENGTH = 63

_SIMPLE = re.compile(r"^[a-z_][a-z0-9_]*$")

# Keywords that PostgreSQL's quote_ident() quotes (every category but "unreserved"),
# PostgreSQL 15/16. tests/integration/test_identifiers_live.py compares this set with
# pg_get_keywords() on the test server, so a new release that adds one is caught.
QUOTED_KEYWORDS = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary
    bit boolean both case cast char character check coalesce collate collation column
    concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user dec decimal default
    deferrable desc distinct do else end except exists extract false fetch float for
    foreign freeze from full grant greatest group grouping having ilike in initially inner
    inout int integer intersect interval into is isnull join json json_array
    json_arrayagg json_exists json_object json_objectagg json_query json_scalar
    json_serialize json_table json_value lateral leading least left like limit localtime
    localtimestamp merge_action national natural nchar none normalize not notnull null
    nullif numeric offset on only or order out outer overlaps overlay placing position
    precision primary real references returning right row select session_user setof
    similar smallint some substring symmetric system_user table tablesample then time
    timestamp to trailing treat trim true union unique user using values varchar variadic
    verbose when where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest
    xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
    """.split()
)


def identifier_problem(name: object, max_length: int = MAX_IDENTIFIER_LENGTH) -> str | None:
    """Why `name` is not a safe identifier, or None when it is."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if not _SIMPLE.match(name):
        return (
            "must start with a lowercase letter or underscore and contain only "
            "lowercase letters, digits and underscores"
        )
    if len(name) > max_length:
        return f"must be at most {max_length} characters"
    if name in QUOTED_KEYWORDS:
        return "must not be an SQL keyword"
    return None


def quote_ident(name: str) -> str:
    """Render an identifier; validated names need no quotes, anything else is quoted."""
    if identifier_problem(name) is None:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(value: str) -> str:
    """A string constant for DDL that cannot take bound parameters (ALTER ROLE ... SET).
    standard_conforming_strings is on (the default since 9.1): only quotes are doubled."""
    if "\\" in value or "\x00" in value:
        raise ValueError("a literal for DDL must not contain backslashes or NUL characters")
    return "'" + value.replace("'", "''") + "'"
