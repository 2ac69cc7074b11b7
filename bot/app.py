"""Start-up: open the store from the settings (the schema must be current; the demo school
only where it belongs), build the assistant."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import DBAPIError

from bot.core.assistant import Assistant
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store, in_memory_url

if TYPE_CHECKING:
    from bot.entcore.oauth import EntLink

DEMO_SCHOOL = Path(__file__).with_name("demo_school.json")
# A connection dropped while starting (a database failover, a restart during one) is tried
# again after these pauses before the start is given up.
START_PAUSES = (0.2, 1.0)

log = logging.getLogger(__name__)


class HasDatabaseUrl(Protocol):
    """What opening the store needs from the settings."""

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL (DATABASE_URL, or the embedded default)."""
        ...

    @property
    def database_url_given(self) -> bool:
        """False for the embedded default (no DATABASE_URL in the environment or .env)."""
        ...


def is_embedded(settings: HasDatabaseUrl) -> bool:
    """True for the databases that look after themselves: the embedded SQLite file of the
    README (no DATABASE_URL) and throw-away in-memory ones (tests, bench). Any other database
    is an operator's: migrated by the release step, never filled with fictitious people."""
    return not settings.database_url_given or in_memory_url(settings.database_url)


def open_store(settings: HasDatabaseUrl, *, seed_demo: bool = True, demo: bool = False) -> Store:
    """Open DATABASE_URL for a command or a front end.

    An embedded database (is_embedded) is migrated here, and an empty one gets the demo
    school when `seed_demo` (the commands that talk: chat, run, webhook, accounts invite).
    Any other database must already be at the latest revision — `python -m bot db upgrade`
    is a release step, never run at boot — or SchemaError stops the start with that command
    named; it gets the demo school only with `demo` (the --demo flag), when its directory
    is empty."""
    store = Store.from_url(settings.database_url)
    embedded = is_embedded(settings)
    try:
        for pause in (*START_PAUSES, None):
            try:
                _prepare(store, embedded=embedded, seed=demo or (embedded and seed_demo))
                break
            except DBAPIError as error:
                # Each step is one transaction, whole or not at all: trying again is safe.
                if pause is None or not error.connection_invalidated:
                    raise
                log.warning("database connection lost while starting, trying again")
                time.sleep(pause)
    except BaseException:
        store.dispose()
        raise
    return store


def _prepare(store: Store, *, embedded: bool, seed: bool) -> None:
    """Migrate an embedded database or check another's schema; the demo school if asked."""
    if embedded:
        store.upgrade()
    else:
        store.check_schema()
    if seed and store.is_empty():
        import_school(store, DEMO_SCHOOL)


@dataclass
class App:
    """What a running front end needs: the store and the assistant built on it, and the
    ENT's sign-in when the directory is the ENT's."""

    store: Store
    assistant: Assistant
    sign_in: EntLink | None = None

    def close(self) -> None:
        """Release the database connections (and the ENT's)."""
        directory = self.assistant.services.directory
        if hasattr(directory, "close"):
            directory.close()
        self.store.dispose()


def start(settings: Settings) -> App:
    """Open the store from the settings and build the assistant on it (`run --demo` has
    seeded the demo school before, with open_store)."""
    store = open_store(settings, seed_demo=settings.directory_backend == "local")
    if settings.directory_backend == "entcore":
        # httpx and cryptography only for this backend.
        from bot.entcore.backend import ent_backend

        services, link = ent_backend(settings, store)
        assistant = Assistant.create(settings, services, sign_in=link)
        return App(store, assistant, link)
    return App(store, Assistant.create(settings, store))


def settle_heap() -> None:
    """Keep what start-up built out of the garbage collector's scans: the knowledge and the
    models live as long as the process, and scanning them paused a message now and then (the
    slowest percent of messages took a quarter longer)."""
    gc.collect()
    gc.freeze()


@contextmanager
def settled_heap() -> Iterator[None]:
    """The heap settled for a measurement (eval, bench), the collector given back after: an
    in-process caller keeps it as it was."""
    settle_heap()
    try:
        yield
    finally:
        gc.unfreeze()
