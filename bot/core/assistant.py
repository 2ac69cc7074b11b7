"""The transport-free core: one message in (who, where, text or button), replies out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.core.commands import menu_for
from bot.core.dispatch import dispatch
from bot.core.identity import Identities
from bot.core.messages import APOLOGY, Incoming, Outcome, Reply
from bot.core.services import Services
from bot.core.session import Engine, Session
from bot.core.state import ConversationState
from bot.settings import Settings
from intents.kb import KnowledgeBase
from intents.nlu.entities import EntityReader
from intents.nlu.matcher import Matcher
from intents.nlu.understanding import Understander, Understanding

log = logging.getLogger(__name__)


class Assistant:
    """Understands a message, checks the speaker's rights once, runs the handler."""

    def __init__(
        self,
        settings: Settings,
        services: Services,
        kb: KnowledgeBase,
        matcher: Matcher,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.services = services
        self.kb = kb
        self.matcher = matcher
        self.clock = clock or (lambda: datetime.now(UTC))
        self.understander = Understander(
            kb, matcher, EntityReader(kb.lexicon), settings.confidence_floor
        )
        self.identities = Identities(services)
        self.engine = Engine(services, kb, self.understander, self.identities)

    @classmethod
    def create(
        cls, settings: Settings, services: Services, *, clock: Callable[[], datetime] | None = None
    ) -> Assistant:
        kb = KnowledgeBase()
        return cls(
            settings, services, kb, Matcher(kb, cache_dir=settings.model_cache_dir), clock=clock
        )

    def handle(self, incoming: Incoming, *, login: str | None = None) -> Outcome:
        """One message in, replies out; never raises for anything a user can send."""
        try:
            if incoming.press is None:
                # A typed message never carries out a change (only « Confirmer » does), so its
                # reads and the state write share one transaction: one commit per message.
                with self.services.transaction():
                    outcome = self._handle(incoming, login)
                if outcome is not None:
                    return outcome
                # It stood for a button (« oui », a label): a press, which may change the
                # directory in a transaction of its own.
            answered = self._handle(incoming, login, as_press=True)
            assert answered is not None
            return answered
        except Exception:  # the user must never see a traceback
            log.exception("failure while handling a message from %s", incoming.speaker_key)
            return Outcome([Reply(APOLOGY)])

    def _handle(
        self, incoming: Incoming, login: str | None, *, as_press: bool = False
    ) -> Outcome | None:
        """None when a typed message stands for a button and must be handled as a press."""
        key = incoming.speaker_key
        speaker = self.identities.speaker(key, login)
        state = ConversationState.from_json(self.services.conversations.get(key))
        waiting = state.pending
        if incoming.press is None and incoming.text:
            pressed = state.typed_press(incoming.text)
            if pressed is not None:
                if not as_press:
                    return None
                incoming = replace(incoming, text=None, press=pressed)
        session = Session(self.engine, incoming, speaker, state, self.clock(), login)
        outcome = dispatch(session)
        ended = waiting is not None and (state.pending is None or state.pending.id != waiting.id)
        if ended and waiting is not None and waiting.message is not None:
            # Confirmed, cancelled, expired or replaced: its buttons would only answer
            # « plus en attente », so the channel takes them away.
            outcome.void_buttons.append(waiting.message)
        # The session's speaker, not the one above: /connexion and /deconnexion change it.
        menu = menu_for(session.speaker.role)
        if state.menu != menu:
            outcome.menu = menu
        state.menu = menu
        self.services.conversations.put(key, state.to_json())
        return outcome

    def delivered(self, speaker_key: str, key: str, message: str) -> None:
        """The channel sent the reply marked `key` as its message `message` (an opaque
        reference): kept with the pending change so that its buttons can be voided later."""
        try:
            with self.services.transaction():
                state = ConversationState.from_json(self.services.conversations.get(speaker_key))
                if state.pending is None or state.pending.id != key:
                    return
                state.pending.message = message
                self.services.conversations.put(speaker_key, state.to_json())
        except Exception:  # the reply is already out: at worst its buttons stay shown
            log.exception("could not keep the message of %s's confirmation", speaker_key)

    def understand(self, text: str, structure_id: str | None = None) -> Understanding:
        """What the assistant understands of a text, for `classify` and `eval`."""
        directory = self.services.directory if structure_id else None
        return self.understander.understand(text, directory, structure_id)
