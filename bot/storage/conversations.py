"""Each speaker's conversation state (buttons, forms, confirmations), kept across restarts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.storage.tables import (
    AccountLinkRow,
    ConversationStateRow,
    Sessions,
    rows_affected,
    table_of,
    to_db_time,
    utc_now,
)

# Read and written on every message: plain SQL statements, not ORM objects, keep it cheap.
_TABLE = table_of(ConversationStateRow)
_LINKS = table_of(AccountLinkRow)


def _insert_unless_present(session: Session) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING on the speaker key, in the session's dialect: the first
    of two processes inserts, the other inserts nothing (rowcount 0), in one statement."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=["speaker_key"])
    return sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=["speaker_key"])


class ConversationStore:
    """Keeps each speaker's conversation state as JSON so that a restart loses nothing."""

    def __init__(self, store: Sessions) -> None:
        self._store = store

    def get(self, speaker_key: str) -> dict[str, Any]:
        """The stored state, or an empty dict."""
        return self.load(speaker_key)[0]

    def load(self, speaker_key: str) -> tuple[dict[str, Any], int]:
        """The stored state and its version (0: no state stored yet), for save()."""
        with self._store.session() as session:
            row = session.execute(
                select(_TABLE.c.data, _TABLE.c.version).where(_TABLE.c.speaker_key == speaker_key)
            ).first()
            if row is None:
                return {}, 0
            return json.loads(row.data), row.version

    def load_with_link(self, speaker_key: str) -> tuple[dict[str, Any], int, str | None]:
        """The stored state, its version and the login the speaker is linked to (None when
        not linked), in one statement: both are needed by every message."""
        key = speaker_key
        login = select(_LINKS.c.login).where(_LINKS.c.speaker_key == key).scalar_subquery()
        data = select(_TABLE.c.data).where(_TABLE.c.speaker_key == key).scalar_subquery()
        version = select(_TABLE.c.version).where(_TABLE.c.speaker_key == key).scalar_subquery()
        with self._store.session() as session:
            row = session.execute(
                select(login.label("login"), data.label("data"), version.label("version"))
            ).one()
        if row.data is None:
            return {}, 0, row.login
        return json.loads(row.data), row.version, row.login

    def save(
        self, speaker_key: str, data: dict[str, Any], version: int, now: datetime | None = None
    ) -> bool:
        """Replace the speaker's state if it is still at `version` (as load() gave it), and
        bump the version; False, writing nothing, when another process wrote it in between.

        One conditional statement, never a read then a write: on PostgreSQL a concurrent
        writer of the same row waits for this transaction and then finds the version moved.
        """
        text = json.dumps(data, ensure_ascii=False)
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            if version == 0:
                # No state yet: the first to insert wins; the other inserts nothing. One
                # statement: no savepoint to survive the duplicate key.
                inserted = session.execute(
                    _insert_unless_present(session)
                    .values(speaker_key=speaker_key, data=text, updated_at=moment, version=1)
                    # Not rowcount: with psycopg it read 0 even when the row was inserted.
                    .returning(_TABLE.c.version)
                )
                return inserted.first() is not None
            updated = rows_affected(
                session,
                update(_TABLE)
                .where(_TABLE.c.speaker_key == speaker_key)
                .where(_TABLE.c.version == version)
                .values(data=text, updated_at=moment, version=_TABLE.c.version + 1),
            )
            return updated == 1

    def put(self, speaker_key: str, data: dict[str, Any], now: datetime | None = None) -> None:
        """Replace the speaker's state whatever its version (must be JSON-serialisable)."""
        text = json.dumps(data, ensure_ascii=False)
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            updated = rows_affected(
                session,
                update(_TABLE)
                .where(_TABLE.c.speaker_key == speaker_key)
                .values(data=text, updated_at=moment, version=_TABLE.c.version + 1),
            )
            if not updated:
                session.execute(
                    insert(_TABLE).values(
                        speaker_key=speaker_key, data=text, updated_at=moment, version=1
                    )
                )

    def erase(self, speaker_key: str, version: int) -> bool:
        """Delete the speaker's state if it is still at `version` (0: none was stored, nothing
        to delete); False, deleting nothing, when another process wrote it in between."""
        if version == 0:
            return True
        with self._store.session() as session:
            deleted = rows_affected(
                session,
                delete(_TABLE)
                .where(_TABLE.c.speaker_key == speaker_key)
                .where(_TABLE.c.version == version),
            )
            return deleted == 1

    def clear(self, speaker_key: str) -> None:
        """Forget the speaker's state."""
        with self._store.session() as session:
            session.execute(delete(_TABLE).where(_TABLE.c.speaker_key == speaker_key))
