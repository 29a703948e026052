"""What a policy sees of a stack: its SqlObjects with their kinds' fields, the settings
payload of its check resources, and the stack's name, from plain resource data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.kinds import Kind, kind_spec

__all__ = ["CHECK_RUN_TYPE", "SQL_OBJECT_TYPE", "Resource", "StackView", "stack_of"]

# The type tokens of the program's dynamic resources (components/resources.py).
SQL_OBJECT_TYPE = "pulumi-python:dynamic/mem0:SqlObject"
CHECK_RUN_TYPE = "pulumi-python:dynamic/mem0:CheckRun"


def stack_of(urn: str) -> str:
    """The stack's name in a URN (`urn:pulumi:STACK::PROJECT::TYPE::NAME`)."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Resource:
    """One resource as a policy gets it: type, URN, properties, and its protect flag."""

    type: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False

    @property
    def kind(self) -> str:
        return str(self.props.get("kind") or "")

    @property
    def label(self) -> str:
        """How messages name it: the kind's own label (`table public.memories`)."""
        try:
            return kind_spec(self.kind).label(self.props)
        except (KeyError, ValueError):
            return self.urn.rsplit("::", 1)[-1]

    def fields(self) -> Any:
        """The kind's fields dataclass, rebuilt from the `fields` input."""
        return kind_spec(self.kind).fields_of(self.props)


@dataclass
class StackView:
    """The stack's SqlObjects by kind and the settings its check resources carry."""

    stack: str
    objects: dict[str, list[Resource]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> StackView:
        view = cls(stack="")
        for resource in resources:
            view.stack = view.stack or stack_of(resource.urn)
            if resource.type == SQL_OBJECT_TYPE:
                view.objects.setdefault(resource.kind, []).append(resource)
            elif resource.type == CHECK_RUN_TYPE and not view.settings:
                view.settings = resource.props.get("settings") or {}
        return view

    def of_kind(self, kind: Kind) -> list[Resource]:
        return self.objects.get(kind.value, [])

    def setting(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)
