"""Confirmation buttons taken off Telegram messages once they can no longer do anything, over
the real PTB stack and the fake Bot API (see test_telegram.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bot.channels.telegram.fake_calls import Call
from bot.core.assistant import Assistant
from bot.storage.store import Store
from tests.support import DIRECTOR, Clock
from tests.telegram_support import Bot, labels, running_bot


@pytest_asyncio.fixture
async def bot(store: Store, assistant: Assistant, clock: Clock) -> AsyncIterator[Bot]:
    async with running_bot(store, assistant, clock) as running:
        yield running


async def _director(bot: Bot, user_id: int) -> dict[str, Any]:
    director = bot.api.user(user_id, "Claire", "Martin")
    await bot.link(director, DIRECTOR)
    return director


async def _proposal(bot: Bot, director: dict[str, Any], text: str) -> Call:
    """Send an order and return the message that carries « Confirmer / Annuler »."""
    mark = bot.api.mark()
    update = bot.api.send_text(director, text)
    proposal = await bot.api.wait_call(
        "sendMessage", chat_id=director["id"], after=mark, where=lambda c: "Confirmer" in labels(c)
    )
    await bot.settle(update)
    return proposal


def _has_buttons(bot: Bot, message: Call) -> bool:
    stored = bot.api.messages[(message.result["chat"]["id"], message.result["message_id"])]
    return "reply_markup" in stored


@pytest.mark.asyncio
async def test_expired_confirmation_loses_its_buttons_at_the_next_message(bot: Bot) -> None:
    director = await _director(bot, 5101)
    proposal = await _proposal(bot, director, "bloque les parents")
    assert _has_buttons(bot, proposal)

    bot.clock.advance(minutes=11)
    mark = bot.api.mark()
    answer = await bot.ask(director, "comment activer mon compte educonnect")
    assert "a expiré sans confirmation" in answer.params["text"]
    cleared = await bot.api.wait_call("editMessageReplyMarkup", after=mark)
    assert cleared.params["chat_id"] == director["id"]
    assert cleared.params["message_id"] == proposal.result["message_id"]
    assert not _has_buttons(bot, proposal)
    with pytest.raises(LookupError):  # nothing left to press
        bot.api.press(director, proposal.result, "Confirmer")


@pytest.mark.asyncio
async def test_superseded_confirmation_loses_its_buttons_the_new_one_keeps_them(bot: Bot) -> None:
    director = await _director(bot, 5102)
    first = await _proposal(bot, director, "bloque les parents")
    mark = bot.api.mark()
    second = await _proposal(bot, director, "supprime le groupe APE 2021-2022")
    cleared = bot.api.calls_of("editMessageReplyMarkup", after=mark)
    assert [c.params["message_id"] for c in cleared] == [first.result["message_id"]]
    assert not _has_buttons(bot, first) and _has_buttons(bot, second)

    # Pressed, the new one is edited into the result: no separate removal is needed.
    mark = bot.api.mark()
    update = bot.api.press(director, second.result, "Confirmer")
    edit = await bot.api.wait_call("editMessageText", after=mark)
    await bot.settle(update)
    assert edit.params["message_id"] == second.result["message_id"]
    assert "C'est fait" in edit.params["text"]
    assert not bot.api.calls_of("editMessageReplyMarkup", after=mark)
    assert not _has_buttons(bot, second)


@pytest.mark.asyncio
async def test_typed_answer_takes_the_buttons_away(bot: Bot) -> None:
    director = await _director(bot, 5103)
    proposal = await _proposal(bot, director, "supprime le groupe APE 2021-2022")
    mark = bot.api.mark()
    answer = await bot.ask(director, "non")
    assert "rien n'a été modifié" in answer.params["text"]
    cleared = await bot.api.wait_call("editMessageReplyMarkup", after=mark)
    assert cleared.params["message_id"] == proposal.result["message_id"]
    assert not _has_buttons(bot, proposal)


@pytest.mark.asyncio
async def test_a_message_already_gone_does_not_stop_the_answer(bot: Bot) -> None:
    director = await _director(bot, 5104)
    await _proposal(bot, director, "bloque les parents")
    bot.clock.advance(minutes=11)
    bot.api.fail_next("editMessageReplyMarkup", 400, "Bad Request: message to edit not found")
    mark = bot.api.mark()
    bot.api.send_text(director, "comment activer mon compte educonnect")
    await bot.api.wait_call(
        "sendMessage", after=mark, where=lambda c: "FranceConnect" in c.params["text"]
    )
