"""The pure parts of `rls`: how policies combine, and the arguments' validation."""

from __future__ import annotations

import pytest

from components.rlsdebug.explain import Layer, Predicate
from components.rlsdebug.identity import Identity, memory_id, stack_roles, validate_role
from components.rlsdebug.policies import Policy
from components.rlsdebug.session import RlsDebugError
from components.settings import parse_settings


def _predicate(name: str, permissive: bool, value: bool | None) -> Predicate:
    policy = Policy(name, permissive, "SELECT", ("app",), "x", None)
    return Predicate(policy, "USING", "x", value)


def test_permissive_policies_are_ored_and_restrictive_ones_anded() -> None:
    layer = Layer("SELECT", [_predicate("a", True, False), _predicate("b", True, True)], True)
    assert layer.passes() and "permissive policy b let it through" in layer.reason()
    layer = Layer("SELECT", [_predicate("a", True, True), _predicate("r", False, False)], True)
    assert not layer.passes() and "restrictive policy r is not true" in layer.reason()
    layer = Layer("SELECT", [_predicate("a", True, None)], True)  # NULL counts as false
    assert not layer.passes() and "no permissive policy is true (a)" in layer.reason()
    layer = Layer("SELECT", [_predicate("r", False, True)], True)  # restrictive alone: denied
    assert not layer.passes() and "no permissive policy applies" in layer.reason()
    assert not Layer("SELECT", [], True).passes()


def test_arguments_are_validated_naming_the_flag() -> None:
    with pytest.raises(RlsDebugError, match="--memory 'x': not a uuid"):
        memory_id("x")
    assert memory_id("0E000000-0000-4000-8000-000000000001") == \
        "0e000000-0000-4000-8000-000000000001"
    with pytest.raises(RlsDebugError, match="--claims: not JSON"):
        Identity.from_arguments("alice", None, claims="{")
    with pytest.raises(RlsDebugError, match="--user: must not be empty"):
        Identity.from_arguments(" ", None)
    identity = Identity.from_arguments("alice", "r1", claims='{"sub": "bob"}')
    assert identity.settings() == {"mem0.user_id": "alice", "mem0.run_id": "r1",
                                   "request.jwt.claims": '{"sub":"bob"}'}


def test_roles_are_the_stacks_own() -> None:
    settings = parse_settings({"target": "postgres", "databaseUrl": "postgresql://u@h/d",
                               "appRolePassword": "p", "readonlyRolePassword": "p",
                               "serviceRolePassword": "p"}, "t")
    roles = stack_roles(settings)
    assert roles[0] == settings.app_role == validate_role(None, settings)
    assert validate_role(settings.readonly_role, settings) == settings.readonly_role
    with pytest.raises(RlsDebugError, match="--role 'postgres': not a role of stack 't'"):
        validate_role("postgres", settings)
