"""The database engine, sessions and transactions, and the Store that hands out the storage
components."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, delete, event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlmodel import col

from bot.storage import retention, schema
from bot.storage.accounts import AccountLinks
from bot.storage.audit import AuditLog
from bot.storage.conversations import ConversationStore
from bot.storage.directory import SqlDirectory
from bot.storage.jobs import JobStore
from bot.storage.retention import Purged
from bot.storage.schema import Upgrade
from bot.storage.tables import DIRECTORY_TABLES, StructureRow
from bot.storage.tickets import TicketStore


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
        # would commit: the Store says BEGIN itself, before the first write (see
        # Store._begin_before_first_write), so savepoints nest in the transaction.
        dbapi_connection.isolation_level = None


# A statement that only reads: a SELECT taking no lock (FOR UPDATE/SHARE, advisory locks),
# SHOW, or a PRAGMA (some of which SQLite ignores inside a transaction). Anything else
# (writes, DDL, SAVEPOINT, locks) needs the transaction to have begun.
_PLAIN_READ = re.compile(
    r"\s*(?:PRAGMA\b|SHOW\b|SELECT\b(?!.*\bFOR\s+(?:UPDATE|SHARE|NO\s+KEY|KEY\s+SHARE)\b)"
    r"(?!.*\bpg_advisory))",
    re.IGNORECASE | re.DOTALL,
)


def _psycopg_autocommit(dbapi_connection: Any, _record: Any) -> None:
    """psycopg would say BEGIN before the first statement, a round trip even for a message
    that only reads: the Store says it itself, before the first write."""
    dbapi_connection.autocommit = True


def driver_in_transaction(dbapi_connection: Any) -> bool:
    """True when the driver connection has begun a transaction (sqlite3 or psycopg)."""
    if hasattr(dbapi_connection, "in_transaction"):
        return bool(dbapi_connection.in_transaction)
    # psycopg: TransactionStatus.IDLE is 0 (INTRANS, INERROR… otherwise).
    return bool(dbapi_connection.info.transaction_status)


class WriteAfterClosing(RuntimeError):
    """A write after the statement run as a transaction's last (Store.last_write)."""


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
        self._jobs: JobStore | None = None
        self._tickets: TicketStore | None = None
        event.listen(engine, "before_cursor_execute", self._begin_before_first_write)

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
            # No pool_pre_ping (a round trip on every checkout): a connection found dead when
            # used is invalidated with the whole pool (SQLAlchemy's disconnect handling), its
            # message handled again (Assistant.handle), and connections are renewed hourly,
            # before any proxy or firewall idle timeout.
            engine = create_engine(url, pool_recycle=3600)
            event.listen(engine, "connect", _psycopg_autocommit)
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
        """Everything inside commits together or not at all; nested blocks join the outer.

        The reads before the first write run outside any transaction, and the first write
        says BEGIN (_begin_before_first_write): a message that only reads costs no BEGIN and
        no COMMIT."""
        if getattr(self._local, "session", None) is not None:
            yield
            return
        with Session(self.engine, expire_on_commit=False) as session:
            self._local.session = session
            self._local.closed = False
            try:
                yield
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                self._local.session = None
                self._local.closed = False

    @contextmanager
    def last_write(self) -> Iterator[bool]:
        """Around the transaction's last write: yields True when nothing was written before
        it. That write then runs alone, atomic by itself (no BEGIN, no COMMIT: one round
        trip), and any later write of the transaction raises WriteAfterClosing."""
        active: Session | None = getattr(self._local, "session", None)
        if active is None:
            yield True
            return
        # Rows added to the session are written now, not by an autoflush inside the block.
        active.flush()
        alone = not driver_in_transaction(active.connection().connection.dbapi_connection)
        self._local.closing = alone
        try:
            yield alone
        finally:
            self._local.closing = False

    def _begin_before_first_write(
        self, conn: Connection, _cursor: Any, statement: str, *_: Any
    ) -> None:
        """Say BEGIN before the first statement that writes or locks, not before the reads.

        Reading outside the transaction changes nothing at READ COMMITTED (PostgreSQL's
        level: each statement sees the data committed when it starts, in a transaction or
        not); and whatever two processes could race on is decided by a conditional write or
        a lock, both of which begin the transaction."""
        if statement == "BEGIN" or _PLAIN_READ.match(statement):
            return
        if driver_in_transaction(conn.connection.dbapi_connection):
            return
        if getattr(self._local, "closed", False):
            raise WriteAfterClosing(statement)
        if getattr(self._local, "closing", False):
            # Nothing was written before the transaction's last write: it runs alone.
            self._local.closed = getattr(self._local, "session", None) is not None
            return
        conn.exec_driver_sql("BEGIN")

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

    def purge(self, retention_days: int, audit_retention_days: int, now: datetime) -> Purged:
        """Delete what is older than the retention periods (bot/storage/retention.py)."""
        return retention.purge(self, retention_days, audit_retention_days, now)

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

    @property
    def tickets(self) -> TicketStore:
        """Tickets, taught phrasings, drafts and the question log (the eRun's side)."""
        if self._tickets is None:
            self._tickets = TicketStore(self)
        return self._tickets

    @property
    def jobs(self) -> JobStore:
        """Scheduled jobs and the weekly reminder's opt-ins."""
        if self._jobs is None:
            self._jobs = JobStore(self)
        return self._jobs
