"""Scheduled jobs in the database: they survive restarts and run once across instances.

Life of a job: `pending` (due at `due_at`) → claimed → `running` under a lease (`claimed_by`
is a token unique to that claim, `claimed_until` its end) → `done`, or back to `pending`
later (bounded retries with backoff), or `failed` for good; `cancelled` when withdrawn.

Exactly once, by construction:
- Scheduling is idempotent: `dedupe_key` is unique, so two processes scheduling the same
  thing insert one row (the second insert fails and is ignored).
- A claim is a conditional write. PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, then UPDATE
  … RETURNING of the rows locked, in one transaction, so concurrent tickers take disjoint
  jobs without waiting (tests/test_jobs_concurrency.py: 4 processes, 150 due jobs). SQLite:
  one UPDATE … WHERE id = ? AND <still claimable> per candidate, claimed when rowcount is 1.
- The job's effect commits with `complete()`, which is conditioned on the claim's token and
  on the job still running (bot/core/jobs.py runs both in one transaction). A runner whose
  lease ran out and whose job was reclaimed by another instance fails that condition and
  rolls its effect back: only one run's effect ever commits.
- An instance that died holding a claim leaves a `running` job whose lease ends; any ticker
  then reclaims it (the attempt counts).

Delivery guarantee (job done → message sent to Telegram): the messages a job produces are
sent *after* its transaction committed, so delivery is at most once: a crash in the few
milliseconds between the commit and the Bot API call loses that message, never doubles it.
Telegram offers no transaction to join, and a doubled reminder or a doubled « Débloquer »
prompt is worse for a director than the rare lost one; the ticker logs every failed send.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.tables import (
    ScheduledJobRow,
    Sessions,
    WeeklyReminderRow,
    from_db_time,
    rows_affected,
    table_of,
    to_db_time,
)

log = logging.getLogger(__name__)

_TABLE = table_of(ScheduledJobRow)
_OPT_INS = table_of(WeeklyReminderRow)

PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

# A run longer than this is taken for a dead instance's, and its job is reclaimed.
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5
# Retry n (1-based) waits BACKOFF * 2**(n-1), at most BACKOFF_CAP.
BACKOFF = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
ERROR_KEPT = 1000


@dataclass(frozen=True)
class ClaimedJob:
    """A job claimed by this process: run it, then complete() or fail() it with `token`."""

    id: int
    kind: str
    payload: dict[str, Any]
    owner: str
    due_at: datetime
    attempts: int
    token: str


@dataclass(frozen=True)
class JobView:
    """A stored job as the tests and the operator see it."""

    id: int
    kind: str
    dedupe_key: str
    owner: str
    due_at: datetime
    status: str
    attempts: int
    last_error: str | None
    payload: dict[str, Any]


def backoff(attempts: int) -> timedelta:
    """How long to wait before the next attempt, after `attempts` failed ones."""
    return min(BACKOFF * 2 ** max(0, attempts - 1), BACKOFF_CAP)


def _claimable(now: datetime) -> Any:
    """Due and pending, or running under a lease that has ended (a dead instance's)."""
    return or_(
        and_(_TABLE.c.status == PENDING, _TABLE.c.due_at <= now),
        and_(_TABLE.c.status == RUNNING, _TABLE.c.claimed_until < now),
    )


class JobStore:
    """The `scheduled_jobs` table: schedule, cancel, claim, complete, fail."""

    def __init__(self, store: Sessions) -> None:
        self._store = store

    def schedule(
        self,
        kind: str,
        payload: dict[str, Any],
        dedupe_key: str,
        owner: str,
        due_at: datetime,
        now: datetime,
        *,
        replace: bool = False,
    ) -> bool:
        """Add a job unless one with this key exists (then False, nothing changed); with
        `replace`, an existing job not running is set pending again with this payload and
        due time (a reminder moved to another date)."""
        values = {
            "kind": kind,
            "payload": json.dumps(payload, ensure_ascii=False),
            "dedupe_key": dedupe_key,
            "owner": owner,
            "due_at": to_db_time(due_at),
            "status": PENDING,
            "attempts": 0,
            "created_at": to_db_time(now),
        }
        with self._store.session() as session:
            try:
                with session.begin_nested():
                    session.execute(insert(_TABLE).values(**values))
                return True
            except IntegrityError:
                if not replace:
                    return False
            moved = rows_affected(
                session,
                update(_TABLE)
                .where(_TABLE.c.dedupe_key == dedupe_key, _TABLE.c.status != RUNNING)
                .values(
                    kind=kind,
                    payload=values["payload"],
                    due_at=values["due_at"],
                    status=PENDING,
                    attempts=0,
                    last_error=None,
                    claimed_by=None,
                    claimed_until=None,
                    finished_at=None,
                ),
            )
            return moved == 1

    def cancel(self, dedupe_key: str, now: datetime) -> bool:
        """Withdraw a pending job; False when there was none pending under that key."""
        with self._store.session() as session:
            done = rows_affected(
                session,
                update(_TABLE)
                .where(_TABLE.c.dedupe_key == dedupe_key, _TABLE.c.status == PENDING)
                .values(status=CANCELLED, finished_at=to_db_time(now)),
            )
            return done == 1

    def cancel_owned(self, owner: str, now: datetime, kind: str | None = None) -> int:
        """Withdraw the owner's pending jobs (of that kind); how many (/oublier, opt-out)."""
        query = update(_TABLE).where(_TABLE.c.owner == owner, _TABLE.c.status == PENDING)
        if kind is not None:
            query = query.where(_TABLE.c.kind == kind)
        with self._store.session() as session:
            done = rows_affected(
                session, query.values(status=CANCELLED, finished_at=to_db_time(now))
            )
            return done

    def claim_due(
        self, worker: str, now: datetime, *, limit: int = 20, lease: timedelta = LEASE
    ) -> list[ClaimedJob]:
        """Claim up to `limit` due jobs for this process, committed at once so that other
        instances see the lease; each job is claimed by one process only."""
        moment = to_db_time(now)
        token = f"{worker}:{uuid.uuid4().hex[:12]}"
        claimed = {
            "status": RUNNING,
            "claimed_by": token,
            "claimed_until": to_db_time(now + lease),
            "attempts": _TABLE.c.attempts + 1,
        }
        returned = (
            _TABLE.c.id,
            _TABLE.c.kind,
            _TABLE.c.payload,
            _TABLE.c.owner,
            _TABLE.c.due_at,
            _TABLE.c.attempts,
        )
        rows: list[Any] = []
        with self._store.transaction(), self._store.session() as session:
            candidates = (
                select(_TABLE.c.id)
                .where(_claimable(moment))
                .order_by(_TABLE.c.due_at, _TABLE.c.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                # Rows another ticker is claiming are skipped, not waited for. Locked first,
                # then updated, in this transaction: a LIMIT … SKIP LOCKED subquery inside
                # the UPDATE could be run again by the planner and return other rows.
                locked = list(session.scalars(candidates.with_for_update(skip_locked=True)))
                if locked:
                    rows = list(
                        session.execute(
                            update(_TABLE)
                            .where(_TABLE.c.id.in_(locked))
                            .values(**claimed)
                            .returning(*returned)
                        )
                    )
            else:
                for job_id in list(session.scalars(candidates)):
                    # Re-checked in the UPDATE itself: a job claimed meanwhile is not taken.
                    row = session.execute(
                        update(_TABLE)
                        .where(_TABLE.c.id == job_id, _claimable(moment))
                        .values(**claimed)
                        .returning(*returned)
                    ).first()
                    if row is not None:
                        rows.append(row)
        jobs = []
        for row in sorted(rows, key=lambda r: (from_db_time(r.due_at), r.id)):
            try:
                payload = json.loads(row.payload)
            except ValueError:
                payload = {}
            jobs.append(
                ClaimedJob(
                    row.id,
                    row.kind,
                    payload if isinstance(payload, dict) else {},
                    row.owner,
                    from_db_time(row.due_at),
                    row.attempts,
                    token,
                )
            )
        return jobs

    def complete(self, job: ClaimedJob, now: datetime) -> bool:
        """Mark the job done if this claim still holds it; inside the transaction of the
        job's effect, False means « roll the effect back: another run owns this job »."""
        return self._settle(job, status=DONE, finished_at=to_db_time(now), claimed_until=None)

    def _settle(self, job: ClaimedJob, **values: Any) -> bool:
        """Write `values` on the job only while this claim holds it (conditional UPDATE)."""
        with self._store.session() as session:
            done = rows_affected(
                session,
                update(_TABLE)
                .where(
                    _TABLE.c.id == job.id,
                    _TABLE.c.claimed_by == job.token,
                    _TABLE.c.status == RUNNING,
                )
                .values(**values),
            )
            return done == 1

    def fail(
        self, job: ClaimedJob, error: str, now: datetime, *, max_attempts: int = MAX_ATTEMPTS
    ) -> str:
        """Record a failed run: pending again after a backoff, or `failed` for good after
        `max_attempts`; the new status (unchanged, "" , if the claim was lost)."""
        final = job.attempts >= max_attempts
        status = FAILED if final else PENDING
        values: dict[str, Any] = {
            "status": status,
            "last_error": error[:ERROR_KEPT],
            "claimed_by": None,
            "claimed_until": None,
        }
        if final:
            values["finished_at"] = to_db_time(now)
        else:
            values["due_at"] = to_db_time(now + backoff(job.attempts))
        if not self._settle(job, **values):
            return ""
        if final:
            log.error("job %s (%s) failed %d times: given up", job.id, job.kind, job.attempts)
        return status

    def jobs(self, owner: str | None = None, status: str | None = None) -> list[JobView]:
        """Stored jobs, oldest due first (tests, operator)."""
        query = select(_TABLE).order_by(_TABLE.c.due_at, _TABLE.c.id)
        if owner is not None:
            query = query.where(_TABLE.c.owner == owner)
        if status is not None:
            query = query.where(_TABLE.c.status == status)
        with self._store.session() as session:
            return [
                JobView(
                    row.id,
                    row.kind,
                    row.dedupe_key,
                    row.owner,
                    from_db_time(row.due_at),
                    row.status,
                    row.attempts,
                    row.last_error,
                    json.loads(row.payload),
                )
                for row in session.execute(query)
            ]

    def next_due(self) -> datetime | None:
        """When the earliest pending job is due (None: nothing pending)."""
        with self._store.session() as session:
            found = session.scalar(
                select(_TABLE.c.due_at)
                .where(_TABLE.c.status == PENDING)
                .order_by(_TABLE.c.due_at)
                .limit(1)
            )
        return from_db_time(found) if found is not None else None

    # -- the weekly reminder's opt-in (/rappels) ------------------------------------------------
    def opt_in(self, speaker_key: str, login: str, now: datetime) -> bool:
        """Add the speaker to the weekly reminder; False when already there."""
        with self._store.session() as session:
            try:
                with session.begin_nested():
                    session.execute(
                        insert(_OPT_INS).values(
                            speaker_key=speaker_key, login=login, opted_in_at=to_db_time(now)
                        )
                    )
            except IntegrityError:
                return False
            return True

    def opt_out(self, speaker_key: str) -> bool:
        """Remove the speaker from the weekly reminder; False when not there."""
        with self._store.session() as session:
            done = rows_affected(
                session, delete(_OPT_INS).where(_OPT_INS.c.speaker_key == speaker_key)
            )
            return done == 1

    def opted_in(self, speaker_key: str) -> str | None:
        """The login the speaker opted in as, or None when not opted in."""
        with self._store.session() as session:
            return session.scalar(
                select(_OPT_INS.c.login).where(_OPT_INS.c.speaker_key == speaker_key)
            )
