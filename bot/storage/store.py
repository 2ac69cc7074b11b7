"""Database engine, sqlmodel tables and the Store that hands out the storage components."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Index,
    Text,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, SQLModel

if TYPE_CHECKING:
    from bot.storage.accounts import AccountLinks
    from bot.storage.audit import AuditLog
    from bot.storage.directory import SqlDirectory


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
    birth_date: str | None = None
    deleted: str | None = None
    pre_deleted: str | None = None
    position: int = 0


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


class ChildLinkRow(SQLModel, table=True):
    """A relative's link to one of their children."""

    __tablename__ = "relative_children"
    __table_args__ = (Index("ix_relative_children_child", "child_id"),)
    parent_id: str = Field(foreign_key="users.id", primary_key=True)
    child_id: str = Field(foreign_key="users.id", primary_key=True)
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
# Datetimes are written as aware UTC and read back through from_db_time, because SQLite keeps
# no offset and sqlmodel versions differ in how they map `datetime`.


class AuditEntryRow(SQLModel, table=True):
    """One director action (or refusal) in the audit log."""

    __tablename__ = "audit_entries"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
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
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class AccountLinkRow(SQLModel, table=True):
    """Which directory login a Telegram speaker is."""

    __tablename__ = "account_links"
    id: int | None = Field(default=None, primary_key=True)
    speaker_key: str = Field(unique=True)
    login: str = Field(index=True)
    linked_at: datetime


class FailedLinkAttemptRow(SQLModel, table=True):
    """A wrong code typed by a speaker, for rate limiting."""

    __tablename__ = "failed_link_attempts"
    __table_args__ = (Index("ix_failed_link_attempts_speaker_at", "speaker_key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    speaker_key: str
    at: datetime


class ConversationStateRow(SQLModel, table=True):
    """The pending state of one speaker's conversation (buttons, forms, confirmations)."""

    __tablename__ = "conversation_states"
    speaker_key: str = Field(primary_key=True)
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    updated_at: datetime


# Creation order respects foreign keys; deletion of directory content goes in reverse.
DIRECTORY_TABLES = [
    StructureRow.__table__,
    ClassRow.__table__,
    UserRow.__table__,
    UserStructureRow.__table__,
    ClassMemberRow.__table__,
    ChildLinkRow.__table__,
    GroupRow.__table__,
    GroupMemberRow.__table__,
    FavoriteRow.__table__,
    FavoriteMemberRow.__table__,
]
RUNTIME_TABLES = [
    AuditEntryRow.__table__,
    LinkCodeRow.__table__,
    AccountLinkRow.__table__,
    FailedLinkAttemptRow.__table__,
    ConversationStateRow.__table__,
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


def _enable_sqlite_foreign_keys(engine: Engine) -> None:
    """SQLite ignores foreign keys unless asked, and PostgreSQL enforces them: align both."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL with synchronous=NORMAL: commits no longer wait for a disk flush (one per
        # message otherwise), and a crash of the process still loses nothing committed.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


class Store:
    """Owns the engine and hands out the directory, accounts, audit and conversations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The session of an open transaction() block, per thread, joined by every component.
        self._local = threading.local()
        self._directory: SqlDirectory | None = None
        self._accounts: AccountLinks | None = None
        self._audit: AuditLog | None = None
        self._conversations: ConversationStore | None = None

    @classmethod
    def from_url(cls, url: str) -> Store:
        """Open (lazily) the database at a SQLAlchemy URL: SQLite file or postgresql+psycopg."""
        if url.startswith("sqlite"):
            in_memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
            # One shared connection keeps an in-memory database alive and visible to all threads.
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False},
                poolclass=StaticPool if in_memory else None,
            )
            _enable_sqlite_foreign_keys(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        return cls(engine)

    @classmethod
    def in_memory(cls) -> Store:
        """A throw-away SQLite database in memory, with its tables created."""
        store = cls.from_url("sqlite://")
        store.upgrade()
        return store

    def upgrade(self) -> list[str]:
        """Create the missing tables (idempotent); returns the names of the tables created."""
        existing = set(inspect(self.engine).get_table_names())
        SQLModel.metadata.create_all(self.engine, tables=ALL_TABLES, checkfirst=True)
        return [table.name for table in ALL_TABLES if table.name not in existing]

    def dispose(self) -> None:
        """Close every pooled connection (tests, shutdown)."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for one operation, or the open transaction's session when inside one."""
        active: Session | None = getattr(self._local, "session", None)
        if active is not None:
            yield active
            return
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all; nested blocks join the outer."""
        if getattr(self._local, "session", None) is not None:
            yield
            return
        with Session(self.engine, expire_on_commit=False) as session:
            self._local.session = session
            try:
                yield
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                self._local.session = None

    def in_transaction(self) -> bool:
        """Whether this thread is inside a transaction() block."""
        return getattr(self._local, "session", None) is not None

    def is_empty(self) -> bool:
        """True when the directory holds no structure."""
        with self.session() as session:
            return session.scalars(select(StructureRow.id).limit(1)).first() is None

    def clear_directory(self, session: Session) -> None:
        """Delete the whole directory content (not the runtime tables) in the given session."""
        for table in reversed(DIRECTORY_TABLES):
            session.execute(delete(table))

    @property
    def directory(self) -> SqlDirectory:
        """The directory backed by this database."""
        if self._directory is None:
            # Imported here because bot.directory imports the tables of this module.
            from bot.storage.directory import SqlDirectory

            self._directory = SqlDirectory(self)
        return self._directory

    @property
    def accounts(self) -> AccountLinks:
        """Telegram account linking."""
        if self._accounts is None:
            from bot.storage.accounts import AccountLinks

            self._accounts = AccountLinks(self)
        return self._accounts

    @property
    def audit(self) -> AuditLog:
        """The audit log of director actions."""
        if self._audit is None:
            from bot.storage.audit import AuditLog

            self._audit = AuditLog(self)
        return self._audit

    @property
    def conversations(self) -> ConversationStore:
        """Per-speaker conversation state."""
        if self._conversations is None:
            self._conversations = ConversationStore(self)
        return self._conversations


class ConversationStore:
    """Keeps each speaker's conversation state as JSON so that a restart loses nothing."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # Read and written on every message: plain SQL statements, not ORM objects, keep it cheap.
    _table = ConversationStateRow.__table__  # type: ignore[attr-defined]

    def get(self, speaker_key: str) -> dict:
        """The stored state, or an empty dict."""
        with self._store.session() as session:
            text = session.execute(
                select(self._table.c.data).where(self._table.c.speaker_key == speaker_key)
            ).scalar()
            return json.loads(text) if text is not None else {}

    def put(self, speaker_key: str, data: dict, now: datetime | None = None) -> None:
        """Replace the speaker's state (must be JSON-serialisable)."""
        text = json.dumps(data, ensure_ascii=False)
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            updated = session.execute(
                update(self._table)
                .where(self._table.c.speaker_key == speaker_key)
                .values(data=text, updated_at=moment)
            )
            if not updated.rowcount:
                session.execute(
                    insert(self._table).values(
                        speaker_key=speaker_key, data=text, updated_at=moment
                    )
                )

    def clear(self, speaker_key: str) -> None:
        """Forget the speaker's state."""
        with self._store.session() as session:
            session.execute(
                delete(ConversationStateRow).where(ConversationStateRow.speaker_key == speaker_key)
            )
