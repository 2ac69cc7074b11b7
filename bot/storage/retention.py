"""Retention: what is kept of people is deleted once it is older than the settings allow
(README « Données personnelles »); `python -m bot purge` and the daily job run it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import delete, or_
from sqlmodel import col

from bot.storage.tables import (
    AuditEntryRow,
    ConversationStateRow,
    EntOAuthStateRow,
    FailedLinkAttemptRow,
    LinkCodeRow,
    ScheduledJobRow,
    Sessions,
    rows_affected,
    to_db_time,
    utc_now,
)
from bot.storage.tickets import purge_tickets


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted, by kind."""

    conversation_states: int
    failed_link_attempts: int
    link_codes: int
    audit_entries: int
    finished_jobs: int = 0
    tickets: int = 0
    logged_questions: int = 0
    exported_phrasings: int = 0

    def line(self) -> str:
        """One French sentence for the operator (and the job's log)."""
        return (
            f"Purge : {self.conversation_states} état(s) de conversation, "
            f"{self.failed_link_attempts} code(s) erroné(s), {self.link_codes} code(s) de "
            f"connexion, {self.audit_entries} entrée(s) du journal d'audit, "
            f"{self.finished_jobs} tâche(s) planifiée(s) terminée(s), {self.tickets} "
            f"question(s) transmise(s) à l'eRun, {self.logged_questions} question(s) du "
            f"journal des statistiques, {self.exported_phrasings} formulation(s) apprise(s) "
            "déjà exportée(s) supprimé(s)."
        )


def purge(
    store: Sessions,
    retention_days: int,
    audit_retention_days: int,
    now: datetime | None = None,
) -> Purged:
    """Delete, in one transaction, the conversation states idle for more than
    `retention_days`, the failed link attempts and the used or expired link codes older than
    that, the scheduled jobs over for longer than that, and the audit entries older than
    `audit_retention_days`; returns the counts.

    Each is one DELETE … WHERE on the age, so two instances purging at once delete each row
    once, and a conversation written meanwhile is newer than the cut and stays."""
    moment = to_db_time(now or utc_now())
    cut = moment - timedelta(days=retention_days)
    audit_cut = moment - timedelta(days=audit_retention_days)
    with store.transaction(), store.session() as session:
        deleted = partial(rows_affected, session)
        states = deleted(
            delete(ConversationStateRow).where(col(ConversationStateRow.updated_at) < cut)
        )
        attempts = deleted(delete(FailedLinkAttemptRow).where(col(FailedLinkAttemptRow.at) < cut))
        # A code used, or expired, more than `retention_days` ago: an unused live code stays.
        codes = deleted(
            delete(LinkCodeRow).where(
                or_(col(LinkCodeRow.used_at) < cut, col(LinkCodeRow.expires_at) < cut)
            )
        )
        entries = deleted(delete(AuditEntryRow).where(col(AuditEntryRow.at) < audit_cut))
        # Scheduled jobs (reminders) are about a speaker: once over (done, failed, cancelled
        # by /oublier or an opt-out) for more than `retention_days`, they go too.
        jobs = deleted(
            delete(ScheduledJobRow)
            .where(col(ScheduledJobRow.status).in_(("done", "failed", "cancelled")))
            .where(col(ScheduledJobRow.finished_at) < cut)
        )
        # ENT sign-ins never finished (their state lives 10 minutes).
        deleted(delete(EntOAuthStateRow).where(col(EntOAuthStateRow.expires_at) < moment))
        # Tickets hold what people asked (masked): gone with the rest, in this transaction.
        tickets, logged, learned = purge_tickets(session, cut)
    return Purged(states, attempts, codes, entries, jobs, tickets, logged, learned)
