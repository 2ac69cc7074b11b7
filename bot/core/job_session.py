"""A job's view of the speaker it is about: a session as if they had just written."""

from __future__ import annotations

from datetime import datetime

from bot.core.jobs import Delivery, SendMessage
from bot.core.messages import Incoming
from bot.core.session import Engine, Session
from bot.core.state import ConversationState
from intents.turn import Say


def session_for(engine: Engine, speaker_key: str, login: str | None, now: datetime) -> Session:
    """A session for the speaker a job is about, as if they had just written (rights fresh)."""
    data, version = engine.services.conversations.load(speaker_key)
    state = ConversationState.from_json(data)
    speaker = engine.identities.speaker(speaker_key, login, fresh=True)
    incoming = Incoming(speaker_key, private_chat=True)
    return Session(engine, incoming, speaker, state, now, login, version=version)


def sends(session: Session, says: list[Say]) -> list[Delivery]:
    """Replies for the speaker (buttons kept in their state, written back)."""
    outcome = session.outcome(says)
    session.save_state()
    return [SendMessage(session.incoming.speaker_key, reply) for reply in outcome.replies]
