"""The ticker of scheduled jobs: PTB's JobQueue calls it every JOB_TICK_SECONDS; it claims and
runs the due jobs off the event loop (bot/core/job_runner.py) and performs what they ask of
Telegram: send a message, edit one, take its buttons away.

Every instance ticks: the claims in the database make each job run on one of them only. A
failure is logged and the next tick goes on; nothing here ever stops the ticker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Bot
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackContext

from bot.channels.telegram.adapter import _keyboard, _message_of
from bot.channels.telegram.html import split_html
from bot.core.job_runner import JobRunner
from bot.core.jobs import Delivery, EditMessage, SendMessage

log = logging.getLogger(__name__)

T = TypeVar("T")
# Runs a blocking call off the event loop (the adapter's core threads, or a fresh thread).
InWorker = Callable[[Callable[[], Any]], Awaitable[Any]]

TELEGRAM_PREFIX = "telegram:"


def chat_of(speaker_key: str) -> int | None:
    """The private chat of a Telegram speaker (a person's chat id is their user id)."""
    if not speaker_key.startswith(TELEGRAM_PREFIX):
        return None
    try:
        return int(speaker_key[len(TELEGRAM_PREFIX) :])
    except ValueError:
        return None


async def _to_thread(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


class Ticker:
    """One instance's ticker: `await ticker(context)` is the JobQueue callback."""

    def __init__(
        self,
        runner: JobRunner,
        in_worker: InWorker | None = None,
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        self.runner = runner
        self.in_worker: InWorker = in_worker or _to_thread
        # The core's periodic chores (question counts, phrasings taught elsewhere), so that an
        # instance that receives no message still does them.
        self.housekeeping = housekeeping
        # One tick at a time in this instance: a slow tick is not overlapped by the next.
        self._busy = asyncio.Lock()

    async def __call__(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        """The JobQueue callback."""
        await self.tick(context.bot)

    async def tick(self, bot: Bot) -> int:
        """Run the due jobs and perform their deliveries; how many deliveries were done."""
        if self._busy.locked():
            return 0
        async with self._busy:
            try:
                if self.housekeeping is not None:
                    await self.in_worker(self.housekeeping)
                deliveries: list[Delivery] = await self.in_worker(self.runner.run_due)
            except Exception:  # the database may be away for a moment: next tick
                log.exception("scheduled jobs could not be run this tick")
                return 0
            done = 0
            for delivery in deliveries:
                try:
                    await perform(bot, delivery)
                    done += 1
                except Exception:  # one failed send must not cost the others theirs
                    log.exception("a scheduled job's message could not be delivered")
            return done


async def perform(bot: Bot, delivery: Delivery) -> None:
    """Carry out one delivery through the Bot API."""
    if isinstance(delivery, SendMessage):
        chat = chat_of(delivery.speaker_key)
        if chat is None:
            log.info("scheduled message for a non-Telegram speaker dropped")
            return
        chunks = split_html(delivery.reply.text)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            markup = _keyboard(delivery.reply.buttons) if last else None
            await bot.send_message(chat, chunk, reply_markup=markup)
        return
    await _edit(bot, delivery)


async def _edit(bot: Bot, delivery: EditMessage) -> None:
    """Replace the message's text (and drop its buttons), or only drop its buttons."""
    where = _message_of(delivery.ref)
    if where is None:
        return
    chat, message = where
    if delivery.text is not None:
        try:
            # Edited without reply_markup: Telegram drops the inline keyboard with it.
            await bot.edit_message_text(delivery.text, chat_id=chat, message_id=message)
            return
        except BadRequest as error:
            log.info("could not edit message %s: %s", delivery.ref, error.message)
    try:
        await bot.edit_message_reply_markup(chat, message, reply_markup=None)
    except TelegramError as error:
        # Deleted by the user, or already without buttons: nothing left to press.
        log.info("could not take the buttons off message %s: %s", delivery.ref, error)
