"""The transport-free core: one message in (who, where, text or button), replies out."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.core import jobs
from bot.core.commands import menu_for
from bot.core.dispatch import dispatch
from bot.core.identity import Identities
from bot.core.messages import APOLOGY, Incoming, Outcome, Reply
from bot.core.question_counter import MetQuestion
from bot.core.services import ACTING_FOR, EntSignIn, Services
from bot.core.session import Engine, Session, StateConflict
from bot.core.state import ConversationState
from bot.core.tickets import met_question
from bot.settings import Settings
from intents.domain import DirectoryFailure
from intents.kb import KnowledgeBase, escape
from intents.nlu.entities import EntityReader
from intents.nlu.matcher import Matcher
from intents.nlu.retraining import Retraining
from intents.nlu.understanding import Understander, Understanding

log = logging.getLogger(__name__)

# Handlings of one message started again when another process wrote the speaker's state.
ATTEMPTS = 5
# Seconds between two looks for phrasings taught by another instance (one cheap query), and
# two writes of the question counts: a phrasing taught in chat is understood everywhere
# within this delay (at once by the instance where it was taught).
HOUSEKEEPING_SECONDS = 20.0


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
        sign_in: EntSignIn | None = None,
    ) -> None:
        self.settings = settings
        self.services = services
        self.kb = kb
        self.matcher = matcher
        self.clock = clock or (lambda: datetime.now(UTC))
        self.understander = Understander(
            kb, matcher, EntityReader(kb.lexicon), settings.confidence_floor
        )
        self.retraining: Retraining | None = None
        if settings.retrain_taught:
            self.retraining = Retraining(self.understander, settings.model_cache_dir)
            self.understander.on_taught = self.retraining.request
        self.identities = Identities(services)
        self.engine = Engine(
            services, kb, self.understander, self.identities, settings, sign_in=sign_in
        )
        self._chores_at = -math.inf
        self._taught_mark: tuple[int, int] | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        services: Services,
        *,
        clock: Callable[[], datetime] | None = None,
        sign_in: EntSignIn | None = None,
    ) -> Assistant:
        kb = KnowledgeBase()
        matcher = Matcher(kb, cache_dir=settings.model_cache_dir)
        return cls(settings, services, kb, matcher, clock=clock, sign_in=sign_in)

    def housekeeping(self, *, force: bool = False) -> None:
        """Every HOUSEKEEPING_SECONDS at most, outside any message: count the questions met
        (/stats), and understand the phrasings taught in chat by any instance (reloaded when
        the stored set changed)."""
        moment = time.monotonic()
        if not force and moment - self._chores_at < HOUSEKEEPING_SECONDS:
            return
        self._chores_at = moment
        try:
            self.engine.questions.flush(self.services, self.settings)
        except Exception:  # kept in memory for the next try
            log.exception("could not write the question counts")
        try:
            tickets = self.services.tickets
            mark = tickets.learned_mark()
            if mark != self._taught_mark:
                self.understander.teach(
                    (p.text, p.intent)
                    for p in tickets.learned()
                    # A phrasing of a topic since removed from the base is not taught.
                    if p.intent in self.kb.entries
                )
                self._taught_mark = mark
        except Exception:  # the model without them still answers
            log.exception("could not read the phrasings taught in chat")

    def handle(self, incoming: Incoming, *, login: str | None = None) -> Outcome:
        """One message in, replies out; never raises for anything a user can send."""
        self.housekeeping()
        # The directory acts as this speaker (the ENT's, with their own token).
        acting = ACTING_FOR.set(incoming.speaker_key)
        try:
            return self._handle_with_retries(incoming, login)
        finally:
            ACTING_FOR.reset(acting)

    def _handle_with_retries(self, incoming: Incoming, login: str | None) -> Outcome:
        try:
            for _ in range(ATTEMPTS):
                try:
                    # One transaction per message: the state read, what the message changes
                    # (a confirmed change with its audit entry) and the state written back
                    # commit together or not at all.
                    with self.services.transaction():
                        outcome, met = self._handle(incoming, login)
                    if met is not None:
                        self.engine.questions.add(met)
                    return outcome
                except StateConflict:
                    # Another process handled this speaker meanwhile: start again from its
                    # state (a second « Confirmer » then finds the change already handled).
                    log.info(
                        "conversation state of %s changed meanwhile, retrying",
                        incoming.speaker_key,
                    )
                except Exception as error:
                    # A pooled connection found dead (database restarted, connection killed):
                    # the pool is renewed and nothing of this attempt was kept; handled again
                    # from the stored state, a confirmation already committed is found gone.
                    if not getattr(error, "connection_invalidated", False):
                        raise
                    log.warning("database connection lost, handling the message again")
            log.warning(
                "gave up on a message from %s after %d conflicts", incoming.speaker_key, ATTEMPTS
            )
            return Outcome([Reply(APOLOGY)])
        except DirectoryFailure as failure:
            # The ENT did not answer a read (after its retries), or refused it: said as it is;
            # nothing of this message was kept.
            log.warning("directory failure for %s: %s", incoming.speaker_key, failure.message)
            return Outcome([Reply(escape(failure.message))])
        except Exception:  # the user must never see a traceback
            log.exception("failure while handling a message from %s", incoming.speaker_key)
            return Outcome([Reply(APOLOGY)])

    def _handle(self, incoming: Incoming, login: str | None) -> tuple[Outcome, MetQuestion | None]:
        key = incoming.speaker_key
        # The state and the speaker's link in one round trip.
        data, version, linked = self.services.conversations.load_with_link(key)
        speaker = self.identities.linked(key, login, linked)
        state = ConversationState.from_json(data)
        if incoming.update_id is not None and not state.first_delivery(incoming.update_id):
            log.info("update %s delivered again: answered already", incoming.update_id)
            return Outcome([]), None
        waiting = state.pending
        if incoming.press is None and incoming.text:
            pressed = state.typed_press(incoming.text)
            if pressed is not None:
                # It stood for a button (« oui », a label): a press.
                incoming = replace(incoming, text=None, press=pressed)
        now = self.clock()
        session = Session(
            self.engine, incoming, speaker, state, now, login, version=version, stored=data
        )
        outcome = dispatch(session)
        outcome.action = session.ended
        outcome.jobs_due = session.jobs_due
        met = met_question(session)
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
        session.save_state(last=True)
        return outcome, met

    def delivered(self, speaker_key: str, key: str, message: str) -> None:
        """The channel sent the reply marked `key` as its message `message` (an opaque
        reference): kept with the pending change so that its buttons can be voided later."""
        try:
            for _ in range(ATTEMPTS):
                with self.services.transaction():
                    data, version = self.services.conversations.load(speaker_key)
                    state = ConversationState.from_json(data)
                    if state.pending is None or state.pending.id != key:
                        return
                    state.pending.message = message
                    if self.services.conversations.save(
                        speaker_key, state.to_json(), version, self.clock()
                    ):
                        # Its expiry, stored with the reference: the buttons go even if
                        # nobody writes again (bot/core/job_runner.expire_confirmation).
                        pending = state.pending
                        due = pending.at + jobs.EXPIRY_DELAY
                        payload = jobs.ExpireConfirmation(speaker_key, pending.id, message)
                        jobs.schedule(
                            self.services, payload, jobs.expiry_key(pending.id), due, self.clock()
                        )
                        return
        except Exception:  # the reply is already out: at worst its buttons stay shown
            log.exception("could not keep the message of %s's confirmation", speaker_key)

    def understand(self, text: str, structure_id: str | None = None) -> Understanding:
        """What the assistant understands of a text, for `classify` and `eval`."""
        directory = self.services.directory if structure_id else None
        return self.understander.understand(text, directory, structure_id)
