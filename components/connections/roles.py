"""Which of the stack's roles a login is: the app (mem0), readonly, service, owner, or the
role this command connected as (the deployer)."""

from __future__ import annotations

from enum import StrEnum

from components.settings import Settings


class RoleKind(StrEnum):
    """What a connected role is to the stack; a role the stack does not name has none."""

    APP = "app"  # mem0's login (appRole)
    READONLY = "readonly"
    SERVICE = "service"
    OWNER = "owner"
    DEPLOYER = "deployer"  # the --dsn login, when it is none of the above


LABELS = {RoleKind.APP: "app (mem0)", RoleKind.READONLY: "readonly",
          RoleKind.SERVICE: "service", RoleKind.OWNER: "owner",
          RoleKind.DEPLOYER: "deployer (this login)"}


def project_roles(settings: Settings, session_user: str) -> dict[str, RoleKind]:
    """Role name -> what it is. The app role wins where one role plays several parts (on
    supabase the owner is `postgres`, which may also be the deployer)."""
    named: dict[str, RoleKind] = {session_user: RoleKind.DEPLOYER}
    for role, kind in ((settings.owner_role, RoleKind.OWNER),
                       (settings.service_role, RoleKind.SERVICE),
                       (settings.readonly_role, RoleKind.READONLY),
                       (settings.app_role, RoleKind.APP)):
        if role:
            named[role] = kind
    return named
