"""Load and fill the SQL templates in `sql/` (installed as the package `components.sql`).

Placeholders are `{{name}}`. Every placeholder must be filled and every value used, so a
template and its caller cannot drift apart silently. Values are identifiers that were
validated and quoted, or numbers; never user text.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@cache
def _load(name: str) -> str:
    return resources.files("components.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def render_template(template: str, /, **values: str) -> str:
    text = _load(template)
    wanted = set(_PLACEHOLDER.findall(text))
    missing = wanted - set(values)
    unused = set(values) - wanted
    if missing or unused:
        raise KeyError(
            f"template {template}.sql: missing {sorted(missing)}, unused {sorted(unused)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text).strip()
