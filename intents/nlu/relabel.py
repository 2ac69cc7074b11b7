"""Reading the best intent with the cues of the message: a question about a task is its
how-to, an order its action, « existe encore ? » a list, « pourquoi… ? » the reasons, and
blocking has a polarity."""

from __future__ import annotations

from intents.kb import KnowledgeBase
from intents.nlu.analysis import OUT_OF_SCOPE, Analysis
from intents.nlu.entities import EntityReader
from intents.nlu.normalize import fold, order_concept

BLOCKING = {"action.block", "action.unblock"}


def links(kb: KnowledgeBase) -> tuple[dict[str, str], dict[str, str]]:
    """Each action or list → its how-to; each how-to, and its action and list alike → the
    topic that says why the task is worth doing (« pourquoi supprimer les comptes invités ? »)."""
    counterpart = {
        e.id: e.howto for e in kb.entries.values() if e.kind in ("action", "query") and e.howto
    }
    why = {e.id: e.why for e in kb.entries.values() if e.why}
    reasons = {**why, **{i: why[h] for i, h in counterpart.items() if h in why}}
    return counterpart, reasons


def order_verbs(kb: KnowledgeBase) -> dict[str, frozenset[str]]:
    """Each action → the concepts of the verbs its phrasings give it as an order with
    (« supprime » for deleting a group, never for putting the teachers in Resp-Affect-GAR)."""
    lexicon = kb.lexicon
    found: dict[str, frozenset[str]] = {}
    for entry in kb.entries.values():
        if entry.kind == "action":
            opened = (lexicon.imperative(lexicon.rewrite(fold(x))) for x in entry.examples)
            found[entry.id] = frozenset(
                order_concept(m.group(0).split()[-1]) for m in opened if m is not None
            )
    return found


class Relabelling:
    """The relabelling part of the understanding (a mixin of Understander)."""

    kb: KnowledgeBase
    reader: EntityReader
    floor: float
    counterpart: dict[str, str]  # see links()
    reasons: dict[str, str]

    def relabel(self, analysis: Analysis) -> tuple[str, float]:
        """The best intent, read with the cues: a question is a how-to, an order an action,
        and blocking has a polarity."""
        best = analysis.best
        intent = best.intent
        kind = self.kb.kind(intent) or "faq"
        # Asking how to do something is a how-to, even in words close to an order…
        cues, question = analysis.cues, analysis.is_question
        asked = cues.howto or question
        # « supprimer le groupe chorale ? » asks about the task, not what the directory holds.
        infinitive = cues.infinitive and question and not cues.asked_to_act
        if kind == "action" and asked and (not cues.order or infinitive):
            listed = None if infinitive else self._state_asked(analysis, intent)
            intent = listed or self.counterpart.get(intent, intent)
        # …and an order is an order, even in words close to the how-to.
        elif (
            cues.order
            and not cues.howto
            and intent in self.kb.action_for_howto
            and not (asked and not cues.asked_to_act)
        ):
            intent = self.kb.action_for_howto[intent]
        reason = self._why_asked(analysis, intent)
        if reason is not None:
            return reason, best.confidence
        if intent in BLOCKING:
            if not analysis.cues.order and not self.reader.profiles(analysis.text):
                # « ma carte bleue est bloquée »: no order and nobody of the school named.
                return self._next_best(analysis, BLOCKING | {"howto.block_accounts"})
            intent = self._polarity(intent, analysis)
        return intent, best.confidence

    def _why_asked(self, analysis: Analysis, intent: str) -> str | None:
        """« pourquoi supprimer les vieux comptes manuels ? »: asking why a task is worth doing,
        not how, gets the reasons, when they are a close reading too."""
        reason = self.reasons.get(intent)
        if reason is None or analysis.cues.howto or "raison" not in analysis.concepts:
            return None
        if analysis.cues.order and self.kb.kind(intent) == "action":
            return None  # « supprime le groupe APE, c'est un risque » : an order, with its reason
        close = {c.intent for c in analysis.ranking[1:4] if c.confidence >= self.floor}
        return reason if reason in close else None

    def _state_asked(self, analysis: Analysis, action: str) -> str | None:
        """« le groupe APE 2022 existe encore ? »: a question that names no way of doing asks
        what the directory holds, when a list of the same things is a close reading."""
        if analysis.cues.howto:
            return None
        howto = self.counterpart.get(action)
        for candidate in analysis.ranking[1:4]:
            if (
                self.kb.kind(candidate.intent) == "query"
                and self.counterpart.get(candidate.intent) == howto
                and candidate.confidence >= self.floor
            ):
                return candidate.intent
        return None

    @staticmethod
    def _polarity(action: str, analysis: Analysis) -> str:
        """Blocking or unblocking: said in many ways that all contain « bloc », so the
        concepts decide."""
        if action not in BLOCKING:
            return action
        if "order_bloqu" in analysis.concepts:
            # « on rouvrira avec les bonnes données, alors bloque les parents »: the verb that
            # gives the order decides, whatever the rest of the message says.
            return "action.block"
        # « tu peux bloquer les parents ? on rouvrira en septembre »: the verb asked for too.
        if "debloquer" in analysis.requested:
            return "action.unblock"
        if "bloquer" in analysis.requested:
            return "action.block"
        if "debloquer" in analysis.concepts:
            return "action.unblock"
        if "bloquer" in analysis.concepts:
            return "action.block"
        return action

    def _next_best(self, analysis: Analysis, excluded: set[str]) -> tuple[str, float]:
        for candidate in analysis.ranking:
            if candidate.intent not in excluded:
                if candidate.confidence >= self.floor:
                    return candidate.intent, candidate.confidence
                break
        return OUT_OF_SCOPE, 1.0 - analysis.best.confidence
