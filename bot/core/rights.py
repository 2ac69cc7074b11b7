"""The one rights rule, used before a handler runs and again when a confirmed change executes."""

from __future__ import annotations

from enum import StrEnum

from intents.domain import Role, Speaker
from intents.registry import Permission

# Who may do what a permission covers, on a school of their own (speaker.structures).
_ROLES = {
    Permission.READ_SCHOOL: {Role.DIRECTOR, Role.ERUN},
    Permission.CHANGE_SCHOOL: {Role.DIRECTOR},
    Permission.HANDLE_TICKETS: {Role.ERUN},
}


class Verdict(StrEnum):
    ALLOWED = "allowed"
    # Allowed, but never in a group chat: the school's directory is not shown or changed there.
    PRIVATE_ONLY = "private_only"
    DENIED = "denied"


def may(
    speaker: Speaker, permission: Permission, structure: str | None, private_chat: bool
) -> Verdict:
    """Whether this speaker may do what the permission covers, on that school, in that chat."""
    if permission == Permission.ANYONE:
        return Verdict.ALLOWED
    if speaker.role not in _ROLES[permission] or structure not in speaker.structures:
        return Verdict.DENIED
    return Verdict.ALLOWED if private_chat else Verdict.PRIVATE_ONLY
