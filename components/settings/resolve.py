"""The `Settings` fields computed from more than their own key, one resolver each.

A setting declared `resolved=True` names one of these fields; the parser calls each
resolver once, in this table's order, after the checks of single keys. A resolver reads
the parsed values by key (None where a key was already reported invalid) and appends the
problems only it can see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from components.settings.choices import TARGETS, IterativeScan, SslMode, Target
from components.settings.spec import SUPABASE_OWNER, SUPABASE_SERVICE_ROLE, EncryptedValue
from components.vectorindex import VectorIndex, size_vector_index

__all__ = ["RESOLVERS", "Resolver"]

# (parsed values by key, stack name, problems) -> the field's value
Resolver = Callable[[Mapping[str, Any], str, list[str]], object]


def _embedded_data_dir(values: Mapping[str, Any], stack: str, problems: list[str]) -> object:
    """`embeddedDataDir`, or `.pgdata/<stack>` when empty."""
    return values["embeddedDataDir"] or f".pgdata/{stack}"


def _database_url_encrypted(values: Mapping[str, Any], stack: str,
                            problems: list[str]) -> object:
    """Whether `databaseUrl` is set in the stack file as a secure value this process cannot
    decrypt (the CLI reading a stack file): set, but not usable here."""
    return isinstance(values["databaseUrl"], EncryptedValue)


def _iterative_scan(values: Mapping[str, Any], stack: str,
                    problems: list[str]) -> IterativeScan | None:
    """`auto` is relaxed_order, except off on embedded (pgvector 0.6 has no iterative scan);
    an explicit scan other than off is refused there."""
    declared, target = values["iterativeScan"], values["target"]
    if declared is None or target not in TARGETS:
        return None
    if declared == IterativeScan.AUTO:
        return IterativeScan.OFF if target == Target.EMBEDDED else IterativeScan.RELAXED_ORDER
    if declared != IterativeScan.OFF and target == Target.EMBEDDED:
        problems.append(
            f"iterativeScan: {declared!r} is not allowed with target 'embedded'; allowed: "
            "auto, off (the embedded server bundles pgvector 0.6, and iterative scans need "
            "pgvector 0.8 or later)")
        return None
    return IterativeScan(declared)


def _ssl_mode(values: Mapping[str, Any], stack: str, problems: list[str]) -> SslMode | None:
    """`auto` is require, or disable on embedded; embedded takes nothing else (its server
    is a local socket without TLS), the others nothing weaker than require; verify-ca and
    verify-full need sslRootCert."""
    declared, target = values["sslMode"], values["target"]
    if declared is None or target not in TARGETS:
        return None
    if target == Target.EMBEDDED:
        if declared not in (SslMode.AUTO, SslMode.DISABLE):
            problems.append(
                f"sslMode: {declared!r} is not allowed with target 'embedded'; allowed: auto, "
                "disable (the embedded server listens on a local Unix socket, without TLS)")
            return None
        return SslMode.DISABLE
    if declared == SslMode.DISABLE:
        problems.append(
            f"sslMode: 'disable' is not allowed with target {target!r}; allowed: auto, "
            "require, verify-ca, verify-full (a deployment's connections carry passwords "
            "and memories: at least require)")
        return None
    mode = SslMode.REQUIRE if declared == SslMode.AUTO else SslMode(declared)
    if mode in (SslMode.VERIFY_CA, SslMode.VERIFY_FULL) and not values["sslRootCert"]:
        problems.append(
            f"sslRootCert: not set, but sslMode is {str(mode)!r}; set it to the absolute path "
            "of the server's root certificate (PEM), or use sslMode require")
    return mode


def _supabase_role(key: str, supabase_role: str | None) -> Resolver:
    """The project's role of `key`, or on target supabase the role Supabase provides for
    that job (None: Supabase has none, and the stack creates none)."""

    def resolve(values: Mapping[str, Any], stack: str, problems: list[str]) -> object:
        return supabase_role if values["target"] == Target.SUPABASE else values[key]

    resolve.__doc__ = f"{key}, or {supabase_role!r} on target supabase."
    return resolve


def _vector_index(values: Mapping[str, Any], stack: str,
                  problems: list[str]) -> VectorIndex | None:
    """The index `vectorIndex*`, `expectedRows` and `dimensions` ask for, sized by
    components.vectorindex."""
    dims = values["dimensions"]
    return size_vector_index(
        values["vectorIndexMethod"], values["vectorIndexMeasure"], values["expectedRows"],
        dims if isinstance(dims, int) else None, values["vectorIndexM"],
        values["vectorIndexEfConstruction"], values["vectorIndexLists"], problems)


RESOLVERS: dict[str, Resolver] = {
    "embedded_data_dir": _embedded_data_dir,
    "database_url_encrypted": _database_url_encrypted,
    "iterative_scan": _iterative_scan,
    "ssl_mode": _ssl_mode,
    "owner_role": _supabase_role("ownerRole", SUPABASE_OWNER),
    "readonly_role": _supabase_role("readonlyRole", None),
    "service_role": _supabase_role("serviceRole", SUPABASE_SERVICE_ROLE),
    "vector_index": _vector_index,
}
