"""The README's table of stack settings, rendered from the declarations.

tests/unit/test_project_files.py checks that README.md holds exactly this table;
`python -m components settings --readme-table` prints it.
"""

from __future__ import annotations

from components.settings.spec import SETTINGS, ConfigType, SettingSpec

__all__ = ["settings_table_markdown"]


def _default(spec: SettingSpec) -> str:
    if spec.type == ConfigType.BOOLEAN:
        return "`true`" if spec.default else "`false`"
    return "(empty)" if spec.default == "" else f"`{spec.default}`"


def _allowed(spec: SettingSpec) -> str:
    if spec.allowed:
        return ", ".join(f"`{c}`" if c else "(empty)" for c in spec.allowed)
    if spec.type == ConfigType.INTEGER:
        return f"{spec.minimum}..{spec.maximum}"
    return "`true`, `false`" if spec.type == ConfigType.BOOLEAN else "string"


def settings_table_markdown() -> str:
    """The README's table of stack settings (tests/unit/test_project_files.py keeps the two
    in step)."""
    rows = ["| key | type | default | allowed | what it does |", "|---|---|---|---|---|"]
    for spec in SETTINGS:
        kind = f"{spec.type}" + (" (secret)" if spec.secret else "")
        rows.append(f"| `{spec.key}` | {kind} | {_default(spec)} | {_allowed(spec)} | "
                    f"{spec.description} |")
    return "\n".join(rows)
