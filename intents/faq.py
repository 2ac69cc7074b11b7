"""Answers from the knowledge base: FAQ topics and dialogue (greetings, help, eRun)."""

from __future__ import annotations

from intents.domain import Role
from intents.kb import escape
from intents.registry import registry
from intents.turn import Choice, Response, RunIntent, Say, SchoolTurn, Turn

OFFER_LABEL = "Je peux le faire pour vous"
# What each role may ask the assistant to do for its school, listed by /aide.
_HELP_KINDS = {Role.DIRECTOR: {"action", "query"}, Role.ERUN: {"query"}}


@registry.kind("faq")
@registry.kind("dialogue")
def answer_from_knowledge(turn: Turn) -> Response:
    """Répond à une question de rentrée à partir du document de l'académie."""
    entry = turn.kb.entries[turn.intent]
    choices = turn.see_also(entry.related)
    offer = _offer(turn)
    if offer is not None:
        choices.insert(0, Choice(OFFER_LABEL, offer))
    return Response([Say(turn.render(turn.intent), choices)])


@registry.intent("dialogue.help", kind="dialogue")
def help_text(turn: Turn) -> Response:
    """Explique ce que l'assistant sait faire, et à la direction ce qu'il peut faire pour elle."""
    response = answer_from_knowledge(turn)
    allowed = _HELP_KINDS.get(turn.speaker.role)
    if allowed and turn.private_chat:
        lines = [
            f"• {escape(spec.doc)}"
            for spec in registry.specs()
            if spec.kind in allowed and spec.doc
        ]
        response.says.append(
            Say("<b>Pour votre école</b> (demandez-le avec vos mots) :\n" + "\n".join(lines))
        )
    return response


def _offer(turn: Turn) -> RunIntent | None:
    """The action matching a how-to, offered to a director who can do it here: the one the
    question spoke of (same polarity, same names), else the how-to's own action."""
    if not isinstance(turn, SchoolTurn) or not turn.private_chat:
        return None
    if turn.speaker.role != Role.DIRECTOR or turn.structure_id not in turn.speaker.structures:
        return None
    if turn.offer is not None:
        return turn.offer
    action = turn.kb.action_for_howto.get(turn.intent)
    return RunIntent(action) if action else None
