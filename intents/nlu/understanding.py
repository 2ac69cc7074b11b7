"""From a message to one intent id, a confidence and the entities it names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from intents.domain import BLOCKABLE_PROFILES
from intents.kb import KnowledgeBase
from intents.nlu.clauses import several_topics
from intents.nlu.entities import EntityReader
from intents.nlu.matcher import OUT_OF_SCOPE, Analysis, Matcher
from intents.nlu.normalize import ORDER_CONCEPT, fold, without_nothing_to_do
from intents.nlu.relabel import BLOCKING, Relabelling, links, order_verbs
from intents.nlu.roster import Roster
from intents.nlu.slots import SlotReader
from intents.nlu.taught import TaughtPhrasings, Teachable
from intents.turn import RunIntent, Slots, SlotValue, slot_values

if TYPE_CHECKING:
    from intents.domain import Directory

_WORD = re.compile(r"[^\W_]+")
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
        self.verbs = order_verbs(kb)
        self.roster = Roster(lambda: matcher.word_counts)
        self.slots = SlotReader(self.reader, self.roster)
        self.taught = TaughtPhrasings(kb, matcher)  # phrasings an eRun taught in chat
        # The uncovered services each answer speaks of (none, as a rule).
        self.covered = {
            e.id: kb.lexicon.services_in(kb.lexicon.rewrite(fold(f"{e.title} {e.answer or ''}")))
            for e in kb.entries.values()
        }

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
        if config.dialogue_floor is not None and self.kb.kind(best.intent) == "dialogue":
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
        acts = self.kb.kind(intent) in ("action", "query")
        # « crée un groupe avec les parents délégués »: the document never says how to create,
        # and no action nor list of the assistant does it. « débloque mon compte pronote » is
        # about another service, whatever the words around it: never an action, and a question
        # only when it names the domain too (« le compte educonnect que j'utilise pour pronote »).
        uncovered = analysis.services - self.covered.get(intent, frozenset())
        if (analysis.orders and acts) or (uncovered and (acts or not analysis.anchors)):
            return OUT_OF_SCOPE, confidence
        return intent, confidence

    def _without_names(self, text: str, directory: Directory, structure_id: str) -> str:
        """The message less the school's people names: they say who, never what to do. The
        signs that start a clause stay; a question mark at the end goes: asked of someone of
        the school (« associer Mme Fontaine à la classe ULIS ? »), it is about doing it to
        them, not about how it is done."""
        names = self.roster.names(directory, structure_id)
        kept = _WORD.sub(lambda word: "" if fold(word[0]) in names else word[0], text)
        return kept.rstrip().rstrip("?") if kept != text else text

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
        named_someone = False
        if directory is not None and structure_id is not None:
            without_names = self._without_names(readable, directory, structure_id)
            named_someone, readable = without_names != readable, without_names
        if topic is None:
            analysis = self.matcher.analyse(readable)
        else:
            analysis = self.matcher.analyse(f"{topic} {readable}")
            analysis.cues = self.matcher.read_cues(readable)
        intent, confidence = self.taught.overrule(analysis, self.decide(analysis))
        slots: Slots = {}
        if named_someone and self.kb.kind(intent) == "dialogue":
            shorthand = self._shorthand_order(analysis, text, directory, structure_id)
            if shorthand is not None:
                intent, confidence, slots = shorthand
        if (
            intent in BLOCKING
            and named_someone
            and self._names_one_account(text, directory, structure_id)
        ):
            intent = OUT_OF_SCOPE
        if self.kb.kind(intent) == "action" and not slots:
            other = self._action_of_verb(analysis, intent, text, directory, structure_id)
            if other is not None:
                intent, confidence, slots = other
        if self.kb.kind(intent) == "action" and not slots:
            slots = self.slots.read(intent, text, directory, structure_id)
            if self._teacher_to_remove(intent, analysis, slots, directory, structure_id):
                intent = DETACH
                slots = self.slots.read(intent, text, directory, structure_id)
        alternatives = [
            (c.intent, c.confidence) for c in analysis.ranking[:4] if c.intent != intent
        ][:3]
        u = Understanding(intent, confidence, slots, alternatives, analysis)
        action = self.kb.action_for_howto.get(intent)
        if action is not None:
            action = self._polarity(action, analysis)
            u.offer = RunIntent(action, self.slots.read(action, text, directory, structure_id))
        if intent != OUT_OF_SCOPE:
            self.check_margin(u, analysis)
            u.questions = self._questions(text, intent)
        return u

    def _shorthand_order(
        self, analysis: Analysis, text: str, directory: Directory | None, structure_id: str | None
    ) -> tuple[str, float, Slots] | None:
        """« hélène lefebvre dumont au ce1 merci »: the names read out, « au ce1 merci » looks
        like thanks; but an action whose every slot (two or more) the message fills with
        someone and something of the school is the order, in a director's shorthand."""
        for candidate in analysis.ranking[1:3]:
            if self.kb.kind(candidate.intent) != "action" or candidate.confidence < self.floor:
                continue
            slots = self.slots.read(candidate.intent, text, directory, structure_id)
            if len(slots) >= 2 and _all_filled(slots):
                return candidate.intent, candidate.confidence, slots
        return None

    def _action_of_verb(
        self,
        analysis: Analysis,
        intent: str,
        text: str,
        directory: Directory | None,
        structure_id: str | None,
    ) -> tuple[str, float, Slots] | None:
        """« supprime resp-affect-gar » names the group the GAR action fills, but no one gives
        that action with « supprime », and it finds no one to act on in the message: a close
        action that is given with the verb of the order, and finds all it acts on, is the one
        meant (blocking's polarity is read apart)."""
        if intent in BLOCKING or not analysis.cues.order or directory is None:
            return None
        said = {c for c in analysis.concepts if c.startswith(ORDER_CONCEPT)}
        if not said or said & self.verbs.get(intent, frozenset()):
            return None
        own = self.slots.read(intent, text, directory, structure_id)
        if _all_filled(own):
            return None  # « supprime le rattachement de Marc Dubois » : Marc Dubois, detached
        for candidate in analysis.ranking[1:4]:
            if candidate.confidence < self.floor or not said & self.verbs.get(
                candidate.intent, frozenset()
            ):
                continue
            slots = self.slots.read(candidate.intent, text, directory, structure_id)
            if _all_filled(slots):
                return candidate.intent, candidate.confidence, slots
        return None

    def _names_one_account(
        self, text: str, directory: Directory | None, structure_id: str | None
    ) -> bool:
        """« bloque uniquement le compte de l'élève Yanis Boudjema »: the assistant blocks and
        unblocks a whole profile, never the pupil or parent the message names."""
        if directory is None or structure_id is None:
            return False
        families = [
            u
            for u in self.roster.users(directory, structure_id)
            if u.profile in BLOCKABLE_PROFILES
        ]
        found = self.reader.person(text, families)
        if found.partial:
            return False
        # « la famille Wojcik » names its four members alike: one family all the same. Typed
        # whole, not guessed at: « merci d'avance » is no Mercier.
        named = {found.value, *found.candidates}
        words = set(fold(text).split())
        return any(u.id in named and set(fold(u.last_name).split()) <= words for u in families)

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
        if named.value not in {u.id for u in self.roster.teachers(directory, structure_id)}:
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
        if analysis.cues.order and self.kb.kind(first.intent) == "action":
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
            text, main, self._topic, self.kb.title, lambda i: self.kb.kind(i) == "faq"
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


def _all_filled(slots: Slots) -> bool:
    """The reading has slots, and each holds a value of the school."""
    return bool(slots) and all(r.value is not None for r in slots.values())
