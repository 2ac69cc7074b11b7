"""What the core needs from storage, as Protocols: any store that provides them will do."""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from intents.domain import Directory

if TYPE_CHECKING:  # the core's protocols import no SQL (`classify` starts without it)
    from bot.storage.accounts import LinkRow, SpeakerErased
    from bot.storage.jobs import JobStore
    from bot.storage.retention import Purged
    from bot.storage.tickets import TicketStore


# Who the services act for while a message (or a job about someone) is handled: a directory
# that acts as the speaker (the ENT's, with their own token) reads it. Set by the core around
# each handling, in the worker thread that runs it.
ACTING_FOR: ContextVar[str | None] = ContextVar("acting_for", default=None)


class EntSignIn(Protocol):
    """Signing a speaker in to the ENT (OAuth2), when the directory is the ENT's."""

    def start(self, speaker_key: str) -> str:
        """The ENT's authorisation page for this speaker (single-use, 10 minutes)."""
        ...

    def unlink(self, speaker_key: str) -> bool:
        """Forget the speaker's ENT tokens; False when there were none."""
        ...


class Accounts(Protocol):
    """Links between a transport identity (speaker key) and a directory account."""

    def login_for(self, speaker_key: str) -> str | None:
        """The login this speaker is linked to, if any."""
        ...

    def redeem(self, speaker_key: str, code: str, now: datetime | None = None) -> str:
        """Link the speaker to the code's account and return the login; raises when refused."""
        ...

    def unlink(self, speaker_key: str) -> bool:
        """Forget the speaker's link; False when there was none."""
        ...

    def link(self, speaker_key: str, login: str, now: datetime | None = None) -> None:
        """Tie the speaker to that login, vouched for by the ENT's own sign-in."""
        ...

    def erase_speaker(self, speaker_key: str) -> SpeakerErased:
        """Delete the speaker's link and failed link attempts (/oublier)."""
        ...

    def list_links(self) -> list[LinkRow]:
        """Every link (speaker key, login), oldest first."""
        ...


class AuditTrail(Protocol):
    """Append-only record of what was asked, refused, done."""

    def record(
        self,
        who: str,
        action: str,
        targets: list[str],
        outcome: str,
        detail: str = "",
        structure_id: str | None = None,
        at: datetime | None = None,
    ) -> object:
        """Append one entry (outcome: done, refused, failed, cancelled, expired, superseded)."""
        ...

    def last_done(self, structure_id: str, action: str) -> dict[str, datetime]:
        """For each target of that action done in that school, when it was last done."""
        ...

    def pseudonymise(self, who: str, pseudonym: str) -> int:
        """Replace `who` by `pseudonym` in the entries it wrote; returns how many."""
        ...


class Conversations(Protocol):
    """Each speaker's conversation state, as JSON-ready data (see bot.core.state)."""

    def get(self, speaker_key: str) -> dict[str, Any]:
        """The stored state, or an empty dict."""
        ...

    def put(self, speaker_key: str, data: dict[str, Any], now: datetime | None = None) -> None:
        """Replace the speaker's state."""
        ...

    def clear(self, speaker_key: str) -> None:
        """Forget the speaker's state."""
        ...

    def erase(self, speaker_key: str, version: int) -> bool:
        """Delete the state only if still at `version`, in one conditional write; False when
        another process wrote it since it was loaded."""
        ...

    def load(self, speaker_key: str) -> tuple[dict[str, Any], int]:
        """The stored state and its version (0 when none is stored), for save()."""
        ...

    def load_with_link(self, speaker_key: str) -> tuple[dict[str, Any], int, str | None]:
        """load(), and the login the speaker is linked to (None if none), in one read."""
        ...

    def save(
        self, speaker_key: str, data: dict[str, Any], version: int, now: datetime | None = None
    ) -> bool:
        """Replace the state only if still at `version`, in one conditional write; False when
        another process wrote it since it was loaded."""
        ...


class Services(Protocol):
    """Everything the core uses, and one transaction around a message or a change."""

    @property
    def directory(self) -> Directory:
        """The school directory."""
        ...

    @property
    def accounts(self) -> Accounts:
        """Speaker → account links."""
        ...

    @property
    def audit(self) -> AuditTrail:
        """The audit log of director actions."""
        ...

    @property
    def conversations(self) -> Conversations:
        """Per-speaker conversation state."""
        ...

    @property
    def jobs(self) -> JobStore:
        """Scheduled jobs (bot/core/jobs.py) and the weekly reminder's opt-ins."""
        ...

    @property
    def tickets(self) -> TicketStore:
        """Questions handed to the eRun, taught phrasings, drafts, the question log."""
        ...

    def purge(self, retention_days: int, audit_retention_days: int, now: datetime) -> Purged:
        """Delete what is older than the retention periods (README « Données personnelles »)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together, or nothing if an exception escapes."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a transaction: undone alone if an exception escapes (re-raised)."""
        ...

    def last_write(self) -> AbstractContextManager[bool]:
        """Around a transaction's last write: True when nothing was written before it (it
        then runs alone, atomic by itself, and may as well be skipped if it changes nothing)."""
        ...
