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


@registry.intent("dialogue.help", kind="dialogue")
def help_text(turn: Turn) -> Response:
    """Explique ce que l'assistant sait faire, et à la direction ce qu'il peut faire pour elle."""
    response = answer_from_knowledge(turn)
    if turn.speaker.role in ("director", "erun") and turn.private_chat:
        allowed = {"director": {"action", "query"}, "erun": {"query"}}[turn.speaker.role]
        lines = [f"• {spec.doc}" for spec in registry.specs() if spec.kind in allowed and spec.doc]
        response.says.append(
            Say("<b>Pour votre école</b> (demandez-le avec vos mots) :\n" + "\n".join(lines))
        )
    return response


def _action_offered(turn: Turn) -> str | None:
    """The action matching a how-to, offered to a director who can do it here."""
    if turn.directory is None or not turn.private_chat:
        return None
    if turn.structure_id not in turn.speaker.structures or turn.speaker.role != "director":
        return None
    return turn.kb.action_for_howto.get(turn.intent)
