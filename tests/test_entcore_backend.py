"""DIRECTORY_BACKEND=entcore through the real core: a director's conversation acts on the
(fake) ENT with their own token; /connexion answers with the ENT's sign-in button;
/deconnexion forgets the tokens; the sign-in's callback links the chat and welcomes it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli.main import main
from bot.core.assistant import Assistant
from bot.core.job_runner import JobRunner
from bot.core.jobs import SendMessage
from bot.core.signin import signed_in
from bot.entcore.backend import EntServices, ent_backend
from bot.settings import Settings
from bot.storage.store import Store
from intents.kb import html_to_text
from tests.fake_entcore.seed import CLAIRE, JAURES, MARC
from tests.fake_entcore.support import RunningEnt, running_ent
from tests.support import Clock, Conversation, shared_kb_and_matcher

OPENED: list[EntServices] = []


@pytest.fixture
def ent() -> Iterator[RunningEnt]:
    with running_ent() as running:
        yield running
    while OPENED:
        OPENED.pop().directory.close()


def _over_the_ent(store: Store, ent: RunningEnt, token: str, clock: Clock) -> Assistant:
    settings = Settings(
        directory_backend="entcore", ent_url=ent.url, ent_access_token=token, ent_cache_seconds=0
    )
    services, link = ent_backend(settings, store)
    assert isinstance(services, EntServices) and link is None  # one token: no OAuth
    OPENED.append(services)
    kb, matcher = shared_kb_and_matcher()
    return Assistant(settings, services, kb, matcher, clock=clock)


def _parents_blocked(ent: RunningEnt) -> list[bool]:
    return [
        u.blocked
        for u in ent.state.users.values()
        if u.profile == "Relative" and JAURES in u.structures
    ]


def test_a_director_blocks_the_parents_on_the_ent(
    store: Store, ent: RunningEnt, clock: Clock
) -> None:
    assert not all(_parents_blocked(ent))
    assistant = _over_the_ent(store, ent, CLAIRE, clock)
    director = Conversation(assistant, "claire.martin", key="console:claire.martin")
    seen = director.say("bloque les parents")
    assert "Confirmer" in seen.buttons, seen.text
    done = director.press("Confirmer")
    assert "bloqu" in done.text
    assert all(_parents_blocked(ent))
    assert [(e.action, e.outcome) for e in store.audit.entries()][-1] == ("action.block", "done")


def test_a_director_sees_only_the_schools_of_their_token(
    store: Store, ent: RunningEnt, clock: Clock
) -> None:
    # Marc's token covers Pasteur only: Jean Jaurès does not exist for him. (A parent with
    # children in both schools is blocked in both: `blocked` belongs to the account.)
    def only_jaures() -> list[bool]:
        return [
            u.blocked
            for u in ent.state.users.values()
            if u.profile == "Relative" and u.structures == [JAURES]
        ]

    before = only_jaures()
    assistant = _over_the_ent(store, ent, MARC, clock)
    director = Conversation(assistant, "marc.dubois", key="console:marc.dubois")
    seen = director.say("bloque les parents")
    assert "École Pasteur" in seen.text and "Jean Jaurès" not in seen.text
    director.press("Confirmer")
    assert only_jaures() == before


class StubSignIn:
    """The ENT's sign-in as the core sees it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.unlinked: list[str] = []

    def start(self, speaker_key: str) -> str:
        self.started.append(speaker_key)
        return f"https://ent.example/auth/oauth2/auth?state=for-{speaker_key}"

    def unlink(self, speaker_key: str) -> bool:
        self.unlinked.append(speaker_key)
        return True


def test_connexion_opens_the_ent_sign_in_and_deconnexion_forgets_it(
    store: Store, clock: Clock
) -> None:
    kb, matcher = shared_kb_and_matcher()
    sign_in = StubSignIn()
    assistant = Assistant(Settings(), store, kb, matcher, clock=clock, sign_in=sign_in)
    person = Conversation(assistant, None, key="telegram:77")
    seen = person.say("/connexion")
    [button] = seen.outcome.replies[-1].buttons
    assert button.url == "https://ent.example/auth/oauth2/auth?state=for-telegram:77"
    assert "connectez-vous à l'ENT" in seen.text and sign_in.started == ["telegram:77"]
    assert "plus reliée" in person.say("/deconnexion").text or sign_in.unlinked
    assert sign_in.unlinked == ["telegram:77"]


def test_the_sign_in_callback_links_the_chat_and_welcomes_it(
    store: Store, assistant: Assistant, clock: Clock
) -> None:
    signed_in(assistant.engine, "telegram:88", "claire.martin", clock())
    assert store.accounts.login_for("telegram:88") == "claire.martin"
    sent = JobRunner(assistant.engine, clock, worker="test").run_due()
    [welcome] = [d for d in sent if isinstance(d, SendMessage)]
    assert welcome.speaker_key == "telegram:88"
    assert "compte ENT est relié" in html_to_text(welcome.reply.text)
    assert "directeur ou directrice" in html_to_text(welcome.reply.text)


def test_forget_erases_the_ent_tokens_and_sign_ins_under_way(
    store: Store, assistant: Assistant, clock: Clock
) -> None:
    from cryptography.fernet import Fernet

    from bot.storage.ent_tokens import EntTokens

    tokens = EntTokens(store, Fernet.generate_key().decode())
    key = "telegram:99"
    tokens.save(
        key,
        user_id="u-claire",
        login="claire.martin",
        access_token="a",
        access_expires_at=clock(),
        refresh_token="r",
        scope="userinfo directory",
        adml_structures=(JAURES,),
        now=clock(),
    )
    tokens.new_state(key, clock())
    person = Conversation(assistant, None, key=key)
    person.say("/oublier")
    person.press("Effacer mes données")
    assert tokens.get(key) is None
    store.purge(90, 365, clock())  # and no state of this speaker is left to purge
    with store.session() as session:
        from sqlalchemy import text

        assert session.execute(text("SELECT count(*) FROM ent_oauth_states")).scalar() == 0


def test_an_ent_that_does_not_answer_is_said_plainly(
    store: Store, ent: RunningEnt, clock: Clock
) -> None:
    assistant = _over_the_ent(store, ent, CLAIRE, clock)
    director = Conversation(assistant, "claire.martin", key="console:claire.martin")
    ent.fake.fail("GET /directory/structure/admin/list", times=10, status=500)
    seen = director.say("bloque les parents")
    assert "ENT" in seen.text and "technique" not in seen.text
    assert "Confirmer" not in seen.buttons


def test_the_console_acts_with_ent_access_token_as_its_user_only(
    ent: RunningEnt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ent.db'}")
    monkeypatch.setenv("DIRECTORY_BACKEND", "entcore")
    monkeypatch.setenv("ENT_URL", ent.url)
    monkeypatch.setenv("ENT_ACCESS_TOKEN", CLAIRE)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["chat", "--jsonl", "--as", "marc.dubois"]) == 1
    assert "ENT_ACCESS_TOKEN est le jeton de « claire.martin »" in capsys.readouterr().err
    line = json.dumps({"text": "où en est l'école pour la rentrée ?"}) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(line))
    assert main(["chat", "--jsonl", "--as", "claire.martin"]) == 0
    out = capsys.readouterr().out
    assert "Jean Jaurès" in out, out


def test_a_change_the_ent_refuses_is_told_and_audited_failed(
    store: Store, ent: RunningEnt, clock: Clock
) -> None:
    assistant = _over_the_ent(store, ent, CLAIRE, clock)
    director = Conversation(assistant, "claire.martin", key="console:claire.martin")
    assert "Confirmer" in director.say("bloque les parents").buttons
    before = _parents_blocked(ent)
    # The ENT refuses the block itself (its own rights check, after ours).
    ent.fake.fail("PUT /directory/structure/{id}/profile/block", times=5, status=403)
    seen = director.press("Confirmer")
    assert "n'a pas abouti" in seen.text and "ENT" in seen.text
    assert "C'est fait" not in seen.text and "rien n'a été modifié" not in seen.text
    assert _parents_blocked(ent) == before
    last = store.audit.entries()[-1]
    assert (last.action, last.outcome) == ("action.block", "failed")


def test_a_director_s_schools_are_the_scope_of_admin_local(
    store: Store, ent: RunningEnt, clock: Clock
) -> None:
    from bot.core.services import ACTING_FOR
    from tests.fake_entcore.seed import PASTEUR

    # Marc also teaches at Jean Jaurès, but administers Pasteur only.
    marc = ent.state.users["u-marc"]
    marc.structures = [PASTEUR, JAURES]
    assistant = _over_the_ent(store, ent, MARC, clock)
    acting = ACTING_FOR.set("console:marc.dubois")
    try:
        speaker = assistant.identities.speaker("console:marc.dubois", "marc.dubois", fresh=True)
    finally:
        ACTING_FOR.reset(acting)
    assert speaker.structures == (PASTEUR,)


def test_question_counts_are_written_on_the_ent_backend_too(
    store: Store, ent: RunningEnt, clock: Clock
) -> None:
    # Counted outside any message: no token to read the school with, the default queue.
    assistant = _over_the_ent(store, ent, CLAIRE, clock)
    Conversation(assistant, "claire.martin", key="console:claire.martin").say("bonjour")
    assistant.housekeeping(force=True)
    assert len(store.tickets.questions_since(None, clock() - timedelta(days=1))) == 1
