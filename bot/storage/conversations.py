"""Each speaker's conversation state (buttons, forms, confirmations), kept across restarts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, insert, select, update

from bot.storage.tables import ConversationStateRow, Sessions, table_of, to_db_time, utc_now

# Read and written on every message: plain SQL statements, not ORM objects, keep it cheap.
_TABLE = table_of(ConversationStateRow)


class ConversationStore:
    """Keeps each speaker's conversation state as JSON so that a restart loses nothing."""

    def __init__(self, store: Sessions) -> None:
        self._store = store

    def get(self, speaker_key: str) -> dict[str, Any]:
        """The stored state, or an empty dict."""
        with self._store.session() as session:
            text = session.execute(
                select(_TABLE.c.data).where(_TABLE.c.speaker_key == speaker_key)
            ).scalar()
            return json.loads(text) if text is not None else {}

    def put(self, speaker_key: str, data: dict[str, Any], now: datetime | None = None) -> None:
        """Replace the speaker's state (must be JSON-serialisable)."""
        text = json.dumps(data, ensure_ascii=False)
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            # An UPDATE statement's result is a CursorResult; Session.execute is typed as Result.
            updated = cast(
                CursorResult[Any],
                session.execute(
                    update(_TABLE)
                    .where(_TABLE.c.speaker_key == speaker_key)
                    .values(data=text, updated_at=moment)
                ),
            )
            if not updated.rowcount:
                session.execute(
                    insert(_TABLE).values(speaker_key=speaker_key, data=text, updated_at=moment)
                )

    def clear(self, speaker_key: str) -> None:
        """Forget the speaker's state."""
        with self._store.session() as session:
            session.execute(delete(_TABLE).where(_TABLE.c.speaker_key == speaker_key))
