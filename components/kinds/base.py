"""What every object kind shares: the `Kind` and `Family` enums, a kind's `KindSpec`, the
`Change` one apply works with, the error an apply raises, and the JSON form of a kind's fields.

A kind's fields are a frozen dataclass of plain values (str, bool, and tuples of them), so
they travel as resource inputs (`fields_json`) and come back from state
(`fields_from_json`) unchanged: tuples are written as lists, because Pulumi keeps a list's
order and not an object's key order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any, Generic, TypeVar

import psycopg

from components.errors import ExitCode, Mem0InfraError
from components.identifiers import qualified
from components.kinds.steps import PlanStep, plain_steps

Cursor = psycopg.Cursor
# What identifies an object: a spec's fields or a resource's props (kind, schema, name,
# table, role, on, arguments, and the declared fields or ddl where the reader needs them).
ObjectRef = Mapping[str, Any]

F = TypeVar("F")


class Kind(StrEnum):
    """Every kind of SQL object a stack declares (the `kind` input of a SqlObject)."""

    EXTENSION = "extension"
    ROLE = "role"
    SCHEMA = "schema"
    TABLE = "table"
    FUNCTION = "function"
    INDEX = "index"
    STATISTICS = "statistics"
    TRIGGER = "trigger"
    GRANT = "grant"
    DEFAULT_PRIVILEGES = "default_privileges"
    ROW_SECURITY = "row_security"
    POLICY = "policy"
    ROLE_SETTINGS = "role_settings"
    CRON_JOB = "cron_job"


class Family(StrEnum):
    """The component that owns an object, in the order families are declared (dependencies
    first): `resources.py` makes one ComponentResource per family."""

    EXTENSIONS = "extensions"
    ROLES = "roles"
    TABLES = "tables"
    FUNCTIONS = "functions"
    INDEXES = "indexes"
    TRIGGERS = "triggers"
    GRANTS = "grants"
    POLICIES = "policies"
    SEARCH_SETTINGS = "search_settings"
    JOBS = "jobs"


class SqlObjectError(Mem0InfraError):
    """A refusal or failure of one SQL object's apply whose message tells the operator what
    to do."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Change(Generic[F]):
    """One apply (or delete) of one object: what the provider hands a kind."""

    spec: KindSpec[F]
    props: Mapping[str, Any]  # the resource's inputs: ddl, drop_sql, identity keys, ...
    live: str | None = None  # the object's live definition before the apply
    olds: Mapping[str, Any] | None = None  # the previous inputs, on update
    allow_data_loss: bool = False

    @property
    def label(self) -> str:
        return self.spec.label(self.props)

    @cached_property
    def fields(self) -> F | None:
        """The kind's fields from the inputs; None in inputs that predate them. Derived
        only when asked: a delete of older state never needs them."""
        return self.spec.fields_of(self.props)

    def need_fields(self) -> F:
        """The fields, for an apply that cannot do without them."""
        if self.fields is None:
            raise SqlObjectError(f"{self.label}: the resource's inputs carry no `fields`; they are "
                            "written by the program since provider version 5: run `pulumi up`")
        return self.fields


Reader = Callable[[Cursor, ObjectRef], str | None]
# What `up` would run for a change, read-only: the plan's view of `ensure`.
Planner = Callable[[Cursor, "Change[Any]"], list[PlanStep]]


def default_label(ref: ObjectRef) -> str:
    """`<kind> <schema>.<name>`: how messages name most objects."""
    return f"{ref['kind']} {qualified(ref['schema'], ref['name'])}"


def named_label(ref: ObjectRef) -> str:
    """`<kind in words> <name>`: objects named without a schema (roles, extensions, ...)."""
    return f"{str(ref['kind']).replace('_', ' ')} {ref['name']}"


def _drop(conn: psycopg.Connection, change: Change[Any]) -> None:
    with conn.transaction():
        conn.execute(change.props["drop_sql"])


@dataclass(frozen=True)
class KindSpec(Generic[F]):
    """Everything the model, the introspection and the provider know about one kind."""

    kind: Kind
    family: Family  # the component that owns objects of this kind
    fields: type[F]  # the frozen dataclass of the fields apply reads from the inputs
    read: Reader  # the live definition in canonical form, or None when it does not exist
    ensure: Callable[[psycopg.Connection, Change[F]], None]  # make live match declared
    delete: Callable[[psycopg.Connection, Change[F]], None] = _drop
    label: Callable[[ObjectRef], str] = default_label
    # Made to match on create instead of adopted: nothing to adopt or clobber (a grant or
    # a table's RLS flags are exactly what the stack declares).
    converge_on_create: bool = False
    # Runs when an object already matches on create (adoption) or update: a role sets its
    # password, which no definition shows.
    unchanged: Callable[[psycopg.Connection, Change[F]], None] | None = None
    # The fields of inputs written before fields existed (older state, hand-made specs),
    # from their other inputs; None where no apply or read needs them.
    legacy_fields: Callable[[ObjectRef], F] | None = None
    # The inputs' fields from the model's (ObjectSpec.fields); the identity where the
    # model's dataclass is the one apply reads. The index sends only its head: what it
    # builds is in the ddl, and an index change must show as a ddl change alone.
    to_inputs: Callable[[Any], F] | None = None
    # The statements `up` would run (components.plan), read-only; None: the declared ddl,
    # after drop_sql when the object exists and `recreates` (apply drops and creates it).
    plan: Planner | None = None
    recreates: bool = False

    def planned(self, cur: Cursor, change: Change[F]) -> list[PlanStep]:
        """The steps that make live match declared (`change.live` None: the object is new)."""
        if self.plan is not None:
            return self.plan(cur, change)
        statements = [change.props["ddl"]]
        if change.live is not None and self.recreates and change.props.get("drop_sql"):
            statements.insert(0, change.props["drop_sql"])
        return plain_steps(statements)

    # Whether a live definition is what an interrupted apply left behind (an index whose
    # build was cancelled reads as INVALID): create rebuilds it instead of refusing to
    # adopt it, and it never counts as adopted.
    leftover: Callable[[str], bool] | None = None

    def is_leftover(self, live: str) -> bool:
        return self.leftover is not None and self.leftover(live)

    def input_fields(self, fields: Any) -> dict[str, Any]:
        """The `fields` input of a SqlObject, from the model's fields of the spec."""
        return fields_json(fields if self.to_inputs is None else self.to_inputs(fields))

    def fields_of(self, props: ObjectRef) -> F | None:
        """The kind's fields from a resource's inputs (or a spec as a mapping)."""
        value = props.get("fields")
        if isinstance(value, self.fields):
            return value
        if isinstance(value, Mapping):
            return fields_from_json(self.fields, value)
        return None if self.legacy_fields is None else self.legacy_fields(props)

    def change(self, props: Mapping[str, Any], live: str | None = None,
               olds: Mapping[str, Any] | None = None,
               allow_data_loss: bool = False) -> Change[F]:
        return Change(self, props, live, olds, allow_data_loss)


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple | list) else value


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, tuple | list) else value


def fields_json(fields: object) -> dict[str, Any]:
    """A kind's fields as plain JSON values (tuples as lists), for resource inputs."""
    if not dataclasses.is_dataclass(fields) or isinstance(fields, type):
        raise TypeError(f"not a kind's fields: {fields!r}")
    return {f.name: _thaw(getattr(fields, f.name)) for f in dataclasses.fields(fields)}


def fields_from_json(cls: type[F], data: Mapping[str, Any]) -> F:
    """`fields_json`'s inverse; keys the dataclass does not know are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: _freeze(v) for k, v in data.items() if k in names})
