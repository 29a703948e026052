"""`rls whoami`: the identity as a connection sees it, inside the rolled-back transaction.

The role (current_user, session_user, whether row-level security binds it), the identity
settings and what each identity function of the stack returns. With --org, whether that
organisation is among mem0_org_ids() (org tenancy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.access import ORG_IDS_FUNCTION
from components.rlsdebug.identity import (
    Identity,
    call_identity_functions,
    identity_functions,
    read_gucs,
)
from components.rlsdebug.session import DebugSession

__all__ = ["WhoAmI", "run_whoami"]


@dataclass(frozen=True)
class WhoAmI:
    current_user: str
    session_user: str
    superuser: bool
    bypass_rls: bool
    settings: dict[str, str | None]
    functions: dict[str, Any]
    org: str | None = None
    org_member: bool | None = None  # None: no --org, or no mem0_org_ids() in the stack
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"current_user": self.current_user, "session_user": self.session_user,
                "superuser": self.superuser, "bypass_rls": self.bypass_rls,
                "row_level_security_applies": not (self.superuser or self.bypass_rls),
                "settings": self.settings, "functions": self.functions,
                "org": self.org, "org_member": self.org_member, "notes": self.notes}

    def text(self) -> str:
        bypass = ("superuser: bypasses row-level security" if self.superuser else
                  "BYPASSRLS: bypasses row-level security" if self.bypass_rls else
                  "row-level security applies")
        lines = [f"current_user  {self.current_user} ({bypass})",
                 f"session_user  {self.session_user}", "settings:"]
        width = max(len(n) for n in [*self.settings, *(f + "()" for f in self.functions)])
        lines += [f"  {name.ljust(width)}  {_shown(value)}"
                  for name, value in self.settings.items()]
        lines.append("identity functions:" if self.functions else
                     "identity functions: none of the stack's exist in this database")
        lines += [f"  {(name + '()').ljust(width)}  {_shown(value)}"
                  for name, value in self.functions.items()]
        if self.org is not None:
            lines.append(f"organisation {self.org}: " + (
                "no mem0_org_ids() here (tenancy is not org)" if self.org_member is None
                else "a member" if self.org_member else "NOT a member"))
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    return "(unset)" if value is None else str(value)


def run_whoami(session: DebugSession, role: str | None, identity: Identity,
               org: str | None = None) -> WhoAmI:
    """`role` None: the connecting role as it is; else SET LOCAL ROLE first."""
    identity.apply(session)
    if role is not None:
        session.act_as(role)
    row = session.rows(
        "SELECT current_user::text, session_user::text, r.rolsuper, r.rolbypassrls"
        " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user")[0]
    functions = call_identity_functions(session, identity_functions(session))
    member: bool | None = None
    notes: list[str] = []
    orgs_key = next((name for name in functions if name.endswith(ORG_IDS_FUNCTION)), None)
    if org is not None and orgs_key is not None:
        orgs = functions[orgs_key]
        if isinstance(orgs, list):
            member = org in orgs
        else:
            notes.append(f"{orgs_key}() failed, so membership of {org} is unknown")
    return WhoAmI(row[0], row[1], bool(row[2]), bool(row[3]), read_gucs(session), functions,
                  org, member, notes)
