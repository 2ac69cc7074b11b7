"""After the ENT's sign-in (OAuth2 callback): the speaker is linked to the login the ENT
vouched for, and told in the chat by a job (the callback runs in the web server, not in a
conversation)."""

from __future__ import annotations

from datetime import datetime

from bot.core import jobs
from bot.core.job_session import sends, session_for
from bot.core.jobs import Delivery
from bot.core.services import ACTING_FOR
from bot.core.session import Engine
from intents.domain import Role
from intents.kb import escape
from intents.turn import Say


def signed_in(engine: Engine, speaker_key: str, login: str, now: datetime) -> None:
    """Link the speaker to that login and schedule the welcome message, in one transaction."""
    services = engine.services
    acting = ACTING_FOR.set(speaker_key)
    try:
        with services.transaction():
            services.accounts.link(speaker_key, login, now)
            key = f"welcome:{speaker_key}:{now.isoformat()}"
            jobs.schedule(services, jobs.Welcome(speaker_key, login), key, now, now)
    finally:
        ACTING_FOR.reset(acting)
    engine.identities.forget(speaker_key)


def welcome(engine: Engine, payload: jobs.Welcome, now: datetime) -> list[Delivery]:
    """The chat told that the ENT account is linked, and what the assistant can do now."""
    session = session_for(engine, payload.speaker_key, None, now)
    speaker = session.speaker
    name = escape(speaker.display_name or payload.login)
    if speaker.role == Role.DIRECTOR:
        structure_id = session.structure_id()
        structure = session.services.directory.structure(structure_id) if structure_id else None
        school = escape(structure.name) if structure else ""
        text = (
            f"✅ Bienvenue {name} : votre compte ENT est relié, directeur ou directrice de "
            f"<b>{school}</b>. J'agis avec vos propres droits dans l'ENT. Dites par exemple "
            "« où en est l'école pour la rentrée ? » ou « bloque les parents »."
        )
    else:
        text = f"✅ Bienvenue {name} : votre compte ENT est relié."
    return sends(session, [Say(text)])
