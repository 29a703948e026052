"""`python -m components rls`: debug row-level security on a live stack (docs/rls-debugging.md).

The modules, each with one job: `session` (the one transaction, rolled back, with a
statement timeout, and acting as a role), `identity` (the identity settings, the stack's
roles and which identity functions exist), `policies` (the policies PostgreSQL applies to a
role and command, read from the catalog), `whoami`, `asuser` and `explain` (the three
sub-commands' work and reports) and `command` (arguments and exit codes).
"""

from components.rlsdebug.asuser import AsUser, run_as_user
from components.rlsdebug.command import HELP, add_arguments, command
from components.rlsdebug.explain import Explanation, run_explain
from components.rlsdebug.identity import Identity
from components.rlsdebug.session import RlsDebugError, StatementRefused, debug_session
from components.rlsdebug.whoami import WhoAmI, run_whoami

__all__ = ["HELP", "AsUser", "Explanation", "Identity", "RlsDebugError", "StatementRefused",
           "WhoAmI", "add_arguments", "command", "debug_session", "run_as_user", "run_explain",
           "run_whoami"]
