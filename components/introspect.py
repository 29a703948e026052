"""Read live objects back from the catalog in the model's canonical DDL form.

One introspection serves drift detection (the provider's `read`), adoption (`create`),
validation and the tests. Connections must have an empty `search_path`
(`components.connection.connect` sets it) so the catalog schema-qualifies every
non-catalog name exactly as the model writes it.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from components.identifiers import qualified, quote_ident

Cursor = psycopg.Cursor

INVALID_INDEX_NOTE = "-- INVALID: a failed or interrupted build left this index unusable"


def _extension(cur: Cursor, schema: str, name: str, table: str) -> str | None:
    row = cur.execute(
        "SELECT n.nspname FROM pg_catalog.pg_extension e"
        " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)} WITH SCHEMA {quote_ident(row[0])};"


def _relation(cur: Cursor, schema: str, name: str, relkinds: str) -> tuple[int, str] | None:
    """(oid, relpersistence) of the relation, or None."""
    row = cur.execute(
        "SELECT c.oid, c.relpersistence FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = ANY(%s)",
        (schema, name, list(relkinds)),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


_COLUMNS = """
SELECT a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       a.attgenerated,
       a.attidentity,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

# Constraints in a fixed order: primary key, unique, foreign keys, checks, exclusions.
# NOT NULL constraints ('n', PostgreSQL 18) are shown on their columns instead.
_CONSTRAINTS = """
SELECT conname, pg_catalog.pg_get_constraintdef(oid)
FROM pg_catalog.pg_constraint
WHERE conrelid = %s AND contype <> 'n'
ORDER BY array_position(ARRAY['p','u','f','c','x']::"char"[], contype), conname
"""


def column_line(name: str, type_: str, not_null: bool, generated: str, identity: str,
                default: str | None, collation: str | None) -> str:
    line = f"{quote_ident(name)} {type_}"
    if collation:
        line += f" COLLATE {quote_ident(collation)}"
    if generated == "s":
        line += f" GENERATED ALWAYS AS ({default}) STORED"
    elif identity:
        line += " GENERATED " + ("ALWAYS" if identity == "a" else "BY DEFAULT") + " AS IDENTITY"
    elif default is not None:
        line += f" DEFAULT {default}"
    if not_null:
        line += " NOT NULL"
    return line


def _table(cur: Cursor, schema: str, name: str, table: str) -> str | None:
    relation = _relation(cur, schema, name, "rp")
    if relation is None:
        return None
    oid, persistence = relation
    elements = [column_line(*row) for row in cur.execute(_COLUMNS, (oid,)).fetchall()]
    elements += [f"CONSTRAINT {quote_ident(con)} {definition}"
                 for con, definition in cur.execute(_CONSTRAINTS, (oid,)).fetchall()]
    unlogged = "UNLOGGED " if persistence == "u" else ""
    body = ",\n".join(f"    {e}" for e in elements)
    return f"CREATE {unlogged}TABLE {qualified(schema, name)} (\n{body}\n);"


def _index(cur: Cursor, schema: str, name: str, table: str) -> str | None:
    relation = _relation(cur, schema, name, "iI")
    if relation is None:
        return None
    oid = relation[0]
    definition, valid = cur.execute(
        "SELECT pg_catalog.pg_get_indexdef(indexrelid), indisvalid"
        " FROM pg_catalog.pg_index WHERE indexrelid = %s", (oid,)).fetchone()  # type: ignore[misc]
    text = f"{definition};"
    return text if valid else f"{text}\n{INVALID_INDEX_NOTE}"


_READERS: dict[str, Callable[[Cursor, str, str, str], str | None]] = {
    "extension": _extension,
    "table": _table,
    "index": _index,
}


def live_ddl(cur: Cursor, kind: str, schema: str, name: str, table: str = "") -> str | None:
    """The object's definition as the catalog has it now, or None when it does not exist."""
    try:
        reader = _READERS[kind]
    except KeyError:
        raise ValueError(f"unknown object kind {kind!r}; known: {', '.join(_READERS)}") from None
    return reader(cur, schema, name, table)


def relation_has_storage(cur: Cursor, schema: str, name: str) -> bool:
    """True when the table has any data pages: rows may exist (RLS cannot hide them here)."""
    row = cur.execute(
        "SELECT pg_catalog.pg_relation_size(c.oid) > 0 FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s", (schema, name)).fetchone()
    return bool(row and row[0])


def catalog_snapshot(cur: Cursor, schemas: tuple[str, ...] = ("public", "extensions")
                     ) -> dict[str, str]:
    """Every extension, table and index in `schemas`, as `kind:schema.name` -> live DDL.

    Compares two databases object by object (a render applied with psql against a
    deployment) and shows what a database holds beyond what a stack declares.
    """
    found: dict[str, str] = {}
    for (name,) in cur.execute(
            "SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'"
            " ORDER BY extname").fetchall():
        found[f"extension:{name}"] = live_ddl(cur, "extension", "", name) or ""
    rows = cur.execute(
        "SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'i', 'I')"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = c.oid"
        "                 AND d.deptype = 'e')"  # objects that belong to an extension
        " ORDER BY 1, 2", (list(schemas),)).fetchall()
    for schema, name, relkind in rows:
        kind = "index" if relkind in ("i", "I") else "table"
        found[f"{kind}:{schema}.{name}"] = live_ddl(cur, kind, schema, name) or ""
    return found
