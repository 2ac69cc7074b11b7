"""Start-up: open the store from the settings, seed the demo where the README says, build
the assistant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.core.assistant import Assistant
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store

DEMO_SCHOOL = Path(__file__).with_name("demo_school.json")


class HasDatabaseUrl(Protocol):
    """What opening the store needs from the settings."""

    database_url: str


def open_store(settings: HasDatabaseUrl, *, seed_demo: bool = True) -> Store:
    """Open DATABASE_URL and bring its schema up to date; an empty database gets the demo
    school unless `seed_demo` is False (directory import, export, audit, db commands)."""
    store = Store.from_url(settings.database_url)
    store.upgrade()
    if seed_demo and store.is_empty():
        import_school(store, DEMO_SCHOOL)
    return store


@dataclass
class App:
    """What a running front end needs: the store and the assistant built on it."""

    store: Store
    assistant: Assistant

    def close(self) -> None:
        """Release the database connections."""
        self.store.dispose()


def start(settings: Settings) -> App:
    """Open the store from the settings and build the assistant on it."""
    store = open_store(settings)
    return App(store, Assistant.create(settings, store))
