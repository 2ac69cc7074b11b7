"""Every path from a ticket to an answered asker, through the real PTB stack against the fake
Bot API: the asker's message, the eRun's notice, /triage and its buttons, and the answer
arriving in the asker's chat; and a phrasing taught on one instance understood by another."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.channels.telegram.fake_calls import Call
from bot.core.assistant import Assistant
from bot.settings import Settings
from bot.storage.store import Store
from tests.support import Clock, Conversation, shared_kb_and_matcher
from tests.telegram_support import Bot, labels
from tests.test_jobs_telegram import CountingRunner, ticking_bot

OUT_OF_SCOPE = "où trouver le menu de la cantine de cette semaine ?"
TAUGHT = "c'est quoi le sésame de chacun pour entrer sur l'espace numérique"


async def _press(bot: Bot, user: dict[str, Any], shown: Call, label: str) -> Call:
    """Press a button of a message the bot sent; the next message or edit in that chat."""
    mark = bot.api.mark()
    message = bot.api.messages[(user["id"], shown.result["message_id"])]
    bot.api.press(user, message, label)

    def answer(call: Call) -> bool:
        return call.method in ("sendMessage", "editMessageText")

    return await bot.api.wait_call(
        "sendMessage", chat_id=user["id"], after=mark, where=answer, timeout=5
    )


async def _to_group(bot: Bot, erun: dict[str, Any]) -> Call:
    """/triage, then the first group: the message with the four actions."""
    listed = await bot.ask(erun, "/triage")
    assert "question" in listed.params["text"]
    return await _press(bot, erun, listed, labels(listed)[0])


async def _asker_gets(bot: Bot, asker: dict[str, Any], mark: int) -> str:
    """The text the asker receives from the eRun (sent by the job, at once)."""
    got = await bot.api.wait_call(
        "sendMessage",
        chat_id=asker["id"],
        after=mark,
        where=lambda c: "eRun" in c.params["text"] and "votre question" in c.params["text"],
    )
    return str(got.params["text"])


@pytest.mark.asyncio
async def test_out_of_scope_then_reply(store: Store, assistant: Assistant, clock: Clock) -> None:
    runner = CountingRunner(assistant)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        asker, erun = bot.api.user(5001, "Sofia"), bot.api.user(5002, "Eric")
        await bot.link(erun, "erun.lille1")
        told = await bot.ask(asker, OUT_OF_SCOPE)
        assert "Je transmets votre question" in told.params["text"]
        # The eRun's chat is told within the minute, once, with the question.
        clock.advance(minutes=1)
        notice = await bot.api.wait_call(
            "sendMessage", chat_id=erun["id"], where=lambda c: "🔔" in c.params["text"]
        )
        assert "cantine" in notice.params["text"] and "Trier les questions" in labels(notice)
        group = await _press(bot, erun, notice, "Trier les questions")
        group = await _press(bot, erun, group, labels(group)[0])
        assert labels(group) == ["Répondre", "C'est la FAQ…", "Nouvelle réponse", "Clore"]
        await _press(bot, erun, group, "Répondre")
        mark = bot.api.mark()
        done = await bot.ask(erun, "Le menu est sur le blog de l'école, rubrique cantine.")
        assert "Réponse envoyée : 1 personne" in done.params["text"]
        received = await _asker_gets(bot, asker, mark)
        assert "rubrique cantine" in received and "menu de la cantine" in received


@pytest.mark.asyncio
async def test_thumbs_down_then_new_answer(
    store: Store, assistant: Assistant, clock: Clock
) -> None:
    runner = CountingRunner(assistant)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        asker, erun = bot.api.user(5101, "Paul"), bot.api.user(5102, "Eric")
        await bot.link(erun, "erun.lille1")
        answer = await bot.ask(asker, "j'ai perdu mon mot de passe educonnect")
        assert labels(answer)[-2:] == ["👍", "👎"]
        told = await _press(bot, asker, answer, "👎")
        assert "Je transmets" in told.params["text"]
        group = await _to_group(bot, erun)
        await _press(bot, erun, group, "Nouvelle réponse")
        mark = bot.api.mark()
        done = await bot.ask(erun, "Passez par « Mot de passe oublié » sur la page EduConnect.")
        assert "brouillon de fiche" in done.params["text"]
        assert "Mot de passe oublié" in await _asker_gets(bot, asker, mark)


@pytest.mark.asyncio
async def test_asking_for_a_person_then_it_is_the_faq(
    store: Store, assistant: Assistant, clock: Clock
) -> None:
    runner = CountingRunner(assistant)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        asker, erun = bot.api.user(5201, "Inès"), bot.api.user(5202, "Eric")
        await bot.link(erun, "erun.lille1")
        asked = await bot.ask(asker, "/erun")
        assert "Quelle est votre question ?" in asked.params["text"]
        told = await bot.ask(asker, TAUGHT)
        assert "Je transmets" in told.params["text"]
        group = await _to_group(bot, erun)
        topics = await _press(bot, erun, group, "C'est la FAQ…")
        title = assistant.kb.title("accounts.identifiers")
        if title not in labels(topics):
            topics = await bot.ask(erun, "identifiants")
        mark = bot.api.mark()
        done = await _press(bot, erun, topics, title)
        assert "J'ai appris 1 formulation" in done.params["text"]
        received = await _asker_gets(bot, asker, mark)
        assert "a répondu à votre question" in received
        # The next person asking the same is answered by the assistant itself.
        again = await bot.ask(bot.api.user(5203, "Léa"), TAUGHT)
        assert title.split()[0] in again.params["text"] or "identifiant" in again.params["text"]


@pytest.mark.asyncio
async def test_none_of_the_suggestions_then_close(
    store: Store, assistant: Assistant, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from intents.nlu.understanding import Understanding

    def close_call(*_args: object, **_kwargs: object) -> Understanding:
        choices = ["educonnect.activate", "educonnect.switch"]
        return Understanding("educonnect.activate", 0.6, {}, [], None, True, choices)

    runner = CountingRunner(assistant)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        asker, erun = bot.api.user(5301, "Noé"), bot.api.user(5302, "Eric")
        await bot.link(erun, "erun.lille1")
        monkeypatch.setattr(assistant.understander, "understand", close_call)
        offered = await bot.ask(asker, "educonnect pour mon beau fils")
        monkeypatch.undo()
        told = await _press(bot, asker, offered, "Aucune de ces réponses")
        assert "Je transmets" in told.params["text"]
        group = await _to_group(bot, erun)
        mark = bot.api.mark()
        closed = await _press(bot, erun, group, "Clore")
        assert "Clos : 1 question" in closed.params["text"]
        await runner.ticks_after(2)
        assert bot.api.calls_of("sendMessage", chat_id=asker["id"], after=mark) == []


@pytest.mark.asyncio
async def test_a_parent_and_a_director_cannot_open_the_queue(
    store: Store, assistant: Assistant, clock: Clock
) -> None:
    runner = CountingRunner(assistant)
    async with ticking_bot(store, assistant, clock, runner) as bot:
        asker, director = bot.api.user(5401, "Zoé"), bot.api.user(5402, "Claire")
        await bot.ask(asker, OUT_OF_SCOPE)
        await bot.link(director, "claire.martin")
        for user in (asker, director):
            refused = await bot.ask(user, "/triage")
            assert "réservée aux eRun" in refused.params["text"]
            assert "cantine" not in refused.params["text"]


def test_a_phrasing_taught_on_one_instance_is_understood_by_another(
    store: Store, assistant: Assistant, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two instances sharing the database (the second built before the teaching).
    kb, matcher = shared_kb_and_matcher()  # the taught phrasings are each instance's own
    second = Assistant(Settings(), store, kb, matcher, clock=clock)
    before = Conversation(second, None, key="test:before").say(TAUGHT)
    assert before.outcome.intent != "accounts.identifiers"
    Conversation(assistant, None, key="test:asker").say(TAUGHT)
    erun = Conversation(assistant, "erun.lille1")
    erun.say("/triage")
    erun.press(erun.last.replies[0].buttons[0].label)  # type: ignore[union-attr]
    erun.press("C'est la FAQ…")
    erun.say("identifiants")
    erun.press(assistant.kb.title("accounts.identifiers"))
    # The other instance looks for taught phrasings every HOUSEKEEPING_SECONDS (20 s): its
    # clock is moved 21 s on rather than waiting.
    moved = time.monotonic() + 21
    monkeypatch.setattr("bot.core.assistant.time.monotonic", lambda: moved)
    after = Conversation(second, None, key="test:after").say(TAUGHT)
    assert after.outcome.intent == "accounts.identifiers"
