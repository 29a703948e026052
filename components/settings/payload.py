"""Settings as plain data without their secrets, and back: the checks' wire format.

`CheckRun` resources carry `settings_payload(settings)` as an input, so the checks'
provider, in another process and later, rebuilds the same `Settings` with
`settings_from_payload`. State written earlier holds this dict: its shape (the
dataclasses' field names, plain strings and numbers) must not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from enum import Enum
from typing import Any, get_type_hints

from components.settings.choices import SslMode, Target
from components.settings.spec import SETTINGS, Fill
from components.settings.values import BenchThresholds, LifecycleJobs, Settings
from components.vectorindex import VectorIndex

__all__ = ["SECRET_FIELDS", "settings_from_payload", "settings_payload"]

# Settings fields that hold secrets: never part of a payload (they travel as secrets).
SECRET_FIELDS = tuple(spec.field for spec in SETTINGS if spec.fill == Fill.SECRET)
# Fields the checks never read, left out so that state written before them stays the same.
LEFT_OUT_FIELDS = ("lock_timeout",)
# Fields added later that the checks do read (the model depends on them): in the payload
# only when not at their default, so the payload of a stack that leaves them off stays as
# earlier state holds it; a payload without them reads back as the default.
DEFAULT_LEFT_OUT = {"org_admins": False, "agent_spaces": False}


def _plain(value: Any) -> Any:
    """Closed-set members as their plain strings, so JSON and Pulumi see only strings."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def settings_payload(settings: Settings) -> dict[str, Any]:
    """Settings as plain data without its secrets: what a resource input can carry to the
    checks' provider, which rebuilds them with `settings_from_payload`."""
    payload: dict[str, Any] = _plain(asdict(settings))
    for name in (*SECRET_FIELDS, *LEFT_OUT_FIELDS):
        payload.pop(name)
    for name, default in DEFAULT_LEFT_OUT.items():
        if payload[name] == default:
            payload.pop(name)
    # TLS fields at the target's defaults are left out: a stack that never set them keeps
    # the payload its state holds (no check reruns for an upgrade alone).
    if payload["ssl_mode"] == _default_ssl_mode(settings.target):
        payload.pop("ssl_mode")
    if not payload["ssl_root_cert"]:
        payload.pop("ssl_root_cert")
    payload["warnings"] = list(settings.warnings)
    return payload


def _typed(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `cls` from a payload: Pulumi's wire format carries numbers as doubles
    (integers come back as 16.0) and drops the keys whose value is None; closed sets come
    back as their `Choice` members."""
    hints = get_type_hints(cls)
    typed: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in values and "None" not in str(f.type):
            continue
        hint = hints[f.name]
        value = int(values[f.name]) if hint is int else values.get(f.name)
        if isinstance(hint, type) and issubclass(hint, Enum) and value is not None:
            value = hint(value)
        typed[f.name] = value
    return typed


def settings_from_payload(payload: Mapping[str, Any], **secrets: str | None) -> Settings:
    """The Settings a payload was made from; the secrets come as keyword arguments
    named as their fields (`pooler_url=...`), None when not given."""
    values = _typed(Settings, payload)
    values["vector_index"] = VectorIndex(**_typed(VectorIndex, payload["vector_index"]))
    values["bench"] = BenchThresholds(**_typed(BenchThresholds, payload["bench"]))
    values["jobs"] = LifecycleJobs(**_typed(LifecycleJobs, payload["jobs"]))
    values["warnings"] = tuple(payload.get("warnings") or ())
    for name in SECRET_FIELDS:
        values[name] = secrets.get(name)
    values.setdefault("ssl_mode", _default_ssl_mode(values["target"]))
    values.setdefault("ssl_root_cert", "")
    return Settings(**values)


def _default_ssl_mode(target: str) -> SslMode:
    """What sslMode auto resolves to (settings/resolve.py)."""
    return SslMode.DISABLE if target == Target.EMBEDDED else SslMode.REQUIRE
