"""The Telegram front end over the real PTB stack: fake Bot API server, long polling, handlers,
the real core, replies over HTTP. Nothing of ours is mocked; waits are on recorded calls."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.channels.telegram.app import build_application, polling_session
from bot.channels.telegram.fake_bot_api import FAKE_TOKEN, FakeBotApi
from bot.channels.telegram.flow import SLOW_DOWN
from bot.channels.telegram.html import split_html
from bot.core.assistant import Assistant
from bot.core.messages import APOLOGY, Button, Menu, Outcome, Reply
from bot.storage.store import Store
from tests.support import DEMO, DIRECTOR, Clock
from tests.telegram_support import (
    Bot,
    bot_settings,
    keyboard,
    labels,
    menu_of,
    running_bot,
    running_cli,
    start_cli,
    stop_with_sigterm,
    table_menu,
)

READS_TEXT = "Je ne lis que les messages écrits"
ADAPTER_LOG = "bot.channels.telegram.adapter"


@pytest_asyncio.fixture
async def bot(store: Store, assistant: Assistant, clock: Clock) -> AsyncIterator[Bot]:
    async with running_bot(store, assistant, clock) as running:
        yield running


def _relatives_blocked(store: Store) -> list[bool]:
    return [user.blocked for user in store.directory.users(DEMO, profiles=["Relative"])]


# -- parents ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_public_menu_is_set_at_start(bot: Bot) -> None:
    call = await bot.api.wait_call("setMyCommands")
    assert call.params.get("scope", {"type": "default"}) == {"type": "default"}
    assert menu_of(call.params["commands"]) == table_menu(Menu.PUBLIC)
    assert {"start", "aide", "connexion", "deconnexion", "annuler"} <= {
        c["command"] for c in call.params["commands"]
    }
    assert all(c["description"] for c in call.params["commands"])


@pytest.mark.asyncio
async def test_parent_question_is_answered_in_html_without_preview(bot: Bot) -> None:
    parent = bot.api.user(1001, "Sonia")
    reply = await bot.ask(parent, "comment activer mon compte educonnect")
    assert "FranceConnect" in reply.params["text"]
    assert reply.params["parse_mode"] == "HTML"
    assert reply.params["link_preview_options"] == {"is_disabled": True}
    # Buttons carry the core's opaque ids, within Telegram's 64 bytes.
    for row in keyboard(reply):
        for button in row:
            assert 0 < len(button["callback_data"].encode()) <= 64


@pytest.mark.asyncio
async def test_deep_link_start_payload_reaches_the_core(bot: Bot) -> None:
    parent = bot.api.user(1002)
    reply = await bot.ask(parent, "/start educonnect")
    assert "FranceConnect" in reply.params["text"]


@pytest.mark.asyncio
async def test_command_addressed_with_the_bot_suffix(bot: Bot) -> None:
    parent = bot.api.user(1003)
    plain = await bot.ask(parent, "/aide")
    suffixed = await bot.ask(parent, f"/aide@{bot.username}")
    assert suffixed.params["text"] == plain.params["text"]


@pytest.mark.asyncio
async def test_pressing_a_see_also_button_answers_that_topic(bot: Bot) -> None:
    parent = bot.api.user(1004)
    reply = await bot.ask(parent, "comment activer mon compte educonnect")
    label = labels(reply)[0]
    mark = bot.api.mark()
    bot.api.press(parent, reply.result, label)
    answer = await bot.api.wait_call("answerCallbackQuery", after=mark)
    sent = await bot.api.wait_call("sendMessage", chat_id=parent["id"], after=mark)
    assert answer.params["callback_query_id"]
    assert sent.params["text"]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["photo", "sticker", "voice", "document", "location"])
async def test_non_text_message_gets_the_polite_reply(bot: Bot, kind: str) -> None:
    parent = bot.api.user(1005)
    mark = bot.api.mark()
    bot.api.send_media(parent, kind)
    reply = await bot.api.wait_call("sendMessage", chat_id=parent["id"], after=mark)
    assert READS_TEXT in reply.params["text"]


@pytest.mark.asyncio
async def test_edited_message_gets_the_polite_reply(bot: Bot) -> None:
    parent = bot.api.user(1006)
    original = bot.api.send_text(parent, "bonjour")
    await bot.api.wait_call("sendMessage", chat_id=parent["id"])
    mark = bot.api.mark()
    bot.api.edit_text(original, "bonjour, comment activer educonnect ?")
    reply = await bot.api.wait_call("sendMessage", chat_id=parent["id"], after=mark)
    assert READS_TEXT in reply.params["text"]


# -- the director ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_director_links_blocks_parents_and_confirms(bot: Bot) -> None:
    director = bot.api.user(4242, "Claire", "Martin")
    code = bot.store.accounts.invite(DIRECTOR, bot.clock.now)

    mark = bot.api.mark()
    welcome = await bot.ask(director, f"/connexion {code}")
    assert "Bienvenue" in welcome.params["text"]
    menu = await bot.api.wait_call("setMyCommands", after=mark)
    assert menu.params["scope"] == {"type": "chat", "chat_id": director["id"]}
    assert menu_of(menu.params["commands"]) == table_menu(Menu.DIRECTOR)

    before = _relatives_blocked(bot.store)
    assert not all(before)
    mark = bot.api.mark()
    bot.api.send_text(director, "bloque les parents")
    proposal = await bot.api.wait_call(
        "sendMessage",
        chat_id=director["id"],
        after=mark,
        where=lambda c: "Confirmer" in labels(c),
    )
    assert labels(proposal) == ["Confirmer", "Annuler"]
    assert _relatives_blocked(bot.store) == before  # nothing happens before confirmation

    # Someone else presses it (a forged press: the core owns the button ids): refused.
    intruder = bot.api.user(666, "Intrus")
    mark = bot.api.mark()
    bot.api.press(intruder, proposal.result, "Confirmer")
    await bot.api.wait_call("answerCallbackQuery", after=mark)
    refusal = await bot.api.wait_call("sendMessage", after=mark)
    assert "quelqu'un d'autre" in refusal.params["text"]
    assert not bot.api.calls_of("editMessageText", after=mark)
    assert _relatives_blocked(bot.store) == before

    mark = bot.api.mark()
    bot.api.press(director, proposal.result, "Confirmer")
    await bot.api.wait_call("answerCallbackQuery", after=mark)
    edit = await bot.api.wait_call("editMessageText", after=mark)
    assert edit.params["chat_id"] == director["id"]
    assert edit.params["message_id"] == proposal.result["message_id"]
    assert "reply_markup" not in edit.params  # Telegram then removes the buttons
    assert "reply_markup" not in bot.api.messages[(director["id"], edit.params["message_id"])]
    assert "bloqu" in edit.params["text"]
    assert all(_relatives_blocked(bot.store))
    # Then, in a message of its own, the offer of a reminder to unblock them.
    offer = await bot.api.wait_call("sendMessage", after=mark)
    assert "rappel pour les débloquer" in offer.params["text"]
    # A second press on the edited message finds no button to press.
    with pytest.raises(LookupError):
        bot.api.press(director, proposal.result, "Confirmer")

    mark = bot.api.mark()
    bye = await bot.ask(director, "/deconnexion")
    assert "plus relié" in bye.params["text"]
    removed = await bot.api.wait_call("deleteMyCommands", after=mark)
    assert removed.params["scope"] == {"type": "chat", "chat_id": director["id"]}


@pytest.mark.asyncio
async def test_edit_refused_by_telegram_falls_back_to_a_new_message(bot: Bot) -> None:
    director = bot.api.user(4243, "Claire")
    code = bot.store.accounts.invite(DIRECTOR, bot.clock.now)
    await bot.ask(director, f"/connexion {code}")
    mark = bot.api.mark()
    bot.api.send_text(director, "bloque les parents")
    proposal = await bot.api.wait_call(
        "sendMessage", after=mark, where=lambda c: "Annuler" in labels(c)
    )
    bot.api.fail_next("editMessageText", 400, "Bad Request: message can't be edited")
    mark = bot.api.mark()
    bot.api.press(director, proposal.result, "Annuler")
    sent = await bot.api.wait_call("sendMessage", chat_id=director["id"], after=mark)
    assert "annulé" in sent.params["text"]
    cleared = await bot.api.wait_call("editMessageReplyMarkup", after=mark)
    assert cleared.params["message_id"] == proposal.result["message_id"]


# -- group chats -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_group_chat_answers_only_when_addressed(bot: Bot) -> None:
    group = bot.api.group_chat()
    parent = bot.api.user(2001, "Nadia")

    chatter = bot.api.send_text(parent, "comment activer mon compte educonnect", chat=group)
    await bot.settle(chatter)
    assert not bot.api.calls_of("sendMessage", chat_id=group["id"])

    mark = bot.api.mark()
    question = bot.api.send_text(
        parent, f"@{bot.username} comment activer mon compte educonnect", chat=group
    )
    reply = await bot.api.wait_call("sendMessage", chat_id=group["id"], after=mark)
    assert "FranceConnect" in reply.params["text"]
    # In a group the answer quotes the question, so everyone sees whom it is for.
    assert reply.params["reply_parameters"]["message_id"] == question["message"]["message_id"]

    follow_up = await bot.ask(
        parent, "et si j'ai oublié mon mot de passe ?", chat=group, reply_to=reply.result
    )
    assert follow_up.params["text"]


@pytest.mark.asyncio
async def test_director_action_in_a_group_is_refused(bot: Bot) -> None:
    director = bot.api.user(4244, "Claire")
    code = bot.store.accounts.invite(DIRECTOR, bot.clock.now)
    await bot.ask(director, f"/connexion {code}")
    before = _relatives_blocked(bot.store)

    group = bot.api.group_chat(-1009876543210, "Équipe école")
    reply = await bot.ask(director, f"@{bot.username} bloque les parents", chat=group)
    assert "message privé" in reply.params["text"]
    assert "Confirmer" not in labels(reply)
    assert _relatives_blocked(bot.store) == before


# -- limits and failures -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_flood_guard_answers_once_then_drops_until_the_window_passes(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled: list[str] = []
    real_handle = bot.assistant.handle

    def counting_handle(incoming: Any, **kwargs: Any) -> Outcome:
        handled.append(incoming.text)
        return real_handle(incoming, **kwargs)

    monkeypatch.setattr(bot.assistant, "handle", counting_handle)
    parent = bot.api.user(3001)
    mark = bot.api.mark()
    burst = [bot.api.send_text(parent, f"bonjour {i}") for i in range(25)]
    sent = await bot.api.wait_calls("sendMessage", 21, chat_id=parent["id"], after=mark)
    await bot.settle(burst[-1])

    texts = [call.params["text"] for call in bot.api.calls_of("sendMessage", after=mark)]
    assert len(texts) == 21
    assert texts[20] == SLOW_DOWN
    assert SLOW_DOWN not in texts[:20]
    assert handled == [f"bonjour {i}" for i in range(20)]  # 21st to 25th never reach the core
    assert sent[20].params["text"].startswith("Doucement")

    bot.flood_clock.now += 10.5
    reply = await bot.ask(parent, "bonjour")
    assert reply.params["text"] != SLOW_DOWN
    assert handled[-1] == "bonjour"


@pytest.mark.asyncio
async def test_error_handler_apologises_and_the_bot_keeps_running(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(incoming: Any, **kwargs: Any) -> Outcome:
        raise RuntimeError("the core broke")

    parent = bot.api.user(3002)
    with monkeypatch.context() as patch:
        patch.setattr(bot.assistant, "handle", broken)
        with caplog.at_level(logging.ERROR, logger=ADAPTER_LOG):
            mark = bot.api.mark()
            update = bot.api.send_text(parent, "bonjour")
            apology = await bot.api.wait_call("sendMessage", chat_id=parent["id"], after=mark)
    assert apology.params["text"] == APOLOGY
    failure = [r for r in caplog.records if r.name == ADAPTER_LOG]
    assert failure and f"update {update['update_id']} failed" in failure[0].getMessage()
    assert failure[0].exc_info and "the core broke" in str(failure[0].exc_info[1])

    reply = await bot.ask(parent, "comment activer mon compte educonnect")
    assert "FranceConnect" in reply.params["text"]


@pytest.mark.asyncio
async def test_long_reply_is_split_with_buttons_on_the_last_chunk(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    paragraph = "<b>Étape</b> : " + "ouvrez la console d'administration de l'ENT. " * 20
    long_text = "\n\n".join(f"{i}. {paragraph}" for i in range(12))
    assert len(long_text) > 2 * 4096

    def long_answer(incoming: Any, **kwargs: Any) -> Outcome:
        return Outcome([Reply(long_text, [Button("Voir aussi", "tag.abc")])])

    monkeypatch.setattr(bot.assistant, "handle", long_answer)
    parent = bot.api.user(3003)
    mark = bot.api.mark()
    update = bot.api.send_text(parent, "tout sur la rentrée")
    await bot.settle(update)
    sent = bot.api.calls_of("sendMessage", chat_id=parent["id"], after=mark)
    assert len(sent) == 3
    assert all(len(call.params["text"]) <= 4096 for call in sent)
    assert [bool(keyboard(call)) for call in sent] == [False, False, True]
    # Cut between paragraphs: each chunk starts with a numbered step, none is lost.
    starts = [int(call.params["text"].split(".", 1)[0]) for call in sent]
    assert starts[0] == 0 and starts == sorted(starts)
    assert " ".join(call.params["text"] for call in sent).count("<b>Étape</b>") == 12


@pytest.mark.asyncio
async def test_pending_updates_are_processed_before_stopping(
    store: Store, assistant: Assistant
) -> None:
    async with FakeBotApi() as api:
        application = build_application(bot_settings(api), assistant)
        parents = [api.user(5000 + i) for i in range(5)]
        async with polling_session(application):
            updates = [api.send_text(parent, "bonjour") for parent in parents]
            await api.wait_confirmed(updates[-1]["update_id"])
            # Leaving the block stops like SIGTERM does: updater first, then the application.
        answered = {call.chat_id for call in api.calls_of("sendMessage")}
        assert answered == {parent["id"] for parent in parents}


# -- HTML splitting ------------------------------------------------------------------------------


def _balanced(chunk: str) -> bool:
    stack: list[str] = []
    for closing, name in re.findall(r"<(/?)([a-z-]+)[^>]*>", chunk):
        if closing:
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack


def test_split_html_keeps_short_text_whole() -> None:
    assert split_html("<b>Bonjour</b>") == ["<b>Bonjour</b>"]
    assert split_html("   ") == []


def test_split_html_cuts_at_paragraphs_first() -> None:
    paragraphs = [f"Paragraphe {i} " + "mot " * 20 for i in range(10)]
    chunks = split_html("\n\n".join(paragraphs), limit=300)
    assert all(len(chunk) <= 300 for chunk in chunks)
    assert all(chunk.startswith("Paragraphe") for chunk in chunks)
    assert [chunk.count("Paragraphe") for chunk in chunks] == [3, 3, 3, 1]
    assert " ".join(chunks).split() == " ".join(paragraphs).split()


def test_split_html_then_lines_then_words_then_hard_cut() -> None:
    lines = "\n".join("ligne " + "x" * 50 for _ in range(10))
    chunks = split_html(lines, limit=130)
    assert all(chunk.startswith("ligne") and len(chunk) <= 130 for chunk in chunks)

    words = " ".join(["mot"] * 100)
    chunks = split_html(words, limit=50)
    assert all(len(chunk) <= 50 and not chunk.endswith(" ") for chunk in chunks)
    assert " ".join(chunks) == words

    word = "a" * 250
    chunks = split_html(word, limit=100)
    assert "".join(chunks) == word and all(len(chunk) <= 100 for chunk in chunks)


def test_split_html_keeps_tags_balanced_and_never_cuts_a_tag_or_entity() -> None:
    text = (
        '<b>Titre</b>\n<blockquote>Début <a href="https://educonnect.education.gouv.fr/">'
        + "lien &amp; texte " * 60
        + "</a> fin</blockquote>\n\n<i>"
        + "italique &lt;3 " * 50
        + "</i>"
    )
    chunks = split_html(text, limit=200)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk) <= 200
        assert _balanced(chunk), chunk
        assert not re.search(r"&[#\w]*$|<[^>]*$", chunk)  # no entity or tag cut at the end
        assert not re.search(r"^[#\w]*;", chunk.split(">")[-1] if ">" in chunk else chunk)
    # Tags open at a cut are reopened: every piece of the link is still a link.
    assert all(
        "educonnect" in chunk for chunk in chunks if "lien" in chunk and "italique" not in chunk
    )


def test_split_html_counts_utf16_units() -> None:
    text = "🙂" * 100  # 200 UTF-16 code units
    chunks = split_html(text, limit=50)
    assert all(len(chunk.encode("utf-16-le")) // 2 <= 50 for chunk in chunks)
    assert "".join(chunks) == text


# -- start-up ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("token", "reason"), [(None, "TELEGRAM_TOKEN manquant"), ("abc", "TELEGRAM_TOKEN mal formé")]
)
async def test_missing_or_malformed_token_stops_with_one_french_line(
    tmp_path: Path, token: str | None, reason: str
) -> None:
    env = {"TELEGRAM_TOKEN": token} if token else {}
    process = await start_cli(tmp_path, "run", **env)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(reason), lines


@pytest.mark.asyncio
async def test_token_refused_by_telegram_stops_with_one_french_line(tmp_path: Path) -> None:
    async with FakeBotApi() as api:
        other_token = "987654321:" + "B" * 35  # well formed, unknown to this server
        process = await start_cli(
            tmp_path, "run", TELEGRAM_TOKEN=other_token, TELEGRAM_API_URL=api.base_url
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("TELEGRAM_TOKEN refusé"), lines


@pytest.mark.asyncio
async def test_run_answers_then_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    async with (
        FakeBotApi() as api,
        running_cli(
            tmp_path, "run", TELEGRAM_TOKEN=FAKE_TOKEN, TELEGRAM_API_URL=api.base_url
        ) as process,
    ):
        await api.wait_call("getUpdates", timeout=60)
        parent = api.user(7001)
        api.send_text(parent, "comment activer mon compte educonnect")
        reply = await api.wait_call("sendMessage", chat_id=parent["id"], timeout=30)
        assert "FranceConnect" in reply.params["text"]
        stderr = await stop_with_sigterm(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
