"""The handling of one incoming message: who, the conversation state, and the reply builders."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.identity import Identities
from bot.core.markup import checked
from bot.core.messages import ActionOutcome, Button, Incoming, Outcome, Reply
from bot.core.question_counter import QuestionCounter
from bot.core.services import EntSignIn, Services
from bot.core.state import ConversationState, StoredButton
from bot.core.ticket_records import QuestionOutcome
from bot.settings import Settings
from intents.domain import Speaker, Structure
from intents.kb import KnowledgeBase, html_to_text
from intents.nlu.normalize import fold
from intents.nlu.understanding import Understander
from intents.turn import Choice, Response, RunIntent, Say, SchoolTurn, Slots, SlotValue, Turn

# Words of a school's name that do not tell one school from another.
SCHOOL_WORDS = {
    "ecole",
    "primaire",
    "elementaire",
    "maternelle",
    "groupe",
    "scolaire",
    "les",
    "des",
    "rpi",
}


def owner_tag(speaker_key: str) -> str:
    """The prefix of a speaker's button ids: a press by someone else is told apart."""
    return hashlib.sha256(speaker_key.encode()).hexdigest()[:6]


class StateConflict(Exception):
    """Another process wrote the speaker's conversation state since this one read it: the
    message is handled again from the fresh state (Assistant.handle), nothing of this attempt
    being kept."""


@dataclass
class Engine:
    """The long-lived parts a session works with."""

    services: Services
    kb: KnowledgeBase
    understander: Understander
    identities: Identities
    # Read by the texts that quote a setting (/privacy: retention periods, whom to ask).
    settings: Settings
    # The questions met by this process, counted in the question log now and then (/stats).
    questions: QuestionCounter = field(default_factory=QuestionCounter)
    # The ENT's sign-in, when the directory is the ENT's (DIRECTORY_BACKEND=entcore).
    sign_in: EntSignIn | None = None


@dataclass
class Session:
    """One message being handled; its state is written back once it is answered."""

    engine: Engine
    incoming: Incoming
    speaker: Speaker
    state: ConversationState
    now: datetime
    # The login a trusted transport (the console) asserts, kept for re-checks.
    login: str | None = None
    intent: str | None = None
    confidence: float = 0.0
    entities: dict[str, SlotValue] = field(default_factory=dict)
    chosen_structure: str | None = None
    # One-line notes shown before the answer (« J'abandonne la demande précédente… »).
    notices: list[str] = field(default_factory=list)
    # The version of the stored state this session read (0: none stored), for save_state().
    version: int = 0
    # The state as stored (read, or last written by this session): an unchanged state is
    # not written again when nothing requires it (save_state(last=True)).
    stored: dict[str, Any] = field(default_factory=dict)
    # True once this session wrote the state: its row stays locked until the commit.
    wrote: bool = False
    # Set by /oublier (bot/core/privacy.py): the stored state is deleted, not written back.
    forgotten: bool = False
    # How a pending change ended during this message (confirmed, expired, cancelled…), for
    # Outcome.action: the channel counts it (/metrics).
    ended: ActionOutcome | None = None
    # How the question of this message was met, counted for /stats (bot/core/tickets.py).
    question_outcome: QuestionOutcome | None = None
    # Set when this message scheduled a job due now (an answer to an asker): the channel
    # runs the due jobs at once rather than at its next tick.
    jobs_due: bool = False

    def reread_speaker(self) -> None:
        """Read the speaker's rights again, past any cache: before a change runs, a link may
        have been revoked since the message that asked for it."""
        self.speaker = self.engine.identities.speaker(
            self.incoming.speaker_key, self.login, fresh=True
        )

    def save_state(self, *, last: bool = False) -> None:
        """Write the state back, conditioned on the version read: raise StateConflict when
        another process wrote it in between (one conditional UPDATE, never check-then-act).

        `last`: the message's final write. An unchanged state is then not written at all
        when the message wrote nothing else (it only read: nothing to keep in order with a
        concurrent message), or when this session already wrote it (its row is locked until
        the commit: nobody can have moved it since)."""
        key = self.incoming.speaker_key
        conversations = self.services.conversations
        if self.forgotten:
            if not conversations.erase(key, self.version):
                raise StateConflict(key)
            self.version = 0
            return
        data = self.state.to_json()
        if not last:
            self._write(data)
            return
        with self.services.last_write() as alone:
            if data == self.stored and (alone or self.wrote):
                return
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        key = self.incoming.speaker_key
        if not self.services.conversations.save(key, data, self.version, self.now):
            raise StateConflict(key)
        self.version += 1
        self.stored = data
        self.wrote = True

    @property
    def services(self) -> Services:
        return self.engine.services

    @property
    def kb(self) -> KnowledgeBase:
        return self.engine.kb

    # -- replies ---------------------------------------------------------------------------
    def outcome(self, response: Response | list[Say], *, edits: bool = False) -> Outcome:
        says = response.says if isinstance(response, Response) else response
        # Every reply of the core is built here: the one place its HTML is checked.
        replies = [Reply(checked(note, self.intent)) for note in self.notices]
        self.notices = []
        replies += [
            Reply(checked(say.text, self.intent), self.buttons_for(say.choices)) for say in says
        ]
        if edits and replies:
            replies[0].edits_pressed = True
        return Outcome(replies, self.intent, self.confidence, dict(self.entities))

    def text(self, text: str, choices: list[Choice] | None = None) -> Outcome:
        return self.outcome([Say(text, choices or [])])

    def buttons_for(self, choices: list[Choice]) -> list[Button]:
        """Opaque ids for the choices; what they do stays in the conversation state."""
        tag = owner_tag(self.incoming.speaker_key)
        buttons = []
        for choice in choices:
            button_id = f"{tag}.{secrets.token_urlsafe(8)}"
            self.state.keep_button(button_id, StoredButton(choice.label, choice.payload))
            buttons.append(Button(choice.label, button_id))
        if buttons:
            self.state.last_buttons = [b.id for b in buttons]
        return buttons

    # -- the school acted on ---------------------------------------------------------------
    def structure_id(self) -> str | None:
        """The school acted on: the one chosen or named (eRun), else the speaker's first."""
        if self.chosen_structure in self.speaker.structures:
            return self.chosen_structure
        return self.speaker.structures[0] if self.speaker.structures else None

    def school_named(self, text: str, *, anywhere: bool = False) -> Structure | None:
        """The school the message names (« l'école Pasteur », its UAI): one of the speaker's,
        or with `anywhere` any school of the directory."""
        words = set(fold(text).split())
        directory = self.services.directory
        if anywhere:
            schools = directory.structures()
        else:
            schools = [s for i in self.speaker.structures if (s := directory.structure(i))]
        found = []
        for structure in schools:
            distinctive = {w for w in fold(structure.name).split() if len(w) >= 3} - SCHOOL_WORDS
            if structure.id.lower() in words or (distinctive and distinctive <= words):
                found.append(structure)
        return found[0] if len(found) == 1 else None

    def turn(
        self,
        intent: str,
        text: str,
        slots: Slots,
        structure: str | None = None,
        offer: RunIntent | None = None,
    ) -> Turn:
        """The handler's view of this message: a SchoolTurn when a school is acted on."""
        structure = structure or self.structure_id()
        turn = Turn(
            self.speaker,
            text,
            intent,
            self.confidence,
            slots,
            self.kb,
            self.now.date(),
            self.now,
            self.incoming.private_chat,
            offer,
        )
        if structure is None:
            return turn
        return SchoolTurn(
            **vars(turn),
            directory=self.services.directory,
            structure_id=structure,
            history=self.services.audit,
        )

    def school_turn(self, intent: str, text: str, slots: Slots, structure: str) -> SchoolTurn:
        turn = self.turn(intent, text, slots, structure)
        assert isinstance(turn, SchoolTurn)
        return turn

    # -- audit -----------------------------------------------------------------------------
    def audit(
        self,
        action: str,
        targets: list[str],
        outcome: str,
        detail: str,
        structure: str | None = None,
    ) -> None:
        self.services.audit.record(
            # The transport identity (« console:claire.martin », « telegram:123 »): who really
            # typed, whatever account it is linked to.
            who=self.speaker.key,
            action=action,
            targets=targets,
            outcome=outcome,
            detail=html_to_text(detail)[:500],
            structure_id=structure or self.structure_id(),
            at=self.now,
        )
