"""The audit log of director actions: what was asked, on whom, and how it ended."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from bot.storage.tables import AuditEntryRow, Sessions, from_db_time, to_db_time, utc_now

OUTCOMES = ("done", "refused", "failed", "cancelled", "expired", "superseded")


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log; `at` is aware UTC."""

    id: int
    at: datetime
    who: str
    action: str
    targets: tuple[str, ...]
    outcome: str
    detail: str
    structure_id: str | None


def to_json_line(entry: AuditEntry) -> dict:
    """The entry as the `audit --json` object (cli-contract.md)."""
    return {
        "at": entry.at.isoformat(timespec="seconds"),
        "who": entry.who,
        "action": entry.action,
        "targets": list(entry.targets),
        "outcome": entry.outcome,
        "detail": entry.detail,
    }


def to_text_line(entry: AuditEntry) -> str:
    """The entry as one human-readable line: « at who action outcome targets — detail »."""
    targets = ",".join(entry.targets) or "-"
    line = f"{entry.at.isoformat(timespec='seconds')} {entry.who} {entry.action} "
    line += f"{entry.outcome} {targets}"
    return f"{line} — {entry.detail}" if entry.detail else line


class AuditLog:
    """Append-only record of actions; written outside the change's transaction on failure."""

    def __init__(self, store: Sessions) -> None:
        self._store = store

    def record(
        self,
        who: str,
        action: str,
        targets: list[str],
        outcome: str,
        detail: str = "",
        structure_id: str | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry and return it."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        row = AuditEntryRow(
            at=to_db_time(at or utc_now()),
            who=who,
            action=action,
            targets=json.dumps(list(targets), ensure_ascii=False),
            outcome=outcome,
            detail=detail,
            structure_id=structure_id,
        )
        with self._store.session() as session:
            session.add(row)
            session.flush()
            return _entry(row)

    def entries(
        self, structure_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Entries oldest first (newest last), optionally of one structure and the last `limit`."""
        newest_first = (col(AuditEntryRow.at).desc(), col(AuditEntryRow.id).desc())
        query = select(AuditEntryRow).order_by(*newest_first)
        if structure_id is not None:
            query = query.where(col(AuditEntryRow.structure_id) == structure_id)
        if limit is not None:
            query = query.limit(limit)
        with self._store.session() as session:
            return [_entry(row) for row in reversed(list(session.scalars(query)))]


def _entry(row: AuditEntryRow) -> AuditEntry:
    assert row.id is not None
    return AuditEntry(
        id=row.id,
        at=from_db_time(row.at),
        who=row.who,
        action=row.action,
        targets=tuple(json.loads(row.targets)),
        outcome=row.outcome,
        detail=row.detail,
        structure_id=row.structure_id,
    )
