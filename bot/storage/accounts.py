"""Linking a Telegram speaker to a directory account with single-use invitation codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlmodel import col

from bot.storage.tables import (
    AccountLinkRow,
    EntOAuthStateRow,
    EntTokenRow,
    FailedLinkAttemptRow,
    LinkCodeRow,
    Sessions,
    UserRow,
    from_db_time,
    rows_affected,
    to_db_time,
    utc_now,
)

# No 0/O, 1/I/L: codes are read aloud or copied from paper.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_TTL = timedelta(hours=48)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(hours=1)
RECENT_CODES = timedelta(days=90)


class AccountError(Exception):
    """Base of the linking errors; str() is a French sentence for the user."""


class UnknownLogin(AccountError):
    """The login is not a live account of the directory."""


class LinkError(AccountError):
    """A code could not be redeemed (wrong, used, expired, too many attempts)."""


@dataclass(frozen=True)
class LinkRow:
    """One linked Telegram speaker."""

    login: str
    speaker_key: str
    linked_at: datetime


@dataclass(frozen=True)
class SpeakerErased:
    """What /oublier deleted of a speaker's linking data."""

    login: str | None
    failed_attempts: int


def normalize_code(code: str) -> str:
    """Upper-case, without the spaces and dashes people type between groups of letters."""
    return "".join(ch for ch in code.upper() if ch not in " -_\t.")


def _hash(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _stored_hash(code: str) -> str:
    salt = secrets.token_hex(16)
    return f"{salt}${_hash(code, salt)}"


def _matches(code: str, stored: str) -> bool:
    salt, _, digest = stored.partition("$")
    return hmac.compare_digest(_hash(code, salt), digest)


class AccountLinks:
    """Invitation codes, redemption with rate limiting, and the speaker → login links."""

    def __init__(self, store: Sessions) -> None:
        self._store = store

    def invite(self, login: str, now: datetime | None = None) -> str:
        """A new single-use code for a live account, valid 48 h; only its hash is stored."""
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            user = session.scalars(select(UserRow).where(col(UserRow.login) == login)).first()
            if user is None:
                raise UnknownLogin(f"Aucun compte « {login} » dans l'annuaire.")
            if user.deleted or user.pre_deleted:
                raise UnknownLogin(f"Le compte « {login} » est supprimé.")
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            session.add(
                LinkCodeRow(
                    login=login,
                    code_hash=_stored_hash(code),
                    created_at=moment,
                    expires_at=moment + CODE_TTL,
                )
            )
        return code

    def redeem(self, speaker_key: str, code: str, now: datetime | None = None) -> str:
        """Link the speaker to the code's account and return the login, or raise LinkError."""
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            failures = session.scalar(
                select(func.count())
                .select_from(FailedLinkAttemptRow)
                .where(col(FailedLinkAttemptRow.speaker_key) == speaker_key)
                .where(col(FailedLinkAttemptRow.at) > moment - FAILURE_WINDOW)
            )
            if (failures or 0) >= MAX_FAILURES:
                # Refused without looking at the code: guessing gets no feedback at all.
                raise LinkError(
                    "Trop de codes erronés : attendez une heure avant de réessayer, "
                    "ou demandez un nouveau code à votre directeur ou directrice."
                )
            wanted = normalize_code(code)
            # Codes long expired cannot match anything useful: skip hashing them.
            recent = session.scalars(
                select(LinkCodeRow).where(col(LinkCodeRow.expires_at) > moment - RECENT_CODES)
            )
            match = next((row for row in recent if _matches(wanted, row.code_hash)), None)
            problem: str | None = None
            if match is None:
                problem = "Ce code n'est pas valable. Vérifiez-le (8 caractères) et réessayez."
            elif match.used_at is not None:
                problem = "Ce code a déjà été utilisé : demandez-en un nouveau."
            elif from_db_time(match.expires_at) <= moment:
                problem = "Ce code a expiré (48 h) : demandez-en un nouveau."
            if problem is not None:
                # Recorded in this session, committed on leaving it; the error is raised after.
                session.add(FailedLinkAttemptRow(speaker_key=speaker_key, at=moment))
            else:
                assert match is not None
                login = match.login
                user = session.scalars(select(UserRow).where(col(UserRow.login) == login)).first()
                if user is None or user.deleted or user.pre_deleted:
                    raise LinkError(f"Le compte « {login} » n'est plus actif dans l'annuaire.")
                # Used up in one conditional statement, never a read then a write: of several
                # processes redeeming the same code at once, one updates the row; the others
                # wait for it on PostgreSQL, then find used_at set and update nothing.
                claimed = rows_affected(
                    session,
                    update(LinkCodeRow)
                    .where(col(LinkCodeRow.id) == match.id)
                    .where(col(LinkCodeRow.used_at).is_(None))
                    .values(used_at=moment),
                )
                if claimed != 1:
                    raise LinkError("Ce code a déjà été utilisé : demandez-en un nouveau.")
                session.execute(
                    delete(AccountLinkRow).where(col(AccountLinkRow.speaker_key) == speaker_key)
                )
                session.add(AccountLinkRow(speaker_key=speaker_key, login=login, linked_at=moment))
        if problem is not None:
            raise LinkError(problem)
        return login

    def link(self, speaker_key: str, login: str, now: datetime | None = None) -> None:
        """Tie the speaker to that login (the ENT's sign-in vouched for it), replacing any
        earlier link of the speaker."""
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            session.execute(
                delete(AccountLinkRow).where(col(AccountLinkRow.speaker_key) == speaker_key)
            )
            session.add(AccountLinkRow(speaker_key=speaker_key, login=login, linked_at=moment))

    def login_for(self, speaker_key: str) -> str | None:
        """The login this speaker is linked to, if any."""
        with self._store.session() as session:
            return session.scalars(
                select(col(AccountLinkRow.login)).where(
                    col(AccountLinkRow.speaker_key) == speaker_key
                )
            ).first()

    def unlink(self, speaker_key: str) -> bool:
        """Forget the speaker's link; False when there was none."""
        with self._store.session() as session:
            result = rows_affected(
                session,
                delete(AccountLinkRow).where(col(AccountLinkRow.speaker_key) == speaker_key),
            )
            return bool(result)

    def erase_speaker(self, speaker_key: str) -> SpeakerErased:
        """Delete the speaker's link, failed link attempts and ENT sign-in (tokens, sign-ins
        under way) (/oublier), saying what was."""
        with self._store.session() as session:
            for table in (EntTokenRow, EntOAuthStateRow):
                session.execute(delete(table).where(col(table.speaker_key) == speaker_key))
            login = session.scalars(
                select(col(AccountLinkRow.login)).where(
                    col(AccountLinkRow.speaker_key) == speaker_key
                )
            ).first()
            session.execute(
                delete(AccountLinkRow).where(col(AccountLinkRow.speaker_key) == speaker_key)
            )
            attempts = rows_affected(
                session,
                delete(FailedLinkAttemptRow).where(
                    col(FailedLinkAttemptRow.speaker_key) == speaker_key
                ),
            )
            return SpeakerErased(login, attempts)

    def revoke(self, login: str, now: datetime | None = None) -> list[str]:
        """Unlink every speaker of the login and void its unused codes; returns the speakers."""
        moment = to_db_time(now or utc_now())
        with self._store.session() as session:
            speakers = list(
                session.scalars(
                    select(col(AccountLinkRow.speaker_key))
                    .where(col(AccountLinkRow.login) == login)
                    .order_by(col(AccountLinkRow.linked_at))
                )
            )
            session.execute(delete(AccountLinkRow).where(col(AccountLinkRow.login) == login))
            # Voiding (not deleting) keeps the reuse message right if someone tries it later.
            session.execute(
                update(LinkCodeRow)
                .where(col(LinkCodeRow.login) == login)
                .where(col(LinkCodeRow.used_at).is_(None))
                .values(used_at=moment)
            )
            return speakers

    def list_links(self) -> list[LinkRow]:
        """Every link, oldest first."""
        with self._store.session() as session:
            rows = session.scalars(
                select(AccountLinkRow).order_by(
                    col(AccountLinkRow.linked_at), col(AccountLinkRow.id)
                )
            )
            return [
                LinkRow(
                    login=row.login,
                    speaker_key=row.speaker_key,
                    linked_at=from_db_time(row.linked_at),
                )
                for row in rows
            ]
