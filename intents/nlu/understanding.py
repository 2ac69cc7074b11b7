"""From a message to one intent id, a confidence and the entities it names."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intents.kb import KnowledgeBase
from intents.nlu.clauses import several_topics
from intents.nlu.entities import EntityReader, Resolution
from intents.nlu.matcher import OUT_OF_SCOPE, Analysis, Matcher
from intents.nlu.normalize import fold, without_nothing_to_do
from intents.nlu.relabel import Relabelling, links
from intents.nlu.taught import TaughtPhrasings, Teachable
from intents.registry import registry
from intents.turn import RunIntent, SlotReading, Slots, SlotValue, slot_values

if TYPE_CHECKING:
    from intents.domain import Directory, Group, SchoolClass, Structure, User

# How long names read from the directory are reused for understanding; the core forgets them
# at once after its own changes, so this only bounds staleness after an external import.
ROSTER_SECONDS = 10.0
# Similarity of a message to a knowledge phrasing it repeats once normalised (cosine 1).
SAID_AS_WRITTEN = 0.999
REMOVE_ACCOUNT = "action.remove_manual_account"
DETACH = "action.detach_teacher"


@dataclass
class Understanding:
    intent: str
    confidence: float
    slots: Slots
    alternatives: list[tuple[str, float]]
    analysis: Analysis | None = None
    ambiguous: bool = False
    choices: list[str] = field(default_factory=list)
    # Several questions in one message: their topics in the order asked (the main one too).
    questions: list[str] = field(default_factory=list)
    # A question about an action (« comment débloquer les parents ? ») is answered with the
    # how-to; this is the action it spoke of, polarity and names included, to offer doing it.
    offer: RunIntent | None = None

    @property
    def entities(self) -> dict[str, SlotValue]:
        """The slot values found: what the evaluation and the logs show."""
        return slot_values(self.slots)


class Understander(Teachable, Relabelling):
    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher,
        reader: EntityReader | None,
        floor: float | None,
    ) -> None:
        self.kb = kb
        self.matcher = matcher
        self.reader = reader or EntityReader(kb.lexicon)
        self.floor = floor if floor is not None else matcher.config.floor
        self.counterpart, self.reasons = links(kb)
        self._roster: dict[tuple[int, str, str], tuple[float, Any]] = {}
        self.taught = TaughtPhrasings(kb, matcher)  # phrasings an eRun taught in chat
        # The uncovered services each answer speaks of (none, as a rule).
        self.covered = {
            e.id: kb.lexicon.services_in(kb.lexicon.rewrite(fold(f"{e.title} {e.answer or ''}")))
            for e in kb.entries.values()
        }

    def forget_roster(self) -> None:
        """Drop the cached names: the directory has just changed."""
        self._roster.clear()

    def _read(self, directory: Directory, kind: str, structure_id: str) -> Any:
        key = (id(directory), kind, structure_id)
        cached = self._roster.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ROSTER_SECONDS:
            return cached[1]
        value: list[User] | list[SchoolClass] | list[Group] | list[Structure]
        if kind == "teachers":
            value = directory.users(structure_id, profiles=["Teacher"])
        elif kind == "users":
            value = directory.users(structure_id)
        elif kind == "everyone":
            # Removed accounts too: naming one gets « already deleted », not a look-alike.
            value = directory.users(structure_id, include_removed=True)
        elif kind == "classes":
            value = directory.classes(structure_id)
        elif kind == "structures":
            value = directory.structures()
        else:
            value = directory.groups(structure_id)
        self._roster[key] = (now, value)
        return value

    def rejects(self, analysis: Analysis, floor: float | None = None) -> bool:
        """Out of scope: too unsure, out of scope more likely, or nearest to an off-topic
        phrasing."""
        best = analysis.best
        if (
            analysis.nearest_in >= SAID_AS_WRITTEN
            and analysis.nearest_intent == best.intent
            and analysis.nearest_out < analysis.nearest_in
        ):
            # « mdp perdu », a phrasing of the knowledge word for word, is its intent's, whatever
            # the classifier makes of words it also learnt off topic (« mdp caf perdu »).
            return False
        config = self.matcher.config
        rejection = self.matcher.calibrate(analysis.out_of_scope_score)
        limit = self.floor if floor is None else floor
        info = self.kb.intents.get(best.intent)
        if config.dialogue_floor is not None and info is not None and info.kind == "dialogue":
            # « merci », « salut » : short, with no word of the domain, and harmless.
            limit = config.dialogue_floor
        return (
            best.intent == OUT_OF_SCOPE
            or best.confidence < limit
            or rejection >= best.confidence * config.rival_ratio
            or (
                config.use_nearest
                and best.confidence < config.nearest_unless
                and not analysis.anchored
                and analysis.nearest_out > analysis.nearest_in + config.nearest_margin
            )
        )

    def decide(self, analysis: Analysis) -> tuple[str, float]:
        best = analysis.best
        if self.rejects(analysis):
            rejection = self.matcher.calibrate(analysis.out_of_scope_score)
            return OUT_OF_SCOPE, max(rejection, 1.0 - best.confidence) if best.confidence else 1.0
        intent, confidence = self.relabel(analysis)
        info = self.kb.intents.get(intent)
        acts = info is not None and info.kind in ("action", "query")
        # « crée un groupe avec les parents délégués »: the document never says how to create,
        # and no action nor list of the assistant does it. « débloque mon compte pronote » is
        # about another service, whatever the words around it: never an action, and a question
        # only when it names the domain too (« le compte educonnect que j'utilise pour pronote »).
        uncovered = analysis.services - self.covered.get(intent, frozenset())
        if (analysis.orders and acts) or (uncovered and (acts or not analysis.anchors)):
            return OUT_OF_SCOPE, confidence
        return intent, confidence

    def read_roster(self, directory: Directory, structure_id: str) -> None:
        """Read the school's people, classes and groups now, and the other schools' teachers:
        the next message waits for no database."""
        self._without_names("", directory, structure_id)
        for kind in ("teachers", "everyone", "classes", "groups"):
            self._read(directory, kind, structure_id)
        for structure in self._read(directory, "structures", ""):
            self._read(directory, "teachers", structure.id)

    def _without_names(self, text: str, directory: Directory, structure_id: str) -> str:
        """The message less the school's people names: they say who, never what to do."""
        key = (id(directory), "names", structure_id)
        cached = self._roster.get(key)
        if cached is None or time.monotonic() - cached[0] >= ROSTER_SECONDS:
            names: set[str] = set()
            for user in self._read(directory, "users", structure_id):
                for part in fold(f"{user.first_name} {user.last_name}").split():
                    # A name that is also a common word of the knowledge (« Petit ») stays.
                    if len(part) >= 3 and self.matcher.word_counts.get(part, 0) < 3:
                        names.add(part)
            cached = (time.monotonic(), names)
            self._roster[key] = cached
        names = cached[1]
        words = fold(text).split()
        kept = [w for w in words if w not in names]
        return " ".join(kept) if len(kept) != len(words) else text

    def understand(
        self,
        text: str,
        directory: Directory | None = None,
        structure_id: str | None = None,
        *,
        topic: str | None = None,
    ) -> Understanding:
        """What the message asks; a follow-up (« et pour les débloquer ? ») is read after the
        `topic` of the conversation, whose words never make it an order or a question."""
        readable = without_nothing_to_do(text)
        if directory is not None and structure_id is not None:
            readable = self._without_names(readable, directory, structure_id)
        if topic is None:
            analysis = self.matcher.analyse(readable)
        else:
            analysis = self.matcher.analyse(f"{topic} {readable}")
            analysis.cues = self.matcher.read_cues(readable)
        intent, confidence = self.taught.overrule(analysis, self.decide(analysis))
        slots: Slots = {}
        if intent in self.kb.intents and self.kb.intents[intent].kind == "action":
            slots = self.slots_for(intent, text, directory, structure_id)
            if self._teacher_to_remove(intent, analysis, slots, directory, structure_id):
                intent = DETACH
                slots = self.slots_for(intent, text, directory, structure_id)
        alternatives = [
            (c.intent, c.confidence) for c in analysis.ranking[:4] if c.intent != intent
        ][:3]
        u = Understanding(intent, confidence, slots, alternatives, analysis)
        action = self.kb.action_for_howto.get(intent)
        if action is not None:
            action = self._polarity(action, analysis)
            u.offer = RunIntent(action, self.slots_for(action, text, directory, structure_id))
        if intent != OUT_OF_SCOPE:
            self.check_margin(u, analysis)
            u.questions = self._questions(text, intent)
        return u

    def _teacher_to_remove(
        self,
        intent: str,
        analysis: Analysis,
        slots: Slots,
        directory: Directory | None,
        structure_id: str | None,
    ) -> bool:
        """« Thomas Petit est parti, vire le » names a teacher of the school, whose account
        comes from the académie's feed and is never deleted by hand: taking him out of the
        school is detaching him. « supprime le compte de … » asks for the account itself (and
        gets the refusal that says why), unless detaching is a close reading too."""
        if intent != REMOVE_ACCOUNT or directory is None or structure_id is None:
            return False
        named = slots.get("account")
        if named is None or not isinstance(named.value, str):
            return False
        if named.value not in {u.id for u in self._read(directory, "teachers", structure_id)}:
            return False
        if not any(w.startswith("compte") for w in fold(analysis.text).split()):
            return True
        close = analysis.ranking[:3]
        return any(c.intent == DETACH and c.confidence >= self.floor for c in close)

    def check_margin(self, u: Understanding, analysis: Analysis) -> None:
        """Too close to call between two topics: ask instead of guessing."""
        ranking = [c for c in analysis.ranking if c.confidence >= self.floor]
        if len(ranking) < 2:
            return
        first, second = ranking[0], ranking[1]
        pair = {first.intent, second.intent}
        if any(self.counterpart.get(i) in pair for i in pair):
            return  # an order and its how-to: the cues already decided
        if analysis.cues.order and self.kb.intents[first.intent].kind == "action":
            return  # an order to the assistant is not a question to clarify
        if (
            first.confidence - second.confidence < self.matcher.config.margin
            and first.confidence < 0.9
        ):
            u.ambiguous = True
            u.choices = [
                c.intent
                for c in ranking[:3]
                if first.confidence - c.confidence < 2 * self.matcher.config.margin
            ]

    def _questions(self, text: str, main: str) -> list[str]:
        """The FAQ topics of a message that asks several questions (intents/nlu/clauses.py)."""
        return several_topics(
            text, main, self._topic, self.kb.title, lambda i: self.kb.intents[i].kind == "faq"
        )

    def _topic(self, question: str) -> str | None:
        """The FAQ topic of one question, when it is clear."""
        if len(question.split()) < 2:
            return None
        analysis = self.matcher.analyse(question)
        intent, confidence = self.taught.overrule(analysis, self.decide(analysis))
        entry = self.kb.entries.get(intent)
        if intent == OUT_OF_SCOPE or confidence < self.floor or entry is None:
            return None
        if entry.kind != "faq":
            return None
        return intent

    # -- entities --------------------------------------------------------------------------
    def slots_for(
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

    def fill_slot(
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

    def _named_elsewhere(self, text: str, directory: Directory, structure_id: str) -> str | None:
        """The full name of a teacher of another school whom the message names in full."""
        here = {u.id for u in self._read(directory, "teachers", structure_id)}
        others = [
            u
            for s in self._read(directory, "structures", "")
            if s.id != structure_id
            for u in self._read(directory, "teachers", s.id)
            if u.id not in here
        ]
        return self._named_among(text, others)

    def _named_removed(self, text: str, directory: Directory, structure_id: str) -> str | None:
        """The full name of a teacher of the school, pre-deleted or deleted, whom the message
        names by a last name."""
        removed = [
            u
            for u in self._read(directory, "everyone", structure_id)
            if u.profile == "Teacher" and (u.pre_deleted or u.deleted)
        ]
        return self._named_among(text, removed)

    def _named_among(self, text: str, people: list[User]) -> str | None:
        """The full name of whom of `people` the message names by a last name."""
        found = self.reader.person(_without_class_words(text), people)
        if found.value is None or found.partial:
            return None
        return next(u.full_name for u in people if u.id == found.value)

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

    def resolve(self, slot: str, text: str, directory: Directory, structure_id: str) -> Resolution:
        if slot == "teacher":
            teachers = self._read(directory, "teachers", structure_id)
            found = self.reader.person(_without_class_words(text), teachers)
            if found.partial or (found.value is None and not found.candidates):
                # « hugo lambert » after Hugo left: not Marie-Hélène Vasseur-Lambert; nor
                # anyone else for a teacher whose account is being deleted (« vanacker »).
                away = self._named_elsewhere(text, directory, structure_id) or self._named_removed(
                    text, directory, structure_id
                )
                if away is not None:
                    return Resolution(absent=away)
            if found.value is None and not found.candidates:
                classes = self._read(directory, "classes", structure_id)
                by_class = self.reader.teacher_of_class(text, teachers, classes)
                if by_class.value or by_class.candidates:
                    return by_class
            return found
        if slot == "class":
            return self.reader.school_class(text, self._read(directory, "classes", structure_id))
        if slot == "group":
            return self.reader.group(text, self._read(directory, "groups", structure_id))
        if slot == "account":
            everyone = self._read(directory, "everyone", structure_id)
            people = [u for u in everyone if u.source == "MANUAL"]
            several = self._several(text, everyone)
            if several:
                return several
            found = self.reader.person(text, people)
            if found.value is None and not found.candidates:
                # A non-manual account named on purpose gets a clear refusal, not "not found".
                others = self.reader.person(text, everyone)
                if others.value is not None:
                    return others
            return found
        return Resolution()


_LIST_SEPARATORS = re.compile(r",|;|\bet\b|\bainsi que\b", re.IGNORECASE)


def _reading(resolution: Resolution, text: str) -> SlotReading:
    if resolution.several:
        return SlotReading(value=list(resolution.several))
    if resolution.absent is not None:
        return SlotReading(absent=resolution.absent, query=text)
    if resolution.value is not None:
        return SlotReading(value=resolution.value)
    if resolution.candidates:
        return SlotReading(candidates=tuple(resolution.candidates))
    return SlotReading(suggestions=tuple(resolution.suggestions), query=text)


_CLASS_WORDS = re.compile(r"\b(?:cp|ce1|ce2|cm1|cm2|tps|ps|ms|gs)\b(?:\s+[ab]\b)?", re.I)


def _without_class_words(text: str) -> str:
    return _CLASS_WORDS.sub(" ", text)
