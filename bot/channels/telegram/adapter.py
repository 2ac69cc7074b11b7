"""The PTB callbacks: each turns an update into an `Incoming`, asks the core, and turns the
`Outcome` back into Bot API calls (send, edit, menu).

The adapter says nothing of its own except the flood guard's line and the core's apology
when a handler fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.channels.telegram.flow import SLOW_DOWN, FloodGuard
from bot.channels.telegram.html import split_html, utf16_len
from bot.channels.telegram.incoming import attachment_kind, clean_text, incoming_of, sender_id
from bot.channels.telegram.menus import apply_menu
from bot.core.messages import APOLOGY, Button, Incoming, Outcome, Reply
from bot.logs import log_context

log = logging.getLogger(__name__)

T = TypeVar("T")
# What is told about every core call: the message, the answer, and the seconds it took.
Observer = Callable[[Incoming, Outcome, float], None]

# Buttons whose labels are all this short share a row (Confirmer | Annuler).
SHORT_LABEL = 20


class Core(Protocol):
    """What the adapter needs from `bot.core.Assistant`."""

    def handle(self, incoming: Incoming) -> Outcome:
        """The core's answer to one message."""

    def delivered(self, speaker_key: str, key: str, message: str) -> None:
        """Which message carried the reply marked `key` (see Reply.key)."""


def message_ref(chat_id: int, message_id: int) -> str:
    """The core's opaque reference of one of our messages."""
    return f"{chat_id}:{message_id}"


def _message_of(ref: str) -> tuple[int, int] | None:
    """(chat id, message id) of a reference made by message_ref."""
    chat, _, message = ref.partition(":")
    try:
        return int(chat), int(message)
    except ValueError:
        return None


def _keyboard(buttons: list[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    width = 2 if all(len(button.label) <= SHORT_LABEL for button in buttons) else 1
    keys = [
        InlineKeyboardButton(button.label, url=button.url)
        if button.url
        else InlineKeyboardButton(button.label, callback_data=button.id)
        for button in buttons
    ]
    return InlineKeyboardMarkup([keys[i : i + width] for i in range(0, len(keys), width)])


@dataclass(frozen=True)
class _Destination:
    """Where replies go: the chat, its forum topic, and the message answered in a group."""

    chat_id: int
    thread_id: int | None = None
    quote: int | None = None

    @classmethod
    def of(cls, message: MaybeInaccessibleMessage, *, quote: bool) -> _Destination:
        """Where the answer to that message goes; `quote` it in a group."""
        # An InaccessibleMessage (pressed button on a message older than 48 h) has no topic.
        topic = getattr(message, "is_topic_message", False)
        thread = getattr(message, "message_thread_id", None) if topic else None
        # In a group several people talk: quoting says whom the answer is for.
        in_group = message.chat.type != ChatType.PRIVATE
        return cls(message.chat.id, thread, message.message_id if quote and in_group else None)


Handler = TypeVar("Handler", bound=Callable[..., Coroutine[Any, Any, None]])


def _in_log_context(handler: Handler) -> Handler:
    """The handler with every log record it emits (and the core's, in its worker thread)
    carrying the update id and the sender's hashed id."""

    @functools.wraps(handler)
    async def in_context(
        self: TelegramAdapter, update: Any, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        if not isinstance(update, Update):  # a polling loop's network error: no update
            return await handler(self, update, context)
        with log_context(update_id=update.update_id, user_id=sender_id(update)):
            return await handler(self, update, context)

    return cast(Handler, in_context)


class TelegramAdapter:
    """Holds the core, the flood guard and the core's worker threads; its methods are the PTB
    callbacks."""

    def __init__(
        self,
        assistant: Core,
        flood_guard: FloodGuard,
        *,
        workers: int = 1,
        observer: Observer | None = None,
    ) -> None:
        self.assistant = assistant
        self.flood_guard = flood_guard
        self.observer = observer
        # The core is synchronous (SQLAlchemy): on the event loop, one slow query would stall
        # every conversation of the instance. Each call runs whole in one worker thread, where
        # the store keeps its transaction (thread-local); `workers` bounds the database
        # connections the core holds at once.
        self._workers = ThreadPoolExecutor(max(1, workers), thread_name_prefix="core")
        # Set by the application (the ticker's tick): runs the jobs a message made due.
        self.run_due_jobs: Callable[[Bot], Coroutine[Any, Any, int]] | None = None

    async def shutdown(self, *_: Any) -> None:
        """Let the running core calls finish and stop the worker threads (post_shutdown)."""
        await asyncio.get_running_loop().run_in_executor(None, self._workers.shutdown)

    # -- handlers ----------------------------------------------------------------------------

    @_in_log_context
    async def guard_floods(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stop a user who sends too much, before any other handler runs."""
        sender = sender_id(update)
        if sender is None:
            return
        verdict = self.flood_guard.check(sender)
        if verdict == "pass":
            return
        if update.callback_query is not None:
            # The press is not processed, but Telegram's spinner must still stop.
            await answer_quietly(update)
        if verdict == "warn":
            log.info("flood guard: muting sender %s for %.0f s", sender, self.flood_guard.window)
            message = update.effective_message
            if message is not None:
                await self._send(context, _Destination.of(message, quote=False), Reply(SLOW_DOWN))
        raise ApplicationHandlerStop

    @_in_log_context
    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Forward a text message or a command, verbatim, to the core."""
        message = update.effective_message
        assert message is not None and message.text is not None
        text = clean_text(message.text, context.bot.username)
        await self._answer(update, context, message, incoming_of(update, text=text))

    @_in_log_context
    async def on_unsupported(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Tell the core about a photo, sticker, edit…: it answers that it reads text."""
        message = update.effective_message
        assert message is not None
        kind = "edited_message" if update.edited_message else attachment_kind(message)
        await self._answer(update, context, message, incoming_of(update, unsupported=kind))

    async def _answer(
        self,
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        message: Message,
        incoming: Incoming | None,
    ) -> None:
        """The core's answer to a message, as a reply quoting it; nobody to answer: logged."""
        if incoming is None:
            return _nobody(update)
        outcome = await self._ask(incoming)
        await self._deliver(
            context, update, incoming, outcome, _Destination.of(message, quote=True)
        )

    @_in_log_context
    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Forward a button press (its opaque id) to the core; edit the pressed message."""
        query = update.callback_query
        assert query is not None
        # Answered first and always: it stops the spinner even if the core or a send fails.
        await answer_quietly(update)
        message = query.message
        if query.data is None or message is None:
            return
        incoming = incoming_of(update, press=query.data)
        if incoming is None:
            return _nobody(update)
        outcome = await self._ask(incoming)
        pressed = message if isinstance(message, Message) else None
        await self._deliver(
            context,
            update,
            incoming,
            outcome,
            _Destination.of(message, quote=False),
            pressed=pressed,
        )

    @_in_log_context
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the failure with its update id and apologise to the user; the bot keeps running."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("update %s failed", update_id, exc_info=context.error)
        if not isinstance(update, Update):
            return  # a network error of the polling loop: nobody to apologise to
        message = update.effective_message
        if message is None:
            return
        try:
            await self._send(context, _Destination.of(message, quote=False), Reply(APOLOGY))
        except TelegramError:
            log.warning("could not send the apology for update %s", update_id, exc_info=True)

    # -- translation ---------------------------------------------------------------------------

    async def _in_worker(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` in a worker thread, awaited without blocking the event loop."""
        # In a copy of the current context: the worker's log records keep the update's ids.
        in_context = functools.partial(contextvars.copy_context().run, call, *args)
        return await asyncio.get_running_loop().run_in_executor(self._workers, in_context)

    async def _ask(self, incoming: Incoming) -> Outcome:
        """The core's answer, computed in a worker thread; the observer hears of it."""
        started = time.perf_counter()
        outcome = await self._in_worker(self.assistant.handle, incoming)
        if self.observer is not None:
            try:
                self.observer(incoming, outcome, time.perf_counter() - started)
            except Exception:  # metrics must never cost a user their answer
                log.exception("the core call observer failed")
        return outcome

    async def _deliver(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        update: Update,
        incoming: Incoming,
        outcome: Outcome,
        destination: _Destination,
        *,
        pressed: Message | None = None,
    ) -> None:
        replies = [reply for reply in outcome.replies if reply.text.strip() or reply.image]
        edits = bool(replies) and pressed is not None and replies[0].edits_pressed
        if edits and pressed is not None and replies[0].image is not None:
            # A text message cannot become a photo: the photo comes as a new message and the
            # pressed one loses its buttons.
            await self._void(context, message_ref(pressed.chat.id, pressed.message_id))
            edits = False
        # The pressed message, when edited, loses its buttons with the edit itself.
        edited = message_ref(pressed.chat.id, pressed.message_id) if edits and pressed else None
        for ref in outcome.void_buttons:
            if ref != edited:
                await self._void(context, ref)
        if edits and pressed is not None:
            await self._edit(context, pressed, destination, replies.pop(0))
        for reply in replies:
            sent = await self._send(context, destination, reply)
            if reply.key is not None and sent is not None:
                ref = message_ref(sent.chat.id, sent.message_id)
                await self._in_worker(
                    self.assistant.delivered, incoming.speaker_key, reply.key, ref
                )
        # A menu is a person's, in their private chat: never for a channel or a group.
        if outcome.menu is not None and incoming.private_chat and update.effective_user:
            await apply_menu(context.bot, update.effective_user.id, outcome.menu)
        if outcome.jobs_due and self.run_due_jobs is not None:
            # An eRun's answers go now, not at the next tick.
            await self.run_due_jobs(context.bot)

    async def _void(self, context: ContextTypes.DEFAULT_TYPE, ref: str) -> None:
        """Take the buttons off one of our earlier messages."""
        where = _message_of(ref)
        if where is None:
            return
        try:
            await context.bot.edit_message_reply_markup(where[0], where[1], reply_markup=None)
        except BadRequest as error:
            # Already without buttons, deleted by the user, too old: nothing left to press.
            log.info("could not take the buttons off message %s: %s", ref, error.message)

    async def _send(
        self, context: ContextTypes.DEFAULT_TYPE, destination: _Destination, reply: Reply
    ) -> Message | None:
        """Send the reply (in chunks if long); the last message sent, which has the buttons."""
        if reply.image is not None:
            return await self._send_photo(context, destination, reply, reply.image)
        chunks = split_html(reply.text)
        sent = None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            sent = await context.bot.send_message(
                destination.chat_id,
                chunk,
                message_thread_id=destination.thread_id,
                reply_markup=_keyboard(reply.buttons) if last else None,
                reply_parameters=(
                    ReplyParameters(destination.quote, allow_sending_without_reply=True)
                    if destination.quote and index == 0
                    else None
                ),
            )
        return sent

    async def _send_photo(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        destination: _Destination,
        reply: Reply,
        image: bytes,
    ) -> Message | None:
        """The image captioned with the text when it fits, else the bare image then the text;
        the buttons go on the last message."""
        text = reply.text.strip()
        # Measured on the HTML, tags included: longer than what Telegram counts, never shorter.
        captioned = utf16_len(text) <= MessageLimit.CAPTION_LENGTH
        sent = await context.bot.send_photo(
            destination.chat_id,
            image,
            caption=text if captioned and text else None,
            message_thread_id=destination.thread_id,
            reply_markup=_keyboard(reply.buttons) if captioned else None,
            reply_parameters=(
                ReplyParameters(destination.quote, allow_sending_without_reply=True)
                if destination.quote
                else None
            ),
        )
        if captioned:
            return sent
        return await self._send(
            context, replace(destination, quote=None), replace(reply, image=None)
        )

    async def _edit(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        pressed: Message,
        destination: _Destination,
        reply: Reply,
    ) -> None:
        chunks = split_html(reply.text)
        single = len(chunks) == 1
        try:
            # Telegram drops the inline keyboard of a message edited without reply_markup:
            # that is how the pressed buttons (Confirmer / Annuler) go away.
            await pressed.edit_text(
                chunks[0], reply_markup=_keyboard(reply.buttons) if single else None
            )
        except BadRequest as error:
            if "not modified" in error.message.lower():
                return
            # Too old or no longer editable: say it in a new message, and still take the
            # buttons away so that they cannot be pressed again.
            log.info("could not edit message %s: %s", pressed.message_id, error.message)
            await self._send(context, destination, reply)
            with contextlib.suppress(BadRequest):
                await pressed.edit_reply_markup(reply_markup=None)
            return
        if not single:
            rest = Reply("\n\n".join(chunks[1:]), reply.buttons)
            await self._send(context, destination, rest)


def _nobody(update: Update) -> None:
    """An update nobody sent (no user, no sender chat): nobody to answer, nothing to do."""
    log.info("update %s has no sender: ignored", update.update_id)


async def answer_quietly(update: Update) -> None:
    """Stop the spinner of a pressed button; a query too old to answer is no failure."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer()
    except BadRequest as error:
        # "query is too old" after a restart: the press itself is still worth processing.
        log.info("could not answer callback query %s: %s", query.id, error.message)
