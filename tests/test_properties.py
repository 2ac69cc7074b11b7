"""Property-based tests: random sequences of messages, button presses and waits from every
role, fed to the real core on the demo school. After every step: no exception and a reply
to every message; no change to the directory but the one confirmed, by whom it was shown to
and may do it, with its `done` audit entry; the directory's rules (tests/
test_properties_checks.py).

CI runs a fixed, derandomised profile; `HYPOTHESIS_PROFILE=long` runs many more sequences."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete
from sqlmodel import col

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.job_runner import JobRunner
from bot.core.jobs import EditMessage, SendMessage
from bot.core.messages import APOLOGY, Incoming, Outcome, Reply
from bot.core.state import CONFIRM_WORDS
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from bot.storage.tables import GroupMemberRow, GroupRow
from intents.kb import html_to_text
from intents.nlu.normalize import fold
from tests.html_oracle import telegram_html_problems
from tests.support import Clock, shared_kb_and_matcher
from tests.test_properties_checks import (
    Shown,
    Snapshot,
    StepContext,
    check_directory,
    check_step,
    snapshot,
)

# -- who talks -------------------------------------------------------------------------------
# Telegram chats, linked by the code an eRun hands out (as tests/telegram_support.py does).
LOGINS: dict[str, str | None] = {
    "tg:parent": "parent.demo",
    "tg:teacher": "nathalie.leroy",
    "tg:director": "claire.martin",
    # A second chat of the same director: its buttons are not the first chat's.
    "tg:director-bis": "claire.martin",
    "tg:other-director": "marc.dubois",
    "tg:erun": "erun.lille1",
    "tg:stranger": None,
}
SPEAKERS = list(LOGINS)

# -- what they say ---------------------------------------------------------------------------
PEOPLE = [
    "M. Petit",
    "Thomas Petit",
    "Mme Leroy",
    "Julien Leroy",
    "Nathalie Leroy",
    "Hugo Lambert",
    "Lucie Fontaine",
    "Bernard Vanacker",
    "Claire Martin",
    "Marc Dubois",
    "Sophie Girard",
    "Kévin Lagache",
    "Martine Duhamel",
    "Pierre Vanhove",
    "Nadine Dewitte",
    "Camille Dumont",
    "Ana Ferreira",
    "Gérard Lenoir",
    "Karim Bensaïd",
    "Marie-Hélène Vasseur-Lambert",
]
CLASSES = ["CE1", "CE2", "CM1", "CM2", "CP A", "CP B", "TPS-PS", "MS-GS", "ULIS", "PS", "6e"]
GROUPS = [
    "chorale",
    "APE",
    "APE 2021-2022",
    "Resp-Affect-GAR",
    "Enseignants de l'école",
    "Parents de l'école",
    "foot",
]
COMMANDS = [
    "bloque les parents",
    "bloque les élèves",
    "bloque les élèves et les parents",
    "débloque les parents",
    "débloque les élèves",
    "débloque les élèves et les parents",
    "rends les enseignants responsables d'affectation GAR",
    "ajoute {person} au groupe Resp-Affect-GAR",
    "/gar sauf {person}",
    "détache {person}",
    "/detacher {person}",
    "rattache {person} au {klass}",
    "/rattacher {person} {klass}",
    "supprime le groupe {group}",
    "/supprimer_groupe {group}",
    "supprime le compte manuel de {person}",
    "/supprimer_compte {person}",
    "supprime les comptes manuels",
    "où en est l'école pour la rentrée ?",
    "où en est l'école Pasteur ?",
    "bloque les parents de l'école Pasteur",
    "rappelle-moi de débloquer les parents le 4 septembre",
    "comment activer mon compte EduConnect ?",
    "/bloquer",
    "/debloquer",
    "/rattacher",
    "/detacher",
    "/supprimer_groupe",
    "/supprimer_compte",
    "/gar",
    "/checklist",
    "/groupes",
    "/sans_classe",
    "/comptes_manuels",
    "/annuler",
    "/deconnexion",
    "/oublier",
    "/privacy",
    "/start",
    "/aide",
    "/rappels",
    "/rappels off",
]
ANSWERS = [
    "oui",
    "Oui !",
    "ok",
    "je confirme",
    "Confirmer",
    "non",
    "annule",
    "Annuler",
    "Tout débloquer",
    "Garder ce compte bloqué",
    "Effacer mes données",
    "la première",
    "le 2",
    "Julien",
    "Petit",
    "CE1",
    "les parents",
    "Élèves",
    "Parents",
    "Élèves et parents",
]
_TEMPLATE = st.sampled_from(COMMANDS)
_FILLED = st.builds(
    lambda template, person, klass, group: template.format(
        person=person, klass=klass, group=group
    ),
    _TEMPLATE,
    st.sampled_from(PEOPLE),
    st.sampled_from(CLASSES),
    st.sampled_from(GROUPS),
)
TEXT = st.one_of(
    _FILLED,
    _FILLED,
    st.sampled_from(ANSWERS),
    st.sampled_from(ANSWERS),
    st.sampled_from(PEOPLE + CLASSES + GROUPS),
    st.text(max_size=40),
    st.builds(lambda a, b: f"{a} {b}", _FILLED, st.text(max_size=15)),
)
# Button data a client could send: garbage, labels, ids of the right shape for nobody.
RANDOM_DATA = st.one_of(
    st.text(max_size=30),
    st.sampled_from(ANSWERS),
    st.from_regex(r"[0-9a-f]{6}\.[A-Za-z0-9_-]{11}", fullmatch=True),
)
# Minutes waited between two steps: inside and beyond a confirmation's 10 minutes, a day.
WAITS = st.sampled_from([1, 4, 9, 11, 31, 60 * 24, 60 * 24 * 7])


# -- steps ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One thing a speaker does (or time passing), drawn before the core sees it."""

    kind: str
    speaker: str = "tg:director"
    text: str = ""
    private: bool = True
    # Which earlier button (counted from the latest), or how many minutes pass.
    pick: int = 0
    own: bool = True


DIRECTORS = st.sampled_from(["tg:director", "tg:director-bis"])
ANYONE = st.sampled_from(SPEAKERS)
_PRIVATE = st.sampled_from([True, True, True, True, False])
_PICK = st.integers(0, 7) | st.integers(0, 10_000)
STEP = st.one_of(
    # Directors' requests, with the words that reach the actions.
    *[st.builds(Step, st.just("say"), DIRECTORS, _FILLED, _PRIVATE)] * 5,
    # Their answers: « oui », a name, an ordinal, a label typed.
    *[st.builds(Step, st.just("say"), DIRECTORS, st.sampled_from(ANSWERS), _PRIVATE)] * 2,
    # Anyone saying anything, the same commands included.
    *[st.builds(Step, st.just("say"), ANYONE, TEXT, _PRIVATE)] * 3,
    *[st.builds(Step, st.just("confirm"), DIRECTORS, pick=_PICK)] * 3,
    st.builds(Step, st.just("confirm"), ANYONE, pick=_PICK),
    *[st.builds(Step, st.just("press_shown"), ANYONE, pick=_PICK)] * 2,
    st.builds(Step, st.just("press_shown"), ANYONE, pick=_PICK, own=st.just(False)),
    st.builds(Step, st.just("press_random"), ANYONE, RANDOM_DATA),
    st.builds(Step, st.just("wait"), pick=WAITS),
    st.builds(Step, st.just("relink"), ANYONE),
)


# -- the profiles ----------------------------------------------------------------------------
def _profile() -> settings:
    """CI: reproducible (derandomised, no example database); `long`: many more sequences."""
    base = settings(
        deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    if os.environ.get("HYPOTHESIS_PROFILE") == "long":
        examples = int(os.environ.get("HYPOTHESIS_EXAMPLES", "600"))
        return settings(base, max_examples=examples, stateful_step_count=60)
    return settings(base, max_examples=30, stateful_step_count=30, derandomize=True, database=None)


# -- the template store: migrated and filled once, copied for each sequence -------------------
_TEMPLATE_STORE: list[Store] = []


def fresh_store() -> Store:
    """The demo school in a new in-memory database (a copy of one made once: fast)."""
    if not _TEMPLATE_STORE:
        template = Store.in_memory()
        import_school(template, DEMO_SCHOOL)
        _TEMPLATE_STORE.append(template)
    store = Store.from_url("sqlite://")
    source = _TEMPLATE_STORE[0].engine.raw_connection()
    target = store.engine.raw_connection()
    try:
        source.driver_connection.backup(target.driver_connection)  # type: ignore[union-attr]
    finally:
        source.close()
        target.close()
    return store


class _Errors(logging.Handler):
    """ERROR records of the core (a failure it caught, a reply it had to repair)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@dataclass
class Chat:
    """What one speaker was shown: every button (id → label), and the confirmations."""

    buttons: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    confirmations: list[tuple[Shown, list[str]]] = field(default_factory=list)
    sent: int = 0


# Seen over a run, reported by the long profile (and kept small in CI).
STATS: Counter[str] = Counter()


class CoreMachine(RuleBasedStateMachine):
    """Several speakers talking to one assistant; every step checked."""

    def __init__(self) -> None:
        super().__init__()
        self.store = fresh_store()
        self.clock = Clock()
        kb, matcher = shared_kb_and_matcher()
        self.assistant = Assistant(Settings(), self.store, kb, matcher, clock=self.clock)
        self.runner = JobRunner(self.assistant.engine, self.clock, worker="properties")
        self.chats = {key: Chat() for key in SPEAKERS}
        self.refs: dict[str, tuple[str, list[str]]] = {}  # channel ref → (speaker, buttons)
        self.errors = _Errors()
        logging.getLogger().addHandler(self.errors)
        self.initial: Snapshot | None = None
        self.before: Snapshot | None = None

    def teardown(self) -> None:
        logging.getLogger().removeHandler(self.errors)
        self.store.dispose()

    # -- set-up ------------------------------------------------------------------------------
    @initialize(gar_missing=st.booleans())
    def link_everyone(self, gar_missing: bool) -> None:
        """Each chat linked by typing its code; sometimes the school has no GAR group (the
        platform never made it): the assistant must not make one."""
        if gar_missing:
            with self.store.transaction(), self.store.session() as session:
                session.execute(
                    delete(GroupMemberRow).where(col(GroupMemberRow.group_id) == "grp-gar")
                )
                session.execute(delete(GroupRow).where(col(GroupRow.id) == "grp-gar"))
        self.initial = self.before = snapshot(self.store)
        check_directory(self.initial, self.initial)
        for key, login in LOGINS.items():
            if login is not None:
                self._link(key, login)
                assert self.store.accounts.login_for(key) == login

    # -- steps -------------------------------------------------------------------------------
    @rule(step=STEP)
    def act(self, step: Step) -> None:
        """One step of the sequence (one rule, so that STEP's weights decide the mix)."""
        match step.kind:
            case "say":
                self._step(
                    step.speaker, Incoming(step.speaker, text=step.text, private_chat=step.private)
                )
            case "press_shown":
                self.press_shown(step.speaker, step.pick, own=step.own)
            case "confirm":
                confirmations = self.chats[step.speaker].confirmations
                if confirmations:
                    ids = confirmations[-1 - step.pick % len(confirmations)][1]
                    self._step(
                        step.speaker, Incoming(step.speaker, press=ids[step.pick % len(ids)])
                    )
            case "press_random":
                self._step(step.speaker, Incoming(step.speaker, press=step.text))
            case "wait":
                self.wait(step.pick)
            case "relink":
                login = LOGINS[step.speaker]
                if login is not None:
                    self._link(step.speaker, login)

    def press_shown(self, speaker: str, pick: int, *, own: bool) -> None:
        """A button the core showed: to this speaker, or to anyone."""
        chats = [self.chats[speaker]] if own else list(self.chats.values())
        ids = [button_id for chat in chats for button_id in chat.order]
        if ids:
            self._step(speaker, Incoming(speaker, press=ids[-1 - pick % len(ids)]))

    def wait(self, minutes: int) -> None:
        """Time passes; the due jobs run (expiries, reminders, the GAR check)."""
        self.clock.advance(minutes=minutes)
        before = snapshot(self.store)
        deliveries = self.runner.run_due()
        for delivery in deliveries:
            if isinstance(delivery, SendMessage):
                STATS["job message"] += 1
                self._shown(delivery.speaker_key, None, [delivery.reply])
            elif isinstance(delivery, EditMessage):
                STATS["job edit"] += 1
                assert delivery.ref in self.refs, f"an edit of an unknown message {delivery}"
        after = snapshot(self.store)
        step = StepContext("", None, True, self.clock.now, None, job_run=True)
        check_step(before, after, step)
        self.before = after

    # -- after every step ----------------------------------------------------------------------
    @invariant()
    def directory_rules_hold(self) -> None:
        if self.initial is not None and self.before is not None:
            check_directory(self.before, self.initial)

    # -- the step itself -----------------------------------------------------------------------
    def _link(self, speaker: str, login: str) -> None:
        code = self.store.accounts.invite(login, self.clock.now)
        self._step(speaker, Incoming(speaker, text=f"/connexion {code}"))

    def _step(self, speaker: str, incoming: Incoming) -> None:
        before = self.before if self.before is not None else snapshot(self.store)
        context = StepContext(
            speaker,
            self.store.accounts.login_for(speaker),
            incoming.private_chat,
            self.clock.now,
            self._confirms(speaker, incoming),
            may_forget=self._forgets(speaker, incoming),
        )
        outcome = self.assistant.handle(incoming)
        said = incoming.text if incoming.text is not None else f"[{incoming.press}]"
        _check_replies(outcome, said)
        assert not self.errors.records, f"{said!r} logged {self.errors.records}"
        self._shown(speaker, outcome, outcome.replies)
        after = snapshot(self.store)
        change = check_step(before, after, context)
        self.before = after
        STATS[f"intent {outcome.intent}"] += 1
        if not change.empty:
            STATS["change " + ",".join(sorted(change.tables()))] += 1
        done = [e for i, e in after.audit.items() if i not in before.audit]
        for entry in done:
            STATS[f"audit {entry.action} {entry.outcome}"] += 1
            if entry.outcome == "done" and change.empty:
                STATS[f"done without change {entry.action}"] += 1

    def _confirms(self, speaker: str, incoming: Incoming) -> Shown | None:
        """The confirmation shown to this speaker that the step stands for, if any: its
        button's id, one of its labels, or « oui » while it is the latest."""
        chat = self.chats[speaker]
        if not chat.confirmations:
            return None
        if incoming.press is not None:
            for shown, ids in chat.confirmations:
                if incoming.press in ids:
                    return shown
        typed = incoming.press if incoming.press is not None else incoming.text or ""
        latest = chat.confirmations[-1][0]
        if incoming.text is not None and fold(typed) in CONFIRM_WORDS:
            return latest
        wanted = typed.strip().casefold()
        for shown, _ in reversed(chat.confirmations):
            if wanted in {label.casefold() for label in shown.labels}:
                return shown
        return None

    def _forgets(self, speaker: str, incoming: Incoming) -> bool:
        """A press (or the typed label) of a button that erases the speaker's data."""
        chat = self.chats[speaker]
        label = chat.buttons.get(incoming.press or "", incoming.press or incoming.text or "")
        return "effacer" in fold(label)

    def _shown(self, speaker: str, outcome: Outcome | None, replies: list[Reply]) -> None:
        """Keep what the speaker now sees, and tell the core where its confirmation went."""
        chat = self.chats[speaker]
        for ref in outcome.void_buttons if outcome else []:
            assert ref in self.refs and self.refs[ref][0] == speaker, f"voided {ref} of another"
        for reply in replies:
            chat.sent += 1
            ref = f"{speaker}#{chat.sent}"
            ids = [b.id for b in reply.buttons]
            self.refs[ref] = (speaker, ids)
            for button in reply.buttons:
                chat.buttons[button.id] = button.label
                chat.order.append(button.id)
            if reply.key is not None:
                confirm = [b for b in reply.buttons if b.label != "Annuler"]
                assert confirm and len(confirm) < len(reply.buttons), reply.buttons
                intent = outcome.intent if outcome else None
                shown = Shown(reply.key, intent, tuple(b.label for b in confirm), self.clock.now)
                chat.confirmations.append((shown, [b.id for b in confirm]))
                STATS[f"proposal {intent}"] += 1
                self.assistant.delivered(speaker, reply.key, ref)


def _check_replies(outcome: Outcome, said: str) -> None:
    """At least one reply with words in it, never the apology, always well-formed HTML."""
    assert outcome.replies, f"no reply to {said!r}"
    assert any(html_to_text(r.text).strip() for r in outcome.replies), f"empty reply: {said!r}"
    for reply in outcome.replies:
        assert reply.text != APOLOGY, f"{said!r} → the apology (an exception was caught)"
        problems = telegram_html_problems(reply.text)
        assert not problems, f"{said!r} → {problems}: {reply.text[:300]!r}"


def test_random_conversations_keep_the_directory_and_its_rules() -> None:
    STATS.clear()
    run_state_machine_as_test(CoreMachine, settings=_profile())
    if os.environ.get("HYPOTHESIS_PROFILE") == "long":
        for name, seen in sorted(STATS.items()):
            print(f"{seen:7d}  {name}")
    # The sequences reached the changes, not only the refusals.
    assert STATS["audit action.block done"] + STATS["audit action.unblock done"] > 0, STATS
