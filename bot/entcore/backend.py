"""DIRECTORY_BACKEND=entcore: the store's services with the ENT's directory, acting as the
speaker who writes (their own bearer token), and the OAuth2 sign-in that gives it.

Every read and change goes to the ENT with the token of the person the core acts for
(bot.core.services.ACTING_FOR): the ENT's own ADML check applies on top of the assistant's.
A console or a script gives one token for everything with ENT_ACCESS_TOKEN.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import Any, Literal

from bot.core.services import ACTING_FOR
from bot.entcore.client import EntcoreAuthError, EntcoreClient
from bot.entcore.directory import EntcoreDirectory
from bot.entcore.oauth import EntAuthError, EntLink, OAuthConfig
from bot.settings import Settings
from bot.storage.accounts import AccountLinks
from bot.storage.audit import AuditLog
from bot.storage.conversations import ConversationStore
from bot.storage.ent_tokens import EntTokens
from bot.storage.jobs import JobStore
from bot.storage.retention import Purged
from bot.storage.store import Store
from bot.storage.tickets import TicketStore
from intents.domain import (
    BlockResult,
    Group,
    RemovedGroup,
    SchoolClass,
    ShareFavorite,
    Structure,
    User,
)

# How many speakers' directories (each with its read cache) one process keeps.
KEPT_DIRECTORIES = 256


class NoToken(EntcoreAuthError):
    """Nobody to act as, or a speaker not signed in to the ENT."""


class SpeakerDirectory:
    """The `Directory` protocol, each call made with the token of the speaker acted for."""

    def __init__(
        self, client: EntcoreClient, token_for: Callable[[str], str], cache_seconds: float
    ) -> None:
        self._client = client
        self._token_for = token_for
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._by_speaker: dict[str, EntcoreDirectory] = {}
        # Groups deleted through the assistant, shared by every speaker's directory.
        self._removed: dict[str, list[RemovedGroup]] = {}

    def close(self) -> None:
        """Close the HTTP connections to the ENT."""
        self._client.close()

    def _current(self) -> EntcoreDirectory:
        speaker = ACTING_FOR.get()
        if speaker is None:
            raise NoToken("Aucune personne connectée à l'ENT pour lire l'annuaire.")
        with self._lock:
            found = self._by_speaker.get(speaker)
            if found is None:
                found = EntcoreDirectory(
                    self._client,
                    lambda: self._token(speaker),
                    cache_seconds=self._cache_seconds,
                    removed=self._removed,
                )
                if len(self._by_speaker) >= KEPT_DIRECTORIES:
                    self._by_speaker.pop(next(iter(self._by_speaker)))
                self._by_speaker[speaker] = found
            return found

    def _token(self, speaker: str) -> str:
        try:
            return self._token_for(speaker)
        except EntAuthError as error:  # its text is French, for the user
            raise NoToken(str(error)) from None

    # -- reads -------------------------------------------------------------------------------
    def structure(self, structure_id: str) -> Structure | None:
        return self._current().structure(structure_id)

    def structures(self) -> list[Structure]:
        """The schools the speaker's token shows; none for someone not signed in (a parent
        asking a question: no school is looked up)."""
        try:
            return self._current().structures()
        except NoToken:
            return []

    def classes(self, structure_id: str) -> list[SchoolClass]:
        return self._current().classes(structure_id)

    def users(
        self,
        structure_id: str,
        profiles: Iterable[str] | None = None,
        include_removed: bool = False,
    ) -> list[User]:
        return self._current().users(structure_id, profiles, include_removed)

    def user(self, user_id: str) -> User | None:
        return self._current().user(user_id)

    def user_by_login(self, login: str) -> User | None:
        return self._current().user_by_login(login)

    def groups(self, structure_id: str) -> list[Group]:
        return self._current().groups(structure_id)

    def group(self, group_id: str) -> Group | None:
        return self._current().group(group_id)

    def share_favorites(self, structure_id: str) -> list[ShareFavorite]:
        return self._current().share_favorites(structure_id)

    def removed_groups(self, structure_id: str) -> list[RemovedGroup]:
        return self._current().removed_groups(structure_id)

    # -- changes -----------------------------------------------------------------------------
    def set_blocked(
        self, structure_id: str, profiles: Iterable[str], blocked: bool, keep: Iterable[str] = ()
    ) -> BlockResult:
        return self._current().set_blocked(structure_id, profiles, blocked, keep)

    def attach_teacher_to_class(self, user_id: str, class_id: str) -> None:
        self._current().attach_teacher_to_class(user_id, class_id)

    def detach_teacher_from_structure(self, user_id: str, structure_id: str) -> None:
        self._current().detach_teacher_from_structure(user_id, structure_id)

    def delete_group(self, group_id: str, on: date | None = None) -> None:
        self._current().delete_group(group_id, on)

    def remove_manual_account(self, user_id: str, on: date) -> Literal["deleted", "pre_deleted"]:
        return self._current().remove_manual_account(user_id, on)

    def add_group_members(self, group_id: str, user_ids: Iterable[str]) -> tuple[str, ...]:
        return self._current().add_group_members(group_id, user_ids)

    def create_group(self, structure_id: str, name: str, type: str) -> Group:
        return self._current().create_group(structure_id, name, type)

    def reattach_to_structure(self, user_id: str, structure_id: str) -> None:
        self._current().reattach_to_structure(user_id, structure_id)

    def unlink_from_class(self, user_id: str, class_id: str) -> None:
        self._current().unlink_from_class(user_id, class_id)

    def restore_user(self, user_id: str) -> None:
        self._current().restore_user(user_id)

    def transaction(self) -> AbstractContextManager[None]:
        """entcore has no transactions (each change is checked by a re-read)."""
        return _nothing()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class EntServices:
    """The store's services (accounts, audit, conversations, jobs, tickets) with the ENT's
    directory in place of the local one."""

    def __init__(self, store: Store, directory: SpeakerDirectory) -> None:
        self.store = store
        self._directory = directory

    @property
    def directory(self) -> SpeakerDirectory:
        """The ENT's directory, as the speaker acted for."""
        return self._directory

    @property
    def accounts(self) -> AccountLinks:
        """Speaker → login links (written after the ENT's sign-in)."""
        return self.store.accounts

    @property
    def audit(self) -> AuditLog:
        """The audit log."""
        return self.store.audit

    @property
    def conversations(self) -> ConversationStore:
        """Conversation states."""
        return self.store.conversations

    @property
    def jobs(self) -> JobStore:
        """Scheduled jobs."""
        return self.store.jobs

    @property
    def tickets(self) -> TicketStore:
        """The eRun's side."""
        return self.store.tickets

    def purge(self, retention_days: int, audit_retention_days: int, now: datetime) -> Purged:
        """The store's purge."""
        return self.store.purge(retention_days, audit_retention_days, now)

    def transaction(self) -> AbstractContextManager[None]:
        """The store's transaction (the ENT's changes are not in it: checked by re-reads)."""
        return self.store.transaction()

    def savepoint(self) -> AbstractContextManager[None]:
        """The store's savepoint."""
        return self.store.savepoint()

    def last_write(self) -> AbstractContextManager[bool]:
        """The store's last write."""
        return self.store.last_write()


def ent_backend(
    settings: Settings, store: Store, *, clock: Any = None
) -> tuple[EntServices, EntLink | None]:
    """The services over the ENT, and its sign-in (None when only ENT_ACCESS_TOKEN is
    given: a console or a script acting with one token)."""
    assert settings.ent_url is not None  # the settings refuse entcore without ENT_URL
    link: EntLink | None = None
    if not settings.missing_ent_oauth():
        assert settings.ent_token_key is not None
        extra = {"clock": clock} if clock is not None else {}
        link = EntLink(
            OAuthConfig.from_settings(settings),
            EntTokens(store, settings.ent_token_key.get_secret_value()),
            **extra,
        )
    fixed = settings.ent_access_token.get_secret_value() if settings.ent_access_token else None

    def token_for(speaker_key: str) -> str:
        if fixed is not None:
            return fixed
        if link is None:
            raise NoToken("Connexion à l'ENT non configurée (ENT_ACCESS_TOKEN ou OAuth).")
        return link.bearer_token(speaker_key)

    client = EntcoreClient(settings.ent_url)
    directory = SpeakerDirectory(client, token_for, settings.ent_cache_seconds)
    return EntServices(store, directory), link
