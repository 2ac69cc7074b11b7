"""The audit log of director actions: what was asked, on whom, and how it ended."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlmodel import col

from bot.storage.tables import (
    AuditEntryRow,
    Sessions,
    from_db_time,
    rows_affected,
    to_db_time,
    utc_now,
)
from intents.domain import Directory

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


@dataclass(frozen=True)
class Names:
    """What the directory calls the schools and targets of audit entries (ids stay shown)."""

    schools: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, directory: Directory, entries: Iterable[AuditEntry]) -> Names:
        """The names of these entries' schools and targets, read in a few queries a school."""
        entries = list(entries)
        schools = {s.id: s.name for s in directory.structures()}
        targets: dict[str, str] = {}
        for structure_id in {e.structure_id for e in entries} & schools.keys():
            assert structure_id is not None
            for user in directory.users(structure_id, include_removed=True):
                targets[user.id] = user.full_name
            for group in directory.groups(structure_id):
                targets[group.id] = group.name
            for removed in directory.removed_groups(structure_id):
                targets.setdefault(removed.id, removed.name)
        for target in {t for e in entries for t in e.targets} - targets.keys():
            # Someone no longer in the school (a detached teacher) is still in the directory.
            person = directory.user(target)
            if person is not None:
                targets[target] = person.full_name
        return cls(schools, targets)


def to_json_line(entry: AuditEntry, names: Names | None = None) -> dict:
    """The entry as the `audit --json` object (cli-contract.md), with its school."""
    names = names or Names()
    return {
        "at": entry.at.isoformat(timespec="seconds"),
        "who": entry.who,
        "action": entry.action,
        "targets": list(entry.targets),
        "outcome": entry.outcome,
        "detail": entry.detail,
        "structure_id": entry.structure_id,
        "structure": names.schools.get(entry.structure_id or ""),
    }


def to_text_line(entry: AuditEntry, names: Names | None = None) -> str:
    """The entry as one line: « at | school | who | action | outcome | targets — detail »."""
    names = names or Names()
    school = entry.structure_id or "-"
    if entry.structure_id in names.schools:
        school += f" {names.schools[entry.structure_id]}"
    targets = ", ".join(
        f"{names.targets[t]} ({t})" if t in names.targets else t for t in entry.targets
    )
    at = entry.at.isoformat(timespec="seconds")
    line = " | ".join((at, school, entry.who, entry.action, entry.outcome, targets or "-"))
    # A detail may hold several lines (a reply's text): one entry, one line.
    detail = " ".join(entry.detail.split())
    return f"{line} — {detail}" if detail else line


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

    def involving(self, actors: Iterable[str], target: str) -> list[AuditEntry]:
        """Entries written by one of `actors` or naming `target`, oldest first (access
        requests: `accounts export`)."""
        actors = list(actors)
        # The targets are a JSON list: a text match narrows, the parsed list decides.
        query = (
            select(AuditEntryRow)
            .where(
                or_(
                    col(AuditEntryRow.who).in_(actors),
                    col(AuditEntryRow.targets).contains(f'"{target}"', autoescape=True),
                )
            )
            .order_by(col(AuditEntryRow.at), col(AuditEntryRow.id))
        )
        with self._store.session() as session:
            entries = [_entry(row) for row in session.scalars(query)]
        return [e for e in entries if e.who in actors or target in e.targets]

    def pseudonymise(self, who: str, pseudonym: str) -> int:
        """Replace `who` by `pseudonym` in every entry it wrote (/oublier); returns how many.

        The entries stay (traceability of the changes to the directory), the transport id
        that wrote them goes."""
        with self._store.session() as session:
            done = rows_affected(
                session,
                update(AuditEntryRow).where(col(AuditEntryRow.who) == who).values(who=pseudonym),
            )
            return done

    def last_done(self, structure_id: str, action: str) -> dict[str, datetime]:
        """For each target of that action done in that school, when it was last done."""
        query = (
            select(col(AuditEntryRow.at), col(AuditEntryRow.targets))
            .where(col(AuditEntryRow.structure_id) == structure_id)
            .where(col(AuditEntryRow.action) == action)
            .where(col(AuditEntryRow.outcome) == "done")
            .order_by(col(AuditEntryRow.at), col(AuditEntryRow.id))
        )
        when: dict[str, datetime] = {}
        with self._store.session() as session:
            for at, targets in session.execute(query):
                for target in json.loads(targets):
                    when[str(target)] = from_db_time(at)  # oldest first: the last one wins
        return when


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
