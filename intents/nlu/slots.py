"""What an order names, read against the school: the slots its handler declared."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from intents.nlu.entities import EntityReader, Resolution
from intents.registry import registry
from intents.turn import SlotReading, Slots

if TYPE_CHECKING:
    from intents.domain import Directory, User
    from intents.nlu.roster import Roster

_LIST_SEPARATORS = re.compile(r",|;|\bet\b|\bainsi que\b", re.IGNORECASE)
_CLASS_WORDS = re.compile(r"\b(?:cp|ce1|ce2|cm1|cm2|tps|ps|ms|gs)\b(?:\s+[ab]\b)?", re.I)


class SlotReader:
    """Reads each slot of an intent from a message, against the school's roster."""

    def __init__(self, reader: EntityReader, roster: Roster) -> None:
        self.reader = reader
        self.roster = roster

    def read(
        self, intent: str, text: str, directory: Directory | None, structure_id: str | None
    ) -> Slots:
        """What the message says of each slot the intent's handler declared."""
        slots: Slots = {}
        spec = registry.spec(intent, intent.split(".", 1)[0])
        targets: str | None = None
        for slot in spec.slots if spec else ():
            if slot == "profiles":
                profiles = self.reader.target_profiles(text)
                if profiles:
                    slots["profiles"] = SlotReading(value=profiles)
                continue
            if directory is None or structure_id is None:
                continue
            # « je ne veux pas détacher X ; par contre Y » : X is named, but not as a target.
            targets = self.reader.affirmed(text) if targets is None else targets
            resolution = self.resolve(slot, targets, directory, structure_id)
            slots[slot] = _reading(resolution, targets)
        return slots

    def fill(
        self, slot: str, text: str, directory: Directory | None, structure_id: str | None
    ) -> SlotReading | None:
        """The value of one awaited slot read from a follow-up message, if it names one."""
        if slot == "profiles":
            profiles = self.reader.profiles(text)
            return SlotReading(value=profiles) if profiles else None
        if directory is None or structure_id is None:
            return None
        resolution = self.resolve(slot, text, directory, structure_id)
        if resolution.value is None and not resolution.candidates:
            return None
        return _reading(resolution, text)

    def resolve(self, slot: str, text: str, directory: Directory, structure_id: str) -> Resolution:
        """Whom or what the message names for `slot`, among the school's."""
        if slot == "teacher":
            return self._teacher(text, directory, structure_id)
        if slot == "class":
            return self.reader.school_class(text, self.roster.classes(directory, structure_id))
        if slot == "group":
            return self.reader.group(text, self.roster.groups(directory, structure_id))
        if slot == "account":
            return self._account(text, directory, structure_id)
        return Resolution()

    def _teacher(self, text: str, directory: Directory, structure_id: str) -> Resolution:
        teachers = self.roster.teachers(directory, structure_id)
        found = self.reader.person(_without_class_words(text), teachers)
        if found.partial or (found.value is None and not found.candidates):
            # « hugo lambert » after Hugo left: not Marie-Hélène Vasseur-Lambert; nor anyone
            # else for a teacher whose account is being deleted (« vanacker »).
            elsewhere = self._named_elsewhere(text, directory, structure_id)
            if elsewhere is not None:
                return Resolution(absent=elsewhere.full_name)
            removed = self._named_removed(text, directory, structure_id)
            if removed is not None:
                return Resolution(absent=removed.full_name, removed=removed.id)
        if found.value is None and not found.candidates:
            classes = self.roster.classes(directory, structure_id)
            by_class = self.reader.teacher_of_class(text, teachers, classes)
            if by_class.value or by_class.candidates:
                return by_class
        return found

    def _account(self, text: str, directory: Directory, structure_id: str) -> Resolution:
        everyone = self.roster.everyone(directory, structure_id)
        several = self._several(text, everyone)
        if several:
            return several
        found = self.reader.person(text, [u for u in everyone if u.source == "MANUAL"])
        if found.value is None and not found.candidates:
            # A non-manual account named on purpose gets a clear refusal, not "not found".
            others = self.reader.person(text, everyone)
            if others.value is not None:
                return others
        return found

    def _named_elsewhere(self, text: str, directory: Directory, structure_id: str) -> User | None:
        """A teacher of another school whom the message names in full."""
        here = {u.id for u in self.roster.teachers(directory, structure_id)}
        others = [
            u
            for s in self.roster.structures(directory)
            if s.id != structure_id
            for u in self.roster.teachers(directory, s.id)
            if u.id not in here
        ]
        return self._named_among(text, others)

    def _named_removed(self, text: str, directory: Directory, structure_id: str) -> User | None:
        """A teacher of the school, pre-deleted or deleted, whom the message names by a last
        name."""
        removed = [
            u
            for u in self.roster.everyone(directory, structure_id)
            if u.profile == "Teacher" and (u.pre_deleted or u.deleted)
        ]
        return self._named_among(text, removed)

    def _named_among(self, text: str, people: list[User]) -> User | None:
        """Whom of `people` the message names by a last name."""
        found = self.reader.person(_without_class_words(text), people)
        if found.value is None or found.partial:
            return None
        return next(u for u in people if u.id == found.value)

    def _several(self, text: str, people: list[User]) -> Resolution | None:
        """« supprime les comptes de X et Y »: each part names one person, and they differ."""
        parts = [p for p in _LIST_SEPARATORS.split(text) if p.strip()]
        if len(parts) < 2:
            return None
        ids: list[str] = []
        # Read part after part: the first that names nobody, or someone named before, ends
        # it (« Bonjour, … » in a long message costs one reading, not one per clause).
        for part in parts:
            found = self.reader.person(part, people)
            if found.value is None or found.partial or found.value in ids:
                return None
            ids.append(found.value)
        return Resolution(several=ids)


def _reading(resolution: Resolution, text: str) -> SlotReading:
    if resolution.several:
        return SlotReading(value=list(resolution.several))
    if resolution.absent is not None:
        return SlotReading(absent=resolution.absent, removed=resolution.removed, query=text)
    if resolution.value is not None:
        return SlotReading(value=resolution.value)
    if resolution.candidates:
        return SlotReading(candidates=tuple(resolution.candidates))
    return SlotReading(suggestions=tuple(resolution.suggestions), query=text)


def _without_class_words(text: str) -> str:
    return _CLASS_WORDS.sub(" ", text)
