"""The domain: directory records, the `Directory` protocol, roles and the speaker."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, Protocol


class Role(StrEnum):
    PUBLIC = "public"
    PARENT = "parent"
    TEACHER = "teacher"
    DIRECTOR = "director"
    ERUN = "erun"


@dataclass(frozen=True)
class Speaker:
    """Who is talking, as the core sees it once the transport identity is resolved."""

    key: str
    login: str | None = None
    user_id: str | None = None
    display_name: str | None = None
    role: Role = Role.PUBLIC
    # Structures the speaker may act on (director) or read (eRun), home school first.
    structures: tuple[str, ...] = ()


PROFILES = ("Teacher", "Personnel", "Student", "Relative", "Guest")
# The profiles the assistant blocks and unblocks, every account of one at once.
BLOCKABLE_PROFILES = ("Relative", "Student")
SOURCES = ("AAF1D", "MANUAL", "CSV")
FUNCTIONS = ("DIRECTOR", "ERUN")
GROUP_TYPES = ("ManualGroup", "ProfileGroup", "FunctionalGroup")


@dataclass(frozen=True)
class Structure:
    """A school."""

    id: str
    name: str
    city: str
    circonscription: str


@dataclass(frozen=True)
class SchoolClass:
    """A class; pupil_count counts live Student members (a class shows only once it has one)."""

    id: str
    structure_id: str
    name: str
    level: str
    pupil_count: int


@dataclass(frozen=True)
class User:
    """An account of the directory."""

    id: str
    login: str
    first_name: str
    last_name: str
    profile: str
    source: str
    activated: bool
    blocked: bool
    structures: tuple[str, ...]
    home_structure: str | None
    classes: tuple[str, ...]
    functions: tuple[str, ...]
    deleted: str | None
    pre_deleted: str | None
    # Blocked one by one, not with its profile: the ENT lifts it too when the profile is
    # unblocked, so the director is asked first.
    blocked_individually: bool = False

    @property
    def full_name(self) -> str:
        """« Prénom Nom »."""
        return f"{self.first_name} {self.last_name}"

    @property
    def is_live(self) -> bool:
        """Neither deleted nor in pre-deletion."""
        return not self.deleted and not self.pre_deleted

    @property
    def is_manual(self) -> bool:
        """Created by hand in the console (not fed by the académie)."""
        return self.source == "MANUAL"


@dataclass(frozen=True)
class Group:
    """A group of a structure."""

    id: str
    structure_id: str
    name: str
    type: str
    member_ids: tuple[str, ...]


@dataclass(frozen=True)
class RemovedGroup:
    """A group deleted from a structure, remembered so that « supprime le groupe X » again is
    answered « already deleted » rather than « not found »."""

    id: str
    structure_id: str
    name: str
    # ISO date of the deletion, when known.
    removed_on: str | None


@dataclass(frozen=True)
class ShareFavorite:
    """A saved sharing list owned by a user."""

    id: str
    owner_id: str
    name: str
    member_ids: tuple[str, ...]


@dataclass(frozen=True)
class BlockResult:
    """What set_blocked did: accounts whose flag changed, those already in that state, and
    those kept blocked on purpose (`keep`)."""

    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: tuple[str, ...] = ()


class NotFound(LookupError):
    """A change names a record that the directory does not hold; the message is French."""


class DirectoryFailure(Exception):
    """A change the directory did not carry out as asked (refused, not confirmed, a silent
    no-op): `message` is French and says what is known, for the director."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class History(Protocol):
    """What the audit log tells a handler: when a change was last carried out."""

    def last_done(self, structure_id: str, action: str) -> dict[str, datetime]:
        """For each target of that action done in that school, when it was last done."""
        ...


class Directory(Protocol):
    """What the intents need from the directory; an ENT (entcore) client may implement it."""

    def structure(self, structure_id: str) -> Structure | None: ...

    def structures(self) -> list[Structure]: ...

    def classes(self, structure_id: str) -> list[SchoolClass]: ...

    def users(
        self,
        structure_id: str,
        profiles: Iterable[str] | None = None,
        include_removed: bool = False,
    ) -> list[User]: ...

    def user(self, user_id: str) -> User | None: ...

    def user_by_login(self, login: str) -> User | None: ...

    def groups(self, structure_id: str) -> list[Group]: ...

    def group(self, group_id: str) -> Group | None: ...

    def share_favorites(self, structure_id: str) -> list[ShareFavorite]: ...

    def set_blocked(
        self, structure_id: str, profiles: Iterable[str], blocked: bool, keep: Iterable[str] = ()
    ) -> BlockResult:
        """Block or unblock the live accounts of these profiles. Unblocking lifts individual
        blocks too (the ENT's rule), except for the accounts in `keep`."""
        ...

    def attach_teacher_to_class(self, user_id: str, class_id: str) -> None: ...

    def detach_teacher_from_structure(self, user_id: str, structure_id: str) -> None: ...

    def delete_group(self, group_id: str, on: date | None = None) -> None:
        """Delete the group; it is remembered as removed (on that day, if given)."""
        ...

    def removed_groups(self, structure_id: str) -> list[RemovedGroup]:
        """The groups deleted from the structure, most recent first."""
        ...

    def remove_manual_account(
        self, user_id: str, on: date
    ) -> Literal["deleted", "pre_deleted"]: ...

    def add_group_members(self, group_id: str, user_ids: Iterable[str]) -> tuple[str, ...]: ...

    def create_group(self, structure_id: str, name: str, type: str) -> Group: ...

    # -- undo: what the ENT can give back after a change (« Annuler cette action ») --------

    def reattach_to_structure(self, user_id: str, structure_id: str) -> None:
        """Undo of a detach: back in the school only (not its classes or groups, which the
        ENT does not remember)."""
        ...

    def unlink_from_class(self, user_id: str, class_id: str) -> None:
        """Undo of an attach: out of the class (still in the school)."""
        ...

    def restore_user(self, user_id: str) -> None:
        """Undo of a pre-deletion; an account deleted for good cannot be restored
        (DirectoryFailure)."""
        ...

    def transaction(self) -> AbstractContextManager[None]: ...
