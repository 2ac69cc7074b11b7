"""What the core needs from storage, as Protocols: any store that provides them will do."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from intents.domain import Directory


class Accounts(Protocol):
    """Links between a transport identity and a directory account."""

    def login_for(self, speaker_key: str) -> str | None: ...

    def redeem(self, speaker_key: str, code: str, now: datetime | None = None) -> str: ...

    def unlink(self, speaker_key: str) -> bool: ...


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
    ) -> object: ...


class Conversations(Protocol):
    """Each speaker's conversation state, as JSON-ready data (see bot.core.state)."""

    def get(self, speaker_key: str) -> dict[str, Any]: ...

    def put(self, speaker_key: str, data: dict[str, Any], now: datetime | None = None) -> None: ...


class Services(Protocol):
    """Everything the core uses, and one transaction around a message or a change."""

    @property
    def directory(self) -> Directory: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def conversations(self) -> Conversations: ...

    def transaction(self) -> AbstractContextManager[None]: ...
