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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.settings import Settings
from bot.storage.audit import AuditEntry
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.domain import Directory
from tests.support import Clock, Conversation, Seen, shared_kb_and_matcher

HERE = Path(__file__).resolve().parent
STORIES = sorted((HERE / "conversations").glob("*.yaml"))


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


@pytest.mark.parametrize(("school", "story"), list(_stories()))
def test_story(world: tuple[Store, Clock], school: str, story: dict[str, Any]) -> None:
    store, clock = world
    import_school(store, DEMO_SCHOOL if school == "demo" else HERE / "schools" / school)
    kb, matcher = shared_kb_and_matcher()
    assistant = Assistant(Settings(), store, kb, matcher, clock=clock)
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
        _check_directory(store, story["directory"])


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


def _check_directory(store: Store, expected: dict[str, Any]) -> None:
    directory = store.directory
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
