"""Raw config values -> one frozen `Settings`, or `SettingsError` naming every problem.

`parse_settings` coerces each declared key to its type and allowed values, runs the
checks of `rules.py` and the resolvers of `resolve.py`, then fills every `Settings` field
from the declarations (`spec.SETTINGS`): a plain field from its key, a resolved one from
its resolver. `settings_from_pulumi_config` is the program's entry: the same, from
Pulumi's config, refusing secrets given in plain text. Nothing is applied before settings
parse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

from components.errors import ExitCode, Mem0InfraError
from components.settings import rules
from components.settings.choices import AppRoleIdentity, Target
from components.settings.resolve import RESOLVERS
from components.settings.spec import (
    SETTINGS,
    SPECS_BY_KEY,
    ConfigType,
    EncryptedValue,
    Fill,
    SettingSpec,
)
from components.settings.values import Settings
from components.vectorindex import VectorIndex, dimension_problems, index_warnings

__all__ = ["SettingsError", "parse_settings", "settings_from_pulumi_config"]

# The Settings fields the parser gives itself rather than a setting.
PARSER_FIELDS = ("stack", "warnings")


class SettingsError(Mem0InfraError, ValueError):
    """One or more settings are invalid; the message names each key, value and rule."""

    exit_code = ExitCode.UNUSABLE

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack settings ({len(problems)}):\n{lines}")


def _allowed(spec: SettingSpec) -> str:
    if spec.allowed:
        return "allowed: " + ", ".join(c or "(empty)" for c in spec.allowed)
    if spec.type == ConfigType.INTEGER:
        return f"allowed: an integer from {spec.minimum} to {spec.maximum}"
    return "allowed: a string"


def _coerce(spec: SettingSpec, value: object, problems: list[str]) -> Any:
    """The raw value (native YAML or Pulumi's strings) as the declared type and allowed
    value (a `Choice` member for a closed set), or None after reporting why not."""
    if spec.type == ConfigType.INTEGER:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{spec.key}: {value!r} is not an integer; {_allowed(spec)}")
            return None
        assert spec.minimum is not None and spec.maximum is not None
        if not spec.minimum <= value <= spec.maximum:
            problems.append(f"{spec.key}: {value} is not allowed; {_allowed(spec)}")
            return None
        return value
    if spec.type == ConfigType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        problems.append(f"{spec.key}: {value!r} is not allowed; use true or false")
        return None
    if not isinstance(value, str) or (spec.allowed and value not in spec.allowed):
        problems.append(f"{spec.key}: {value!r} is not allowed; {_allowed(spec)}")
        return None
    return spec.enum(value) if spec.enum else value


def _parsed_values(raw: Mapping[str, object], problems: list[str]) -> dict[str, Any]:
    """Every declared key's value: the default when unset, an encrypted secret as given,
    else coerced; an invalid value is reported once, and rules that build on it see None."""
    values: dict[str, Any] = {}
    for spec in SETTINGS:
        value = raw.get(spec.key)
        if value is None:
            value = spec.default
        elif spec.secret and isinstance(value, EncryptedValue):
            values[spec.key] = value
            continue
        values[spec.key] = _coerce(spec, value, problems)
    return values


def _filled(spec: SettingSpec, value: Any) -> Any:
    """A plain setting's field value, by its fill."""
    if spec.fill == Fill.SECRET:
        return value if isinstance(value, str) and value else None
    if spec.fill == Fill.SCHEDULE:
        return " ".join(value.split()) if isinstance(value, str) and value.strip() else None
    return value


def _build(values: Mapping[str, Any], resolved: Mapping[str, object], stack: str,
           warnings: list[str]) -> Settings:
    """Settings from the declarations: each plain field from its key, dotted fields into
    their group's dataclass, resolved fields from their resolver."""
    flat: dict[str, Any] = {"stack": stack, "warnings": tuple(warnings), **resolved}
    groups: dict[str, dict[str, Any]] = {}
    for spec in SETTINGS:
        if spec.fill == Fill.RESOLVED:
            continue
        group, dot, name = spec.field.rpartition(".")
        (groups.setdefault(group, {}) if dot else flat)[name] = _filled(spec, values[spec.key])
    hints = get_type_hints(Settings)
    for group, members in groups.items():
        flat[group] = hints[group](**members)
    return Settings(**flat)


def parse_settings(raw: Mapping[str, object], stack: str) -> Settings:
    """Validate raw config values (keys without the project prefix) into Settings."""
    problems = [f"{key}: unknown setting; allowed keys: {', '.join(s.key for s in SETTINGS)}"
                for key in sorted(set(raw) - set(SPECS_BY_KEY))]
    values = _parsed_values(raw, problems)
    rules.check_collection(values, problems)
    rules.check_database_url(values, problems)
    rules.check_roles(raw, values, problems)
    resolved = {name: resolve(values, stack, problems) for name, resolve in RESOLVERS.items()}
    warnings: list[str] = []
    index, dims = resolved["vector_index"], values["dimensions"]
    if isinstance(index, VectorIndex) and isinstance(dims, int):
        problems += dimension_problems(index, dims, values["target"] == Target.EMBEDDED)
        warnings += index_warnings(index, dims)
    rules.check_pooler_url(values, problems)
    rules.check_ssl_root_cert(values, problems)
    rules.check_bench(values, problems)
    rules.check_schedules(values, problems)
    rules.check_lock_timeout(values, problems)
    rules.check_access_options(values, problems)
    if (agent_warning := rules.agent_spaces_warning(values)) is not None:
        warnings.append(agent_warning)
    if values["target"] == Target.EMBEDDED and values["protect"] is True:
        warnings.append("protect is on for an embedded (local, disposable) database")
    if values["appRoleIdentity"] == AppRoleIdentity.OPTIONAL:
        warnings.append("appRoleIdentity optional: the planner cannot see through its rule, so "
                        "mem0's searches are sequential scans, or (prepared) filtered HNSW "
                        "scans that return short pages for small users; use trusted (the "
                        "default) or required (docs/performance.md)")
    if problems:
        raise SettingsError(problems)
    return _build(values, resolved, stack, warnings)


def settings_from_pulumi_config(getter: Callable[[str], str | None], all_keys: list[str],
                                stack: str, is_secret: Callable[[str], bool]) -> Settings:
    """Parse from Pulumi's config: `getter(key)` returns the raw string or None.

    `all_keys` are every `mem0infra:`-namespaced key the stack sets, so a typo is
    reported instead of ignored. `is_secret(key)` tells whether the engine holds the key
    encrypted: a secret setting given in plain text is refused (Pulumi's typed config
    cannot say so itself, docs/engine.md).
    """
    raw: dict[str, object] = {}
    for key in all_keys:
        value = getter(key)
        if value is not None:
            raw[key] = value
    plaintext = [
        f"{spec.key}: stored in plain text in Pulumi.{stack}.yaml, but it is a secret; "
        f"allowed: an encrypted value (pulumi config set --secret {spec.key} VALUE)"
        for spec in SETTINGS if spec.secret and raw.get(spec.key) and not is_secret(spec.key)]
    try:
        settings = parse_settings(raw, stack)
    except SettingsError as exc:
        raise SettingsError(plaintext + exc.problems) from None
    if plaintext:
        raise SettingsError(plaintext)
    return settings
