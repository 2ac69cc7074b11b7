"""The sqlmodel tables, the database time helpers, and what components need of a store."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Column, CursorResult, DateTime, Executable, Index, Integer, Table, Text
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

# --- Directory tables -------------------------------------------------------------------
# `position` columns keep the order of the school file so that export gives it back as is.


class StructureRow(SQLModel, table=True):
    """A school (UAI), as listed in the school file."""

    __tablename__ = "structures"
    id: str = Field(primary_key=True)
    name: str
    city: str
    circonscription: str = Field(index=True)
    position: int = 0


class ClassRow(SQLModel, table=True):
    """A class of a structure."""

    __tablename__ = "classes"
    id: str = Field(primary_key=True)
    structure_id: str = Field(foreign_key="structures.id", index=True)
    name: str
    level: str
    position: int = 0


class UserRow(SQLModel, table=True):
    """An account; list-valued fields live in link tables, except the tiny `functions`."""

    __tablename__ = "users"
    id: str = Field(primary_key=True)
    login: str = Field(unique=True)
    first_name: str
    last_name: str
    profile: str = Field(index=True)
    source: str
    activated: bool
    blocked: bool
    home_structure: str | None = None
    # JSON list of function codes (DIRECTOR, ERUN): at most two entries, never queried.
    functions: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    # No birth date and no parent–child links: no feature uses them, so the import drops them
    # (RGPD data minimisation; revision 0005 removed them).
    deleted: str | None = None
    pre_deleted: str | None = None
    position: int = 0


class IndividualBlockRow(SQLModel, table=True):
    """An account blocked one by one, not with its profile (users.blocked says whether it is
    blocked): a table of its own so that `db upgrade` adds it to an older database."""

    __tablename__ = "individual_blocks"
    user_id: str = Field(foreign_key="users.id", primary_key=True)


class UserStructureRow(SQLModel, table=True):
    """Membership of a user in a structure."""

    __tablename__ = "user_structures"
    __table_args__ = (Index("ix_user_structures_structure", "structure_id"),)
    user_id: str = Field(foreign_key="users.id", primary_key=True)
    structure_id: str = Field(foreign_key="structures.id", primary_key=True)
    position: int = 0


class ClassMemberRow(SQLModel, table=True):
    """Membership of a user (pupil or teacher) in a class."""

    __tablename__ = "class_members"
    __table_args__ = (Index("ix_class_members_class", "class_id"),)
    user_id: str = Field(foreign_key="users.id", primary_key=True)
    class_id: str = Field(foreign_key="classes.id", primary_key=True)
    position: int = 0


class GroupRow(SQLModel, table=True):
    """A group of a structure."""

    __tablename__ = "groups"
    id: str = Field(primary_key=True)
    structure_id: str = Field(foreign_key="structures.id", index=True)
    name: str
    type: str
    position: int = 0


class GroupMemberRow(SQLModel, table=True):
    """Membership of a user in a group."""

    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_user", "user_id"),)
    group_id: str = Field(foreign_key="groups.id", primary_key=True)
    user_id: str = Field(foreign_key="users.id", primary_key=True)
    position: int = 0


class RemovedGroupRow(SQLModel, table=True):
    """A group deleted by the assistant (its row is gone): what it was called, and when."""

    __tablename__ = "removed_groups"
    id: str = Field(primary_key=True)
    structure_id: str = Field(foreign_key="structures.id", index=True)
    name: str
    removed_on: str | None = None


class FavoriteRow(SQLModel, table=True):
    """A share favourite (saved list of people) owned by a user."""

    __tablename__ = "share_favorites"
    id: str = Field(primary_key=True)
    owner_id: str = Field(foreign_key="users.id", index=True)
    name: str
    position: int = 0


class FavoriteMemberRow(SQLModel, table=True):
    """A member of a share favourite."""

    __tablename__ = "share_favorite_members"
    favorite_id: str = Field(foreign_key="share_favorites.id", primary_key=True)
    user_id: str = Field(foreign_key="users.id", primary_key=True)
    position: int = 0


# --- Runtime tables ---------------------------------------------------------------------
# Every timestamp is declared timezone-aware (timestamptz on PostgreSQL): a plain `timestamp`
# column converts an aware value to the session's TimeZone and forgets the offset, so a
# session in Europe/Paris read 08:00 UTC back as 10:00 UTC. The type is explicit rather than
# sqlmodel's default mapping of `datetime`, which is naive. Values are written as aware UTC
# and read back through from_db_time, because SQLite keeps no offset at all.


def _timestamp() -> DateTime:
    """The one column type of every timestamp: aware (timestamptz on PostgreSQL)."""
    return DateTime(timezone=True)


class AuditEntryRow(SQLModel, table=True):
    """One director action (or refusal) in the audit log."""

    __tablename__ = "audit_entries"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True, sa_type=_timestamp())
    who: str
    action: str
    targets: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    outcome: str
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    structure_id: str | None = Field(default=None, index=True)


class LinkCodeRow(SQLModel, table=True):
    """A single-use Telegram linking code, kept only as a salted hash."""

    __tablename__ = "link_codes"
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(index=True)
    code_hash: str
    created_at: datetime = Field(sa_type=_timestamp())
    expires_at: datetime = Field(sa_type=_timestamp())
    used_at: datetime | None = Field(default=None, sa_type=_timestamp())


class AccountLinkRow(SQLModel, table=True):
    """Which directory login a Telegram speaker is."""

    __tablename__ = "account_links"
    id: int | None = Field(default=None, primary_key=True)
    speaker_key: str = Field(unique=True)
    login: str = Field(index=True)
    linked_at: datetime = Field(sa_type=_timestamp())


class FailedLinkAttemptRow(SQLModel, table=True):
    """A wrong code typed by a speaker, for rate limiting."""

    __tablename__ = "failed_link_attempts"
    __table_args__ = (Index("ix_failed_link_attempts_speaker_at", "speaker_key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    speaker_key: str
    at: datetime = Field(sa_type=_timestamp())


class ConversationStateRow(SQLModel, table=True):
    """The pending state of one speaker's conversation (buttons, forms, confirmations)."""

    __tablename__ = "conversation_states"
    speaker_key: str = Field(primary_key=True)
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_type=_timestamp())
    # Bumped by every write: a write conditioned on the version read (optimistic concurrency)
    # fails when another process wrote the state in between, so nothing shown is lost.
    version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class ScheduledJobRow(SQLModel, table=True):
    """A job to run later (bot/storage/jobs.py): claimed under a lease by one instance."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_status_due_at", "status", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str
    # The typed payload of its kind, as JSON: written and read only by bot/core/jobs.py.
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    # Two processes scheduling the same thing insert the same key: the second insert fails.
    dedupe_key: str = Field(unique=True)
    # The speaker or login the job is about, so that erasing a person's data finds it.
    owner: str = Field(index=True)
    due_at: datetime = Field(sa_type=_timestamp())
    status: str
    claimed_by: str | None = None
    claimed_until: datetime | None = Field(default=None, sa_type=_timestamp())
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_type=_timestamp())
    finished_at: datetime | None = Field(default=None, sa_type=_timestamp())


class WeeklyReminderRow(SQLModel, table=True):
    """A director who opted in to the weekly checklist reminder (`/rappels`)."""

    __tablename__ = "weekly_reminders"
    speaker_key: str = Field(primary_key=True)
    login: str = Field(index=True)
    opted_in_at: datetime = Field(sa_type=_timestamp())


# --- The eRun's side (bot/storage/tickets.py) -------------------------------------------
# Texts are stored masked (bot/core/masking.py) and purged after RETENTION_DAYS.


class TicketRow(SQLModel, table=True):
    """A question handed to a person: what was asked, what the assistant thought, who to
    answer, and the queue (circonscription) whose eRun sees it."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_queue_status", "queue", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    opened_at: datetime = Field(index=True, sa_type=_timestamp())
    # out_of_scope, unresolved (a « Vouliez-vous dire… » left unanswered), human, thumbs_down.
    reason: str
    question: str = Field(sa_column=Column(Text, nullable=False))
    # JSON [[intent, score], …]: the assistant's best candidates, best first.
    candidates: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    speaker_key: str = Field(index=True)
    structure_id: str | None = None
    queue: str
    # open, answered, closed; every change is conditioned on the status read (one eRun wins).
    status: str
    notified: bool = False
    handled_at: datetime | None = Field(default=None, sa_type=_timestamp())
    handled_by: str | None = None
    # reply, faq, draft, closed: how it was handled (and the intent of a « C'est la FAQ »).
    resolution: str | None = None
    resolution_intent: str | None = None


class LearnedPhrasingRow(SQLModel, table=True):
    """A phrasing taught in chat (« C'est la FAQ… »): a training example of the intent at
    once, written into knowledge/ by `knowledge export-learned` for review."""

    __tablename__ = "learned_phrasings"
    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    intent: str = Field(index=True)
    taught_by: str
    taught_at: datetime = Field(index=True, sa_type=_timestamp())
    exported: bool = False


class KnowledgeDraftRow(SQLModel, table=True):
    """A new answer written by an eRun from the chat, waiting for review (exported with the
    learned phrasings)."""

    __tablename__ = "knowledge_drafts"
    id: int | None = Field(default=None, primary_key=True)
    question: str = Field(sa_column=Column(Text, nullable=False))
    answer: str = Field(sa_column=Column(Text, nullable=False))
    author: str
    created_at: datetime = Field(sa_type=_timestamp())
    exported: bool = False


class QuestionLogRow(SQLModel, table=True):
    """One question and how it was met, without its text: what /stats counts."""

    __tablename__ = "question_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True, sa_type=_timestamp())
    # The intent answered or suggested; None when out of scope.
    intent: str | None = None
    # answered, suggested, declined (out of scope), handed (to a person).
    outcome: str
    queue: str | None = None


# --- The ENT's sign-in (bot/storage/ent_tokens.py) ---------------------------------------


class EntOAuthStateRow(SQLModel, table=True):
    """A sign-in to the ENT under way: its `state`, kept as a hash, single-use, bound to the
    speaker who asked, valid 10 minutes."""

    __tablename__ = "ent_oauth_states"
    state_hash: str = Field(primary_key=True)
    speaker_key: str = Field(index=True)
    created_at: datetime = Field(sa_type=_timestamp())
    expires_at: datetime = Field(index=True, sa_type=_timestamp())


class EntTokenRow(SQLModel, table=True):
    """A speaker's ENT tokens (both encrypted with Fernet) and who they are in the ENT."""

    __tablename__ = "ent_tokens"
    speaker_key: str = Field(primary_key=True)
    user_id: str
    login: str = Field(index=True)
    refresh_token: str = Field(sa_column=Column(Text, nullable=False))
    access_token: str = Field(sa_column=Column(Text, nullable=False))
    access_expires_at: datetime = Field(sa_type=_timestamp())
    scope: str
    # JSON list: the structures of the ADMIN_LOCAL function's scope when the link was made.
    adml_structures: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    linked_at: datetime = Field(sa_type=_timestamp())
    refreshed_at: datetime | None = Field(default=None, sa_type=_timestamp())


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a sqlmodel table class."""
    # sqlmodel sets __table__ on `table=True` classes at run time; its stubs do not declare it.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


# Creation order respects foreign keys; deletion of directory content goes in reverse.
DIRECTORY_TABLES = [
    table_of(model)
    for model in (
        StructureRow,
        ClassRow,
        UserRow,
        IndividualBlockRow,
        UserStructureRow,
        ClassMemberRow,
        GroupRow,
        GroupMemberRow,
        RemovedGroupRow,
        FavoriteRow,
        FavoriteMemberRow,
    )
]
RUNTIME_TABLES = [
    table_of(model)
    for model in (
        AuditEntryRow,
        LinkCodeRow,
        AccountLinkRow,
        FailedLinkAttemptRow,
        ConversationStateRow,
        ScheduledJobRow,
        WeeklyReminderRow,
        TicketRow,
        LearnedPhrasingRow,
        KnowledgeDraftRow,
        QuestionLogRow,
        EntOAuthStateRow,
        EntTokenRow,
    )
]
ALL_TABLES = DIRECTORY_TABLES + RUNTIME_TABLES


def to_db_time(moment: datetime) -> datetime:
    """Aware UTC for storage; a naive input is taken as local time, like datetime.now()."""
    return moment.astimezone(UTC)


def from_db_time(moment: datetime) -> datetime:
    """Aware UTC from a stored datetime (naive ones are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class Sessions(Protocol):
    """What the storage components need of the store: sessions and transactions."""

    def session(self) -> AbstractContextManager[Session]:
        """A session for one operation, or the open transaction's session inside one."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""
        ...


def rows_affected(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and say how many rows it changed: the verdict of every
    conditional write (Session.execute is typed Result; these statements give a
    CursorResult)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount or 0
