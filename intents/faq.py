"""Answers from the knowledge base: FAQ topics and dialogue (greetings, help, eRun)."""

from __future__ import annotations

from intents.registry import registry
from intents.turn import Choice, Response, Say, Turn

OFFER_LABEL = "Je peux le faire pour vous"


@registry.kind("faq")
@registry.kind("dialogue")
def answer_from_knowledge(turn: Turn) -> Response:
    """Répond à une question de rentrée à partir du document de l'académie."""
    entry = turn.kb.entries[turn.intent]
    choices = turn.see_also(entry.related)
    action = _action_offered(turn)
    if action is not None:
        choices.insert(0, Choice(OFFER_LABEL, {"intent": action}))
    return Response([Say(turn.render(turn.intent), choices)])


def _action_offered(turn: Turn) -> str | None:
    """The action matching a how-to, offered to a director who can do it here."""
    if turn.directory is None or not turn.private_chat:
        return None
    if turn.structure_id not in turn.speaker.structures or turn.speaker.role != "director":
        return None
    for entry in turn.kb.entries.values():
        if entry.kind == "action" and entry.howto == turn.intent:
            return entry.id
    return None
