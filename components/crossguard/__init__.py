"""The rules of the CrossGuard policy pack (`policy/`), as plain functions over what the
engine hands a policy: a resource's type, inputs and options.

`view.py` reads the stack's resources (the SqlObjects with their kinds' fields, the
settings payload the check resources carry, the stack's name from the URNs); `rules.py`
holds one function per policy returning its violations as messages. Nothing here imports
pulumi-policy: `policy/__main__.py` wires these functions into its PolicyPack, and the
tests call them directly too.
"""

from components.crossguard.rules import (
    LARGE_EXPECTED_ROWS,
    RESOURCE_RULES,
    SECRET_INPUTS,
    SECRET_KEYS,
    STACK_RULES,
    Rule,
)
from components.crossguard.view import Resource, StackView, stack_of

__all__ = ["LARGE_EXPECTED_ROWS", "RESOURCE_RULES", "SECRET_INPUTS", "SECRET_KEYS",
           "STACK_RULES", "Resource", "Rule", "StackView", "stack_of"]
