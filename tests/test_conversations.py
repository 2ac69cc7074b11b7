"""Conversations kept as data (tests/conversations/*.yaml), run through the real pipeline.

A file holds `school` (`demo`, or a school file under tests/schools/) and `stories`. A story
has a `name`, who speaks (`as`: a login, absent for the public), optionally `private: false`,
a list of `turns`, and what the directory must show at the end (`directory`). A turn is
`say: text` or `press: label` (`earlier: true`: a button of an older answer), with
optional `as` (another speaker), `advance` (minutes on the
clock), and what the user must see:
- `intent`: the intent understood;
- `expect` / `absent`: texts that must / must not appear (case-insensitive);
- `buttons`: the exact button labels; `buttons_include`: labels among them;
- `removed`: the exact labels of the buttons taken off earlier messages by this answer.
`directory` checks: `audit` (the last entries' action and outcome, oldest first, and
optionally their `who`, `school`, `targets`: a count or the names), and
`teacher_classes`, `blocked` (count by profile), `blocked_accounts` (by name: blocked or
not, and individually or not), `groups`, `accounts` (see _check_directory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.services import Services
from bot.entcore.backend import EntServices, NoToken, SpeakerDirectory
from bot.settings import Settings
from bot.storage.audit import AuditEntry
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.domain import Directory
from tests.fake_entcore.from_school import state_from_school
from tests.fake_entcore.support import running_ent
from tests.support import Clock, Conversation, Seen, shared_kb_and_matcher

HERE = Path(__file__).resolve().parent
STORIES = sorted((HERE / "conversations").glob("*.yaml"))
# Stories that cannot run on the ENT, and why (tests/test_entcore_parity.py lists what the
# ENT's API does not hold): each is a real limit of entcore, not of the assistant.
ERUN = "l'ENT ne connaît pas la fonction eRun (seuls les ADML lisent l'annuaire)"
ONE_FLAG = "l'ENT garde un seul drapeau « bloqué » par compte : un blocage individuel s'y perd"
GONE = "l'ENT oublie un compte supprimé : il n'apparaît plus dans aucune lecture"
DETACHED = "un enseignant détaché n'est plus visible par la direction de l'école dans l'ENT"
SCOPE = "le jeton d'une direction ne montre que ses écoles : les autres n'existent pas pour elle"
ORDER = "l'ENT rend les personnes dans son ordre, pas dans celui du fichier école"
QUEUE = "l'ENT ne donne pas la circonscription d'une école (routage des questions)"
LOCAL_ONLY: dict[str, str] = {
    "a teacher detached earlier is said detached, with the date": DETACHED,
    "parents unblocked later are said unblocked since the unblock": ONE_FLAG,
    "an unblock that keeps one account blocked lists only those it unblocked": ONE_FLAG,
    "a detach is audited with the teacher, named by the directory": DETACHED,
    "an eRun's refused order is audited with who asked and no target": ERUN,
    "a never-activated manual account is deleted for good": GONE,
    "an unanswered question is handed over, answered by the eRun, and the asker is told": QUEUE,
    "taught once, answered by the assistant the next time": ERUN,
    "la première answers which Leroy": ORDER,
    "le deuxième answers which Leroy": ORDER,
    "the director's own school only": SCOPE,
    "a never-activated volunteer account is deleted": GONE,
    "the eRun reads the checklist of the school named": ERUN,
    "on Les Tilleuls, the parent blocked alone is named and can stay blocked": ONE_FLAG,
    "the eRun of two schools is asked which one": ERUN,
    "a detached teacher typed again is no look-alike": DETACHED,
    "two manual accounts in one order": GONE,
    "two accounts, one of them from the feed, only the manual one goes": GONE,
    "an exact full name beats a hyphenated look-alike, after the person left": DETACHED,
    "a deleted account is said so": GONE,
    "another school named by a director is refused with the reason": SCOPE,
    "the eRun reads but does not change": ERUN,
    "another school's director cannot act on Jean Jaurès": SCOPE,
    "the eRun is never told to contact their eRun": ERUN,
    "unblocking the parents names the one blocked on her own, who stays blocked": ONE_FLAG,
    "unblocking the parents, all of them, lifts the individual block too": ONE_FLAG,
    "a typed yes does not guess which way, a typed label does": ONE_FLAG,
    "cancelled at the choice, every parent stays blocked": ONE_FLAG,
    "blocking the parents keeps the individual block on record": ONE_FLAG,
    "the eRun cannot unblock, whatever the individual blocks": ERUN,
    "a typed yes after another question still does not guess": ONE_FLAG,
}


def _stories() -> Iterator[Any]:
    for path in STORIES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for story in data["stories"]:
            yield pytest.param(
                data.get("school", "demo"), story, id=f"{path.stem}: {story['name']}"
            )


@pytest.fixture
def world() -> Iterator[tuple[Store, Clock]]:
    store = Store.in_memory()
    store.upgrade()
    yield store, Clock()
    store.dispose()


@pytest.mark.parametrize("backend", ["local", "entcore"])
@pytest.mark.parametrize(("school", "story"), list(_stories()))
def test_story(
    world: tuple[Store, Clock], school: str, story: dict[str, Any], backend: str
) -> None:
    store, clock = world
    path = DEMO_SCHOOL if school == "demo" else HERE / "schools" / school
    import_school(store, path)
    if backend == "local":
        _run_story(store, store, store.directory, clock, story)
        return
    not_on_the_ent = LOCAL_ONLY.get(story["name"])
    if not_on_the_ent:
        pytest.skip(f"pas sur l'ENT : {not_on_the_ent}")
    on_ent = state_from_school(path)
    with running_ent(on_ent.state) as ent:
        directory = SpeakerDirectory(ent.client, _tokens_of(on_ent.tokens), cache_seconds=0)
        # What the story checks at the end, read by the director of the story's school.
        directors = on_ent.directors()
        login = str(story["as"]) if story.get("as") in directors else next(iter(directors))
        reader = ent.directory(on_ent.token(login), 0)
        _run_story(store, EntServices(store, directory), reader, clock, story)


def _tokens_of(tokens: dict[str, str]) -> Callable[[str], str]:
    """Each console speaker (« console:LOGIN ») acts with that account's own token."""

    def token_for(speaker_key: str) -> str:
        login = speaker_key.split(":", 1)[1]
        if login not in tokens:
            raise NoToken("Pas de jeton de l'ENT pour cette personne.")
        return tokens[login]

    return token_for


def _run_story(
    store: Store, services: Services, reader: Directory, clock: Clock, story: dict[str, Any]
) -> None:
    kb, matcher = shared_kb_and_matcher()
    assistant = Assistant(Settings(), services, kb, matcher, clock=clock)
    speakers: dict[str | None, Conversation] = {}

    def speaker(login: str | None) -> Conversation:
        if login not in speakers:
            # Keyed as the console keys its speakers: the audit's `who` reads as in production.
            key = f"console:{login or 'public'}"
            speakers[login] = Conversation(
                assistant, login, key, private=story.get("private", True)
            )
        return speakers[login]

    for number, turn in enumerate(story["turns"], start=1):
        clock.advance(minutes=turn.get("advance", 0))
        who = speaker(turn.get("as", story.get("as")))
        if "press" in turn:
            seen = who.press(turn["press"], earlier=turn.get("earlier", False))
        else:
            seen = who.say(turn["say"])
        _check_turn(f"turn {number} ({turn.get('say') or turn.get('press')})", turn, seen)
    if "directory" in story:
        _check_directory(store, reader, story["directory"])


def _check_turn(where: str, turn: dict[str, Any], seen: Seen) -> None:
    shown = seen.text.casefold()
    if "intent" in turn:
        assert seen.intent == turn["intent"], f"{where}: intent {seen.intent}\n{seen.text}"
    for text in turn.get("expect", []):
        assert text.casefold() in shown, f"{where}: « {text} » missing from\n{seen.text}"
    for text in turn.get("absent", []):
        assert text.casefold() not in shown, f"{where}: « {text} » shown in\n{seen.text}"
    if "buttons" in turn:
        assert seen.buttons == turn["buttons"], f"{where}: buttons {seen.buttons}"
    if "removed" in turn:
        assert seen.removed == turn["removed"], f"{where}: buttons taken away {seen.removed}"
    for label in turn.get("buttons_include", []):
        assert label in seen.buttons, f"{where}: no button {label!r} in {seen.buttons}"


def _check_directory(store: Store, directory: Directory, expected: dict[str, Any]) -> None:
    users = {u.full_name: u for s in directory.structures() for u in directory.users(s.id)}
    if "audit" in expected:
        entries = store.audit.entries()[-len(expected["audit"]) :]
        assert [(e.action, e.outcome) for e in entries] == [
            (a["action"], a["outcome"]) for a in expected["audit"]
        ]
        for entry, wanted in zip(entries, expected["audit"], strict=True):
            _check_entry(directory, entry, wanted)
    for name, classes in expected.get("teacher_classes", {}).items():
        user = users[name]
        names = {c.id: c.name for s in user.structures for c in directory.classes(s)}
        assert sorted(names[c] for c in user.classes if c in names) == sorted(classes), name
    for profile, count in expected.get("blocked", {}).items():
        structure = directory.structures()[0].id
        blocked = [u for u in directory.users(structure, profiles=[profile]) if u.blocked]
        assert len(blocked) == count, f"{profile}: {len(blocked)} blocked"
    for name, state in expected.get("blocked_accounts", {}).items():
        user = users[name]
        actual = (
            ("individually" if user.blocked_individually else "with its profile")
            if user.blocked
            else "no"
        )
        assert actual == state, f"{name} blocked: {actual}"
    for name, present in expected.get("groups", {}).items():
        found = any(g.name == name for s in directory.structures() for g in directory.groups(s.id))
        assert found == present, f"group {name}: present={found}"
    for name, state in expected.get("accounts", {}).items():
        everyone = {
            u.full_name: u
            for s in directory.structures()
            for u in directory.users(s.id, include_removed=True)
        }
        user = everyone[name]
        actual = "deleted" if user.deleted else "pre_deleted" if user.pre_deleted else "live"
        assert actual == state, f"account {name}: {actual}"


def _check_entry(directory: Directory, entry: AuditEntry, wanted: dict[str, Any]) -> None:
    """`who` (exact), `targets` (how many, or the names of the accounts / groups), `school`."""
    where = f"audit {entry.action} {entry.outcome}"
    if "who" in wanted:
        assert entry.who == wanted["who"], f"{where}: who {entry.who}"
    if "school" in wanted:
        assert entry.structure_id == wanted["school"], f"{where}: school {entry.structure_id}"
    if isinstance(wanted.get("targets"), int):
        assert len(entry.targets) == wanted["targets"], f"{where}: targets {entry.targets}"
    elif "targets" in wanted:
        named = []
        for target in entry.targets:
            user, group = directory.user(target), directory.group(target)
            named.append(user.full_name if user else group.name if group else target)
        assert sorted(named) == sorted(wanted["targets"]), f"{where}: targets {named}"


def test_every_story_kept_off_the_ent_exists() -> None:
    names = {param.values[1]["name"] for param in _stories()}
    assert set(LOCAL_ONLY) <= names, set(LOCAL_ONLY) - names
