"""The kinds of scheduled jobs: each a typed payload, serialised here and nowhere else; what
a run asks the channel to do (typed deliveries); and the helpers that schedule them.

Runs live in bot/core/job_runner.py; storage, claims and the delivery guarantee in
bot/storage/jobs.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.messages import Reply
from bot.core.services import Services

PARIS = ZoneInfo("Europe/Paris")

# One second after a confirmation's lifetime (bot/core/confirmation.PENDING_LIFETIME, which
# this module does not import: confirmation imports the reminders that import it).
EXPIRY_DELAY = timedelta(minutes=10, seconds=1)
# The GAR group is fed overnight (the document: « effectif le lendemain »): checked at 9:00.
GAR_CHECK_AT = time(9, 0)
WEEKLY_AT = time(8, 0)  # Monday, Paris time
# At night, when nobody writes: the purge's one transaction then locks nobody out.
PURGE_AT = time(3, 30)
REMINDER_AT = time(8, 0)


# -- payloads ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpireConfirmation:
    """Expire a confirmation left unanswered, and take its buttons off its message."""

    speaker_key: str
    pending_id: str
    message: str


@dataclass(frozen=True)
class UnblockReminder:
    """Remind a director to unblock accounts, with a button that starts the unblock."""

    speaker_key: str
    login: str | None
    structure: str
    profiles: list[str]


@dataclass(frozen=True)
class GarCheck:
    """The day after « make the teachers GAR managers »: are they all in the group?"""

    speaker_key: str
    login: str | None
    structure: str


@dataclass(frozen=True)
class WeeklyChecklist:
    """Monday's checklist for a director who opted in (/rappels)."""

    speaker_key: str
    login: str | None


@dataclass(frozen=True)
class DailyPurge:
    """The nightly purge of what is older than RETENTION_DAYS (bot/storage/retention.py)."""

    speaker_key: str = "system"


@dataclass(frozen=True)
class NotifyQueue:
    """Tell the eRun of a circonscription about the tickets opened since the last notice."""

    queue: str
    speaker_key: str = "system"


@dataclass(frozen=True)
class AnswerAsker:
    """Send an eRun's answer to the person who asked: their question quoted, then the eRun's
    text (`reply`) or the knowledge's answer of `intent` (« C'est la FAQ… »)."""

    speaker_key: str
    question: str
    reply: str | None
    intent: str | None


@dataclass(frozen=True)
class Welcome:
    """Tell a chat that its ENT sign-in succeeded (the callback came to the web server)."""

    speaker_key: str
    login: str


Payload = (
    ExpireConfirmation
    | UnblockReminder
    | GarCheck
    | WeeklyChecklist
    | DailyPurge
    | NotifyQueue
    | AnswerAsker
    | Welcome
)

KINDS: dict[str, type[Payload]] = {
    "confirmation.expire": ExpireConfirmation,
    "reminder.unblock": UnblockReminder,
    "check.gar": GarCheck,
    "reminder.weekly": WeeklyChecklist,
    "maintenance.purge": DailyPurge,
    "tickets.notify": NotifyQueue,
    "tickets.answer": AnswerAsker,
    "signin.welcome": Welcome,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def kind_of(payload: Payload) -> str:
    """The stored kind of a payload."""
    return _KIND_OF[type(payload)]


def payload_out(payload: Payload) -> dict[str, Any]:
    """The JSON-ready form of a payload (its fields)."""
    return asdict(payload)


def payload_in(kind: str, data: dict[str, Any]) -> Payload:
    """The typed payload of a stored job; ValueError when the kind or a field is unknown."""
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown job kind {kind!r}")
    values: dict[str, Any] = {}
    for item in fields(cls):
        raw = data.get(item.name)
        if item.name == "profiles":
            if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
                raise ValueError("profiles must be a list of strings")
            values[item.name] = list(raw)
        elif raw is None and "None" in str(item.type):
            values[item.name] = None
        elif isinstance(raw, str):
            values[item.name] = raw
        else:
            raise ValueError(f"bad field {item.name!r} in a {kind} job")
    return cls(**values)


# -- deliveries: what a run asks the channel to do -------------------------------------------
@dataclass(frozen=True)
class SendMessage:
    """A new message to the speaker's private chat (with its buttons)."""

    speaker_key: str
    reply: Reply


@dataclass(frozen=True)
class EditMessage:
    """One of our earlier messages (a channel reference): its text replaced by `text` and its
    buttons removed; with `text` None, only the buttons go."""

    ref: str
    text: str | None = None


Delivery = SendMessage | EditMessage


# -- time --------------------------------------------------------------------------------------
def paris_at(day: date, at: time) -> datetime:
    """That wall-clock time in Paris on that day, as an aware datetime."""
    return datetime.combine(day, at, tzinfo=PARIS)


def next_monday(now: datetime) -> datetime:
    """The next Monday 8:00 in Paris strictly after `now`."""
    local = now.astimezone(PARIS)
    day = local.date() + timedelta(days=(7 - local.weekday()) % 7)
    due = paris_at(day, WEEKLY_AT)
    return due if due > now else paris_at(day + timedelta(days=7), WEEKLY_AT)


def tomorrow_at(now: datetime, at: time) -> datetime:
    """Tomorrow (Paris calendar) at that Paris time."""
    return paris_at(now.astimezone(PARIS).date() + timedelta(days=1), at)


# -- scheduling --------------------------------------------------------------------------------
def schedule(
    services: Services,
    payload: Payload,
    key: str,
    due_at: datetime,
    now: datetime,
    *,
    replace: bool = False,
) -> bool:
    """Store the job (in the caller's transaction); False when one with `key` exists."""
    owner = payload.speaker_key
    return services.jobs.schedule(
        kind_of(payload), payload_out(payload), key, owner, due_at, now, replace=replace
    )


def expiry_key(pending_id: str) -> str:
    return f"expire:{pending_id}"


def unblock_key(speaker_key: str, structure: str) -> str:
    """One unblock reminder per director and school: a new date moves it."""
    return f"unblock:{speaker_key}:{structure}"


def gar_key(speaker_key: str, structure: str, day: date) -> str:
    return f"gar:{speaker_key}:{structure}:{day.isoformat()}"


def weekly_key(speaker_key: str, due_at: datetime) -> str:
    return f"weekly:{speaker_key}:{due_at.astimezone(PARIS).date().isoformat()}"


def schedule_weekly(
    services: Services, speaker_key: str, login: str | None, now: datetime
) -> None:
    """The next Monday's checklist for this speaker (idempotent)."""
    due = next_monday(now)
    schedule(services, WeeklyChecklist(speaker_key, login), weekly_key(speaker_key, due), due, now)


def schedule_purge(services: Services, now: datetime) -> None:
    """The next nightly purge (idempotent: one row per night, whichever instance asks)."""
    due = paris_at(now.astimezone(PARIS).date(), PURGE_AT)
    if due <= now:
        due = tomorrow_at(now, PURGE_AT)
    key = f"purge:{due.astimezone(PARIS).date().isoformat()}"
    schedule(services, DailyPurge(), key, due, now)
