"""mem0infra's CrossGuard policy pack: the rules of components.crossguard as mandatory
pulumi-policy policies (docs/policy.md).

pulumi-policy hands a validate function every secret already unwrapped (pulumi-policy
issue 241: a policy cannot tell a secret from a plain value). The pack therefore wraps the
one function that turns the engine's wire properties into a policy's `props`, and adds,
for each input that is set, whether it arrived as a secret (under `SECRET_KEYS`). The
version is pinned in requirements.txt, and tests/e2e/test_policy_pack.py fails if the
function moves (its secrets policy would then never fire).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pulumi_policy.policy as policy_module
from pulumi.runtime.rpc import UNKNOWN
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY

# The rules of the checkout the pack sits in (the editable install may point elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from components.crossguard import (
    RESOURCE_RULES,
    SECRET_KEYS,
    STACK_RULES,
    Resource,
    Rule,
    StackView,
)

_deserialize = policy_module.deserialize_properties


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG


def _deserialize_marking_secrets(props: dict[str, Any], proxy_secrets: bool = False
                                 ) -> dict[str, Any]:
    result: dict[str, Any] = _deserialize(props, proxy_secrets)
    if not proxy_secrets:
        # An unknown value (a preview's output of another resource) has lost its secret
        # mark on the way: it cannot be judged, so it is left out.
        result[SECRET_KEYS] = {key: _is_secret(value) for key, value in props.items()
                               if value not in (None, "", UNKNOWN)}
    return result


policy_module.deserialize_properties = _deserialize_marking_secrets


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        resource = Resource(args.resource_type, args.urn, args.props,
                            bool(args.opts.protect))
        for message in rule.check(resource):
            report(message)
    return ResourceValidationPolicy(rule.name, rule.description, validate)


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        view = StackView.of(Resource(r.resource_type, r.urn, r.props, bool(r.opts.protect))
                            for r in args.resources)
        for message in rule.check(view):
            report(message)
    return StackValidationPolicy(rule.name, rule.description, validate)


PolicyPack(
    "mem0infra",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*(_resource_policy(r) for r in RESOURCE_RULES),
              *(_stack_policy(r) for r in STACK_RULES)],
)
