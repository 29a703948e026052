"""One module per kind of SQL object, and the registry that finds a kind's behaviour.

    base.py                the vocabulary: `Kind`, `Family`, `KindSpec`, `Change`,
                           `SqlObjectError`, the JSON form of a kind's fields
    apply.py               what every apply shares: timeouts, the checked transaction,
                           whether a table holds rows
    apply_lock.py          the project's apply lock, apply sessions' names and client
                           check, and recovery from a killed deployment's session
    extension.py ... cron_job.py
                           one per `Kind`: the kind's fields (a frozen dataclass), the
                           canonical DDL rendered from them, the catalog reader that
                           rebuilds the same text from a live database, and the kind's
                           apply (`ensure`) and `delete`

The model (`components.model`) builds each object's fields and renders its DDL here;
introspection (`components.introspect`) and the provider (`components.provider`) look a
kind up in `REGISTRY` and never branch on it. A new kind is a new module here with its
`SPEC`, a member of `Kind`, an entry below, and the model's builder method.
"""

from __future__ import annotations

from typing import Any

from components.kinds import (
    cron_job,
    default_privileges,
    extension,
    function,
    grant,
    index,
    policy,
    role,
    role_settings,
    row_security,
    schema,
    statistics,
    table,
    trigger,
)
from components.kinds.base import (
    Change,
    Family,
    Kind,
    KindSpec,
    ObjectRef,
    SqlObjectError,
    fields_from_json,
    fields_json,
)

__all__ = ["REGISTRY", "Change", "Family", "Kind", "KindSpec", "ObjectRef", "SqlObjectError",
           "fields_from_json", "fields_json", "kind_spec", "label"]

REGISTRY: dict[Kind, KindSpec[Any]] = {spec.kind: spec for spec in (
    extension.SPEC, role.SPEC, schema.SPEC, table.SPEC, function.SPEC, index.SPEC,
    statistics.SPEC, trigger.SPEC, grant.SPEC, default_privileges.SPEC, row_security.SPEC,
    policy.SPEC, role_settings.SPEC, cron_job.SPEC)}
assert list(REGISTRY) == list(Kind), "every kind has its module, in Kind's order"


def kind_spec(kind: str) -> KindSpec[Any]:
    """The registry's entry for a kind (a `Kind` or its value); ValueError names the
    allowed kinds."""
    try:
        return REGISTRY[Kind(kind)]
    except ValueError:
        raise ValueError(f"unknown object kind {kind!r}; allowed: "
                         f"{', '.join(Kind)}") from None


def label(ref: ObjectRef) -> str:
    """How messages name an object (a spec as a mapping, or a resource's props)."""
    return kind_spec(ref["kind"]).label(ref)
