"""The school's people, classes and groups as understanding last read them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from intents.nlu.normalize import fold

if TYPE_CHECKING:
    from intents.domain import Directory, Group, SchoolClass, Structure, User

# How long names read from the directory are reused for understanding; the core forgets them
# at once after its own changes, so this only bounds staleness after an external import.
ROSTER_SECONDS = 10.0
# A part of a name this short, or this frequent in the knowledge (« Petit »), is a word too.
NAME_PART_MIN = 3
COMMON_WORD_COUNT = 3

T = TypeVar("T")


class Roster:
    """Directory reads kept for ROSTER_SECONDS: a message costs no database round trip."""

    def __init__(self, word_counts: Callable[[], Mapping[str, int]]) -> None:
        # Read when names are first needed: a matcher rebuilt for tuning has no counts.
        self._word_counts = word_counts
        self._cache: dict[tuple[int, str, str], tuple[float, Any]] = {}

    def forget(self) -> None:
        """Drop what was read: the directory has just changed."""
        self._cache.clear()

    def warm(self, directory: Directory, structure_id: str) -> None:
        """Read the school's people, classes and groups now, and the other schools' teachers:
        the next message waits for no database."""
        self.names(directory, structure_id)  # the users too
        self.everyone(directory, structure_id)
        self.classes(directory, structure_id)
        self.groups(directory, structure_id)
        for structure in self.structures(directory):
            self.teachers(directory, structure.id)

    def _cached(
        self, directory: Directory, kind: str, structure_id: str, load: Callable[[], T]
    ) -> T:
        key = (id(directory), kind, structure_id)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ROSTER_SECONDS:
            value: T = cached[1]
            return value
        value = load()
        self._cache[key] = (now, value)
        return value

    def teachers(self, directory: Directory, structure_id: str) -> list[User]:
        return self._cached(
            directory,
            "teachers",
            structure_id,
            lambda: directory.users(structure_id, profiles=["Teacher"]),
        )

    def users(self, directory: Directory, structure_id: str) -> list[User]:
        return self._cached(
            directory, "users", structure_id, lambda: directory.users(structure_id)
        )

    def everyone(self, directory: Directory, structure_id: str) -> list[User]:
        """Removed accounts too: naming one gets « already deleted », not a look-alike."""
        return self._cached(
            directory,
            "everyone",
            structure_id,
            lambda: directory.users(structure_id, include_removed=True),
        )

    def classes(self, directory: Directory, structure_id: str) -> list[SchoolClass]:
        return self._cached(
            directory, "classes", structure_id, lambda: directory.classes(structure_id)
        )

    def groups(self, directory: Directory, structure_id: str) -> list[Group]:
        return self._cached(
            directory, "groups", structure_id, lambda: directory.groups(structure_id)
        )

    def structures(self, directory: Directory) -> list[Structure]:
        return self._cached(directory, "structures", "", directory.structures)

    def names(self, directory: Directory, structure_id: str) -> frozenset[str]:
        """The folded parts of the school's people names that are no common word."""

        def load() -> frozenset[str]:
            return frozenset(
                part
                for user in self.users(directory, structure_id)
                for part in fold(f"{user.first_name} {user.last_name}").split()
                if len(part) >= NAME_PART_MIN
                and self._word_counts().get(part, 0) < COMMON_WORD_COUNT
            )

        return self._cached(directory, "names", structure_id, load)
