"""The ENT's sign-in, stored: OAuth2 states under way and each speaker's ENT tokens.

A state is random, single-use, bound to the speaker who asked and valid STATE_TTL; only its
SHA-256 is kept (the state travels in URLs and the ENT's logs). Consuming one is a
conditional DELETE whose row count decides: of two callbacks carrying the same state, in
two threads or two instances, exactly one deletes the row and goes on.

Tokens are encrypted at rest with Fernet (cryptography), the refresh token and the access
token alike: a copy of the database gives no access to the ENT. Several keys may be given,
comma-separated (key rotation): the first encrypts, any of them decrypts.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, insert, select, update

from bot.storage.tables import (
    EntOAuthStateRow,
    EntTokenRow,
    Sessions,
    from_db_time,
    rows_affected,
    table_of,
    to_db_time,
)

_STATES = table_of(EntOAuthStateRow)
_TOKENS = table_of(EntTokenRow)

STATE_TTL = timedelta(minutes=10)
STATE_BYTES = 32


class EntStorageError(Exception):
    """Base of the errors of this module; str() is a French sentence for the user."""


class StateRejected(EntStorageError):
    """A callback's state is unknown or already used."""


class StateExpired(StateRejected):
    """A callback's state was issued more than STATE_TTL ago."""


class TokenKeyError(EntStorageError):
    """Stored tokens cannot be decrypted with the configured key (it was changed)."""


@dataclass(frozen=True)
class StoredTokens:
    """A speaker's ENT link, decrypted."""

    speaker_key: str
    user_id: str
    login: str
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    scope: str
    adml_structures: tuple[str, ...]
    linked_at: datetime
    refreshed_at: datetime | None
    # The stored ciphertext of the refresh token: a refresh writes its result only if this is
    # still what is stored (nobody refreshed or unlinked in between).
    sealed_refresh: str


def fernet_of(keys: str) -> MultiFernet:
    """The Fernet of ENT_TOKEN_KEY: one key, or several comma-separated (the first encrypts).
    ValueError when one is not a Fernet key."""
    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise ValueError("no key")
    return MultiFernet([Fernet(part.encode()) for part in parts])


def state_hash(state: str) -> str:
    """What is stored of a state."""
    return hashlib.sha256(state.encode()).hexdigest()


class EntTokens:
    """The `ent_oauth_states` and `ent_tokens` tables."""

    def __init__(self, store: Sessions, key: str) -> None:
        self._store = store
        self._fernet = fernet_of(key)

    # --- states -----------------------------------------------------------------------

    def new_state(self, speaker_key: str, now: datetime) -> str:
        """A fresh state for this speaker, valid STATE_TTL; URL-safe as it is (entcore copies
        it into the redirect without encoding it)."""
        state = secrets.token_urlsafe(STATE_BYTES)
        moment = to_db_time(now)
        with self._store.session() as session:
            session.execute(
                insert(_STATES).values(
                    state_hash=state_hash(state),
                    speaker_key=speaker_key,
                    created_at=moment,
                    expires_at=moment + STATE_TTL,
                )
            )
        return state

    def consume_state(self, state: str, now: datetime) -> str:
        """The speaker the state was issued to; the state is spent. StateExpired after
        STATE_TTL, StateRejected when unknown or already used (the loser of a race too)."""
        digest = state_hash(state)
        moment = to_db_time(now)
        with self._store.session() as session:
            row = session.execute(
                select(_STATES.c.speaker_key, _STATES.c.expires_at).where(
                    _STATES.c.state_hash == digest
                )
            ).first()
            if row is None:
                raise StateRejected(_UNKNOWN_STATE)
            # Whoever deletes the row owns the state: a second callback finds no row to delete.
            spent = rows_affected(session, delete(_STATES).where(_STATES.c.state_hash == digest))
        if spent != 1:
            raise StateRejected(_UNKNOWN_STATE)
        if from_db_time(row.expires_at) <= moment:
            raise StateExpired(
                "Ce lien de connexion a expiré (il vaut 10 minutes) : recommencez avec "
                "/connexion dans Telegram."
            )
        return str(row.speaker_key)

    def purge_states(self, now: datetime) -> int:
        """Delete the expired states; how many."""
        with self._store.session() as session:
            return rows_affected(
                session, delete(_STATES).where(_STATES.c.expires_at <= to_db_time(now))
            )

    # --- tokens -----------------------------------------------------------------------

    def save(
        self,
        speaker_key: str,
        *,
        user_id: str,
        login: str,
        access_token: str,
        access_expires_at: datetime,
        refresh_token: str,
        scope: str,
        adml_structures: tuple[str, ...],
        now: datetime,
    ) -> None:
        """Store (or replace) the speaker's link after a sign-in."""
        values = {
            "user_id": user_id,
            "login": login,
            "access_token": self._seal(access_token),
            "access_expires_at": to_db_time(access_expires_at),
            "refresh_token": self._seal(refresh_token),
            "scope": scope,
            "adml_structures": json.dumps(list(adml_structures)),
            "linked_at": to_db_time(now),
            "refreshed_at": None,
        }
        with self._store.session() as session:
            # Signing in again replaces the previous link of this speaker.
            session.execute(delete(_TOKENS).where(_TOKENS.c.speaker_key == speaker_key))
            session.execute(insert(_TOKENS).values(speaker_key=speaker_key, **values))

    def get(self, speaker_key: str) -> StoredTokens | None:
        """The speaker's link, decrypted; None when not linked. TokenKeyError when the key
        cannot decrypt it."""
        with self._store.session() as session:
            row = session.execute(
                select(_TOKENS).where(_TOKENS.c.speaker_key == speaker_key)
            ).first()
        if row is None:
            return None
        refreshed = row.refreshed_at
        return StoredTokens(
            speaker_key=row.speaker_key,
            user_id=row.user_id,
            login=row.login,
            access_token=self._open(row.access_token),
            access_expires_at=from_db_time(row.access_expires_at),
            refresh_token=self._open(row.refresh_token),
            scope=row.scope,
            adml_structures=tuple(json.loads(row.adml_structures)),
            linked_at=from_db_time(row.linked_at),
            refreshed_at=from_db_time(refreshed) if refreshed is not None else None,
            sealed_refresh=row.refresh_token,
        )

    def refreshed(
        self,
        before: StoredTokens,
        *,
        access_token: str,
        access_expires_at: datetime,
        refresh_token: str,
        adml_structures: tuple[str, ...] | None = None,
        now: datetime,
    ) -> bool:
        """Write a refresh's result (and the ADML scope read again, when given), only if the
        link is still the one `before` was read from (no other refresh, unlink or new
        sign-in since); False otherwise, nothing written."""
        # An unchanged refresh token keeps its ciphertext: the condition still identifies
        # this link after a refresh that did not rotate it.
        sealed = (
            before.sealed_refresh
            if refresh_token == before.refresh_token
            else self._seal(refresh_token)
        )
        with self._store.session() as session:
            return (
                rows_affected(
                    session,
                    update(_TOKENS)
                    .where(_TOKENS.c.speaker_key == before.speaker_key)
                    .where(_TOKENS.c.refresh_token == before.sealed_refresh)
                    .values(
                        access_token=self._seal(access_token),
                        access_expires_at=to_db_time(access_expires_at),
                        refresh_token=sealed,
                        refreshed_at=to_db_time(now),
                        adml_structures=json.dumps(
                            list(
                                before.adml_structures
                                if adml_structures is None
                                else adml_structures
                            )
                        ),
                    ),
                )
                == 1
            )

    def forget(self, before: StoredTokens) -> bool:
        """Delete the link `before` was read from, unless it changed since (a new sign-in
        or a refresh by another process): what a refused refresh does."""
        with self._store.session() as session:
            return (
                rows_affected(
                    session,
                    delete(_TOKENS)
                    .where(_TOKENS.c.speaker_key == before.speaker_key)
                    .where(_TOKENS.c.refresh_token == before.sealed_refresh),
                )
                == 1
            )

    def expire_access(self, speaker_key: str, now: datetime) -> None:
        """Mark the access token expired (the ENT refused it): the next use refreshes."""
        with self._store.session() as session:
            session.execute(
                update(_TOKENS)
                .where(_TOKENS.c.speaker_key == speaker_key)
                .values(access_expires_at=to_db_time(now))
            )

    def delete(self, speaker_key: str) -> bool:
        """Forget the speaker's ENT link (/deconnexion, a refused refresh); True if there
        was one. Sign-ins under way for this speaker are withdrawn too."""
        with self._store.session() as session:
            session.execute(delete(_STATES).where(_STATES.c.speaker_key == speaker_key))
            return (
                rows_affected(session, delete(_TOKENS).where(_TOKENS.c.speaker_key == speaker_key))
                == 1
            )

    def _seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def _open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise TokenKeyError(
                "Votre connexion à l'ENT ne peut plus être relue : reconnectez-vous avec "
                "/connexion."
            ) from None


_UNKNOWN_STATE = (
    "Ce lien de connexion n'est pas valable ou a déjà servi : recommencez avec /connexion "
    "dans Telegram."
)
