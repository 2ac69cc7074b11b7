"""Running due jobs: claim them (bot/storage/jobs.py), run each kind in one transaction with
its completion, and return what the channel must send or edit afterwards.

A run writes the speaker's conversation state like a message does (the version read is the
condition of the write): when a message of the same speaker lands meanwhile, StateConflict
starts the run again from the fresh state. The run's effect, its audit entries, the next
occurrence of a weekly job and the job's completion commit together or not at all.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core import jobs
from bot.core.confirmation import expire_stale
from bot.core.job_session import sends, session_for
from bot.core.jobs import Delivery, EditMessage, Payload
from bot.core.rights import Verdict, may
from bot.core.services import ACTING_FOR
from bot.core.session import Engine, StateConflict
from bot.core.signin import welcome
from bot.core.ticket_jobs import answer_asker, notify_queue
from intents.admin.common import GAR_GROUP, gar_state
from intents.french import count
from intents.handlers import registry
from intents.kb import escape
from intents.registry import Permission
from intents.turn import Choice, RunIntent, Say, SlotReading

if TYPE_CHECKING:  # the core imports no SQL at run time
    from bot.storage.jobs import ClaimedJob

log = logging.getLogger(__name__)

ATTEMPTS = 5  # runs started again after a conflicting write of the speaker's state
BATCH = 20


class LostClaim(Exception):
    """The job's lease ended and another instance took it: this run's effect is rolled back."""


class JobRunner:
    """Claims and runs due jobs for one process (the Telegram ticker calls run_due)."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        worker: str | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.worker = worker or f"{socket.gethostname()}:{id(self):x}"
        self._recurring_scheduled = False

    def ensure_recurring(self) -> None:
        """Schedule the jobs that always exist (the nightly purge) if no instance has yet:
        done once per process, idempotent across instances (one row per night)."""
        if self._recurring_scheduled:
            return
        services = self.engine.services
        with services.transaction():
            jobs.schedule_purge(services, self.clock())
        self._recurring_scheduled = True

    def run_due(self, limit: int = BATCH) -> list[Delivery]:
        """Claim the due jobs (exactly once across instances), run them, and return the
        deliveries of those that completed; never raises for a job's failure."""
        services = self.engine.services
        self.ensure_recurring()
        now = self.clock()
        deliveries: list[Delivery] = []
        for job in services.jobs.claim_due(self.worker, now, limit=limit):
            try:
                payload = jobs.payload_in(job.kind, job.payload)
            except ValueError as error:  # unreadable: retrying would not help
                log.error("job %s (%s) is unreadable: %s", job.id, job.kind, error)
                with services.transaction():
                    services.jobs.fail(job, f"illisible : {error}", now, max_attempts=1)
                continue
            deliveries.extend(self._run(job, payload, now))
        return deliveries

    def _run(self, job: ClaimedJob, payload: Payload, now: datetime) -> list[Delivery]:
        acting = ACTING_FOR.set(payload.speaker_key)
        try:
            return self._run_as(job, payload, now)
        finally:
            ACTING_FOR.reset(acting)

    def _run_as(self, job: ClaimedJob, payload: Payload, now: datetime) -> list[Delivery]:
        services = self.engine.services
        try:
            for _ in range(ATTEMPTS):
                try:
                    with services.transaction():
                        deliveries = RUNS[type(payload)](self.engine, payload, now)
                        if not services.jobs.complete(job, now):
                            raise LostClaim(job.id)
                        return deliveries
                except StateConflict:
                    log.info("job %s: conversation state changed meanwhile, retrying", job.id)
            raise StateConflict(f"job {job.id}: {ATTEMPTS} conflicts")
        except LostClaim:
            log.warning("job %s was reclaimed by another instance: this run is undone", job.id)
            return []
        except Exception as error:
            log.exception("job %s (%s) failed", job.id, job.kind)
            with services.transaction():
                status = services.jobs.fail(job, f"{type(error).__name__}: {error}", now)
            log.info("job %s is now %s", job.id, status or "another instance's")
            return []


# -- the kinds -----------------------------------------------------------------------------------
def expire_confirmation(
    engine: Engine, payload: jobs.ExpireConfirmation, now: datetime
) -> list[Delivery]:
    """Expire the confirmation if it is still pending, exactly as a late message would
    (confirmation.expire_stale: audited `expired`), and edit its message: no more buttons."""
    session = session_for(engine, payload.speaker_key, None, now)
    pending = session.state.pending
    if pending is None or pending.id != payload.pending_id:
        return []  # confirmed, cancelled or replaced: its buttons went then
    expire_stale(session)
    if session.state.pending is not None:
        return []  # not stale yet (cannot happen: due after its lifetime)
    notice = session.notices.pop() if session.notices else "Cette demande a expiré."
    session.save_state()
    return [EditMessage(pending.message or payload.message, f"⌛ {notice}")]


def remind_unblock(engine: Engine, payload: jobs.UnblockReminder, now: datetime) -> list[Delivery]:
    """The reminder, with a button that starts the unblock (confirmed and re-checked then)."""
    session = session_for(engine, payload.speaker_key, payload.login, now)
    if may(session.speaker, Permission.CHANGE_SCHOOL, payload.structure, True) != (
        Verdict.ALLOWED
    ):
        log.info("unblock reminder %s dropped: no longer allowed", payload.speaker_key)
        return []
    who = "les parents" if payload.profiles == ["Relative"] else "les comptes"
    slots = {"profiles": SlotReading(value=list(payload.profiles))}
    start = RunIntent("action.unblock", slots, payload.structure)
    return sends(
        session,
        [
            Say(
                f"⏰ Rappel : pensez à débloquer {who} de l'école, maintenant que la bascule "
                "ONDE est faite. Je vous montre ce qui sera débloqué avant de le faire.",
                [Choice("Débloquer les parents", start)],
            )
        ],
    )


def check_gar(engine: Engine, payload: jobs.GarCheck, now: datetime) -> list[Delivery]:
    """The day after the GAR change: every teacher in the group, or who is missing."""
    session = session_for(engine, payload.speaker_key, payload.login, now)
    if may(session.speaker, Permission.READ_SCHOOL, payload.structure, True) != Verdict.ALLOWED:
        log.info("GAR check for %s dropped: no longer allowed", payload.speaker_key)
        return []
    turn = session.school_turn("action.gar_managers", "", {}, payload.structure)
    group, missing = gar_state(turn)
    if group is None:
        text = (
            f"🔎 Vérification GAR : le groupe « {GAR_GROUP} » n'existe plus dans l'annuaire de "
            "l'école. Signalez-le à votre eRun de circonscription."
        )
        return sends(session, [Say(text)])
    if not missing:
        text = (
            f"🔎 Vérification GAR : ✅ tous les enseignants de l'école sont bien dans le groupe "
            f"« {GAR_GROUP} » : ils ont accès au module d'affectation des ressources GAR."
        )
        return sends(session, [Say(text)])
    names = ", ".join(escape(t.full_name) for t in missing)
    text = (
        f"🔎 Vérification GAR : ⚠️ {count(len(missing), 'enseignant')} "
        f"{'manque' if len(missing) == 1 else 'manquent'} dans le groupe « {GAR_GROUP} » : "
        f"{names}."
    )
    fix = Choice("Les ajouter", RunIntent("action.gar_managers", structure=payload.structure))
    return sends(session, [Say(text, [fix])])


def weekly_checklist(
    engine: Engine, payload: jobs.WeeklyChecklist, now: datetime
) -> list[Delivery]:
    """Monday's checklist, and the next Monday's job in the same transaction; a speaker who
    opted out or lost the rights gets nothing more."""
    services = engine.services
    key = payload.speaker_key
    if services.jobs.opted_in(key) is None:
        return []
    session = session_for(engine, key, payload.login, now)
    structure = session.structure_id()
    if may(session.speaker, Permission.READ_SCHOOL, structure, True) != Verdict.ALLOWED:
        services.jobs.opt_out(key)
        log.info("weekly reminder of %s stopped: no longer allowed", key)
        return []
    jobs.schedule_weekly(services, key, payload.login, now)
    spec = registry.spec("query.checklist", "query")
    assert spec is not None and structure is not None
    session.intent = "reminder.weekly"
    response = spec.handler(session.school_turn("query.checklist", "", {}, structure))
    lead = Say(
        "📋 Rappel du lundi : le point sur la liste de rentrée. "
        "(<code>/rappels</code> pour l'arrêter.)"
    )
    return sends(session, [lead, *response.says])


def daily_purge(engine: Engine, payload: jobs.DailyPurge, now: datetime) -> list[Delivery]:
    """Delete what is older than the retention periods, and schedule the next night's purge
    in the same transaction."""
    settings = engine.settings
    done = engine.services.purge(settings.retention_days, settings.audit_retention_days, now)
    log.info("%s", done.line())
    jobs.schedule_purge(engine.services, now)
    return []


RUNS: dict[type, Callable[[Engine, Payload, datetime], list[Delivery]]] = {
    jobs.ExpireConfirmation: expire_confirmation,  # type: ignore[dict-item]
    jobs.UnblockReminder: remind_unblock,  # type: ignore[dict-item]
    jobs.GarCheck: check_gar,  # type: ignore[dict-item]
    jobs.WeeklyChecklist: weekly_checklist,  # type: ignore[dict-item]
    jobs.DailyPurge: daily_purge,  # type: ignore[dict-item]
    jobs.NotifyQueue: notify_queue,  # type: ignore[dict-item]
    jobs.AnswerAsker: answer_asker,  # type: ignore[dict-item]
    jobs.Welcome: welcome,  # type: ignore[dict-item]
}
