"""The database engine, sessions and transactions, and the Store that hands out the storage
components."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, delete, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlmodel import col

from bot.storage import schema
from bot.storage.accounts import AccountLinks
from bot.storage.audit import AuditLog
from bot.storage.conversations import ConversationStore
from bot.storage.directory import SqlDirectory
from bot.storage.schema import Upgrade
from bot.storage.tables import DIRECTORY_TABLES, StructureRow


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
        # pysqlite begins transactions on its own, late, and a RELEASE of a first SAVEPOINT
        # would commit: let SQLAlchemy say BEGIN itself, so savepoints nest in the transaction.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def in_memory_url(url: str) -> bool:
    """True for the URL of a SQLite database in memory."""
    return url in ("sqlite://", "sqlite:///:memory:") or (
        url.startswith("sqlite") and "mode=memory" in url
    )


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
            # One shared connection keeps an in-memory database alive and visible to all threads.
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False},
                poolclass=StaticPool if in_memory_url(url) else None,
            )
            _enable_sqlite_foreign_keys(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        return cls(engine)

    @classmethod
    def in_memory(cls) -> Store:
        """A throw-away SQLite database in memory, migrated to the latest revision."""
        store = cls.from_url("sqlite://")
        store.upgrade()
        return store

    def migrate(self) -> Upgrade:
        """Run the migrations up to the latest revision (idempotent) and say what was done."""
        return schema.upgrade(self.engine)

    def upgrade(self) -> list[str]:
        """Migrate (idempotent); returns the names of the tables created."""
        return self.migrate().created

    def check_schema(self) -> None:
        """Raise SchemaError (one French line naming `db upgrade`) unless the database is at
        the latest revision."""
        schema.check(self.engine)

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

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside transaction(): what runs here is undone alone when an exception escapes
        (re-raised), the rest of the transaction going on; outside, a transaction of its own."""
        active: Session | None = getattr(self._local, "session", None)
        if active is None:
            with self.transaction():
                yield
            return
        with active.begin_nested():
            yield

    def is_empty(self) -> bool:
        """True when the directory holds no structure."""
        with self.session() as session:
            return session.scalars(select(col(StructureRow.id)).limit(1)).first() is None

    def clear_directory(self, session: Session) -> None:
        """Delete the whole directory content (not the runtime tables) in the given session."""
        for table in reversed(DIRECTORY_TABLES):
            session.execute(delete(table))

    @property
    def directory(self) -> SqlDirectory:
        """The directory backed by this database."""
        if self._directory is None:
            self._directory = SqlDirectory(self)
        return self._directory

    @property
    def accounts(self) -> AccountLinks:
        """Telegram account linking."""
        if self._accounts is None:
            self._accounts = AccountLinks(self)
        return self._accounts

    @property
    def audit(self) -> AuditLog:
        """The audit log of director actions."""
        if self._audit is None:
            self._audit = AuditLog(self)
        return self._audit

    @property
    def conversations(self) -> ConversationStore:
        """Per-speaker conversation state."""
        if self._conversations is None:
            self._conversations = ConversationStore(self)
        return self._conversations
