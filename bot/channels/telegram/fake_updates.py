"""The users' side of the fake Telegram: chats and their messages, what people do (type, send a
photo, edit, press a button) as updates, and the queue that `getUpdates` serves.

Updates are queued by the test and handed out by long polling; a later offset confirms them,
as on Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import deque
from typing import Any

from bot.channels.telegram.html import utf16_len

_COMMAND = re.compile(r"^/\w+(@\w+)?")
_MENTION = re.compile(r"(?<![\w@])@\w{5,32}")


def _entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram would attach: a leading /command and @mentions."""
    found = []
    if match := _COMMAND.match(text):
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(match.group())})
    for match in _MENTION.finditer(text):
        found.append(
            {
                "type": "mention",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return found


class UpdateFeed:
    """Builds the updates of users and serves them to the bot in order."""

    def __init__(self) -> None:
        # When each update was first handed out by getUpdates (time.perf_counter()).
        self.served_at: dict[int, float] = {}
        # The bot's messages as they are now (edits applied), by (chat id, message id).
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.confirmed_upto = 0
        self._pending: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(1)
        # One sequence for the messages of users and of the bot, as in a real chat.
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._chats: dict[int, dict[str, Any]] = {}
        self._arrived = asyncio.Event()
        self._confirm_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closed = False

    # -- building updates ----------------------------------------------------------------------

    @staticmethod
    def user(user_id: int, first_name: str = "Camille", last_name: str | None = None,
             username: str | None = None) -> dict[str, Any]:  # fmt: skip
        """A Telegram user (a person, not a bot)."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        user["language_code"] = "fr"
        return user

    @staticmethod
    def private_chat(user: dict[str, Any]) -> dict[str, Any]:
        """The private chat of a user with the bot (same id as the user, as on Telegram)."""
        return {"id": user["id"], "type": "private", "first_name": user["first_name"]}

    @staticmethod
    def group_chat(chat_id: int = -1001234567890, title: str = "Parents CE1") -> dict[str, Any]:
        """A supergroup the bot is a member of."""
        return {"id": chat_id, "type": "supergroup", "title": title}

    def queue_update(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update body (without update_id); returns the update as queued."""
        update = {"update_id": next(self._update_ids), **payload}
        for kind in ("message", "edited_message"):
            if kind in update:
                self._chats[update[kind]["chat"]["id"]] = update[kind]["chat"]
        self._pending.append(update)
        self._arrived.set()
        self._arrived = asyncio.Event()
        return update

    def _message(
        self,
        user: dict[str, Any],
        chat: dict[str, Any] | None,
        reply_to: dict[str, Any] | None,
        **content: Any,
    ) -> dict[str, Any]:
        message = {
            "message_id": self.next_message_id(),
            "from": user,
            "chat": chat or self.private_chat(user),
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    def send_text(
        self,
        user: dict[str, Any],
        text: str,
        *,
        chat: dict[str, Any] | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user types `text` (commands and @mentions get their entities)."""
        content: dict[str, Any] = {"text": text}
        if entities := _entities(text):
            content["entities"] = entities
        return self.queue_update({"message": self._message(user, chat, reply_to, **content)})

    def send_media(
        self,
        user: dict[str, Any],
        kind: str,
        *,
        chat: dict[str, Any] | None = None,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A photo, sticker, voice, document or location instead of text."""
        file = {"file_id": f"file-{kind}", "file_unique_id": f"unique-{kind}"}
        contents: dict[str, Any] = {
            "photo": [{**file, "width": 90, "height": 90, "file_size": 1200}],
            "sticker": {
                **file,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },  # fmt: skip
            "voice": {**file, "duration": 3},
            "document": {**file, "file_name": "liste.pdf"},
            "location": {"latitude": 50.6292, "longitude": 3.0573},
        }
        content: dict[str, Any] = {kind: contents[kind]}
        if caption:
            content["caption"] = caption
            if entities := _entities(caption):
                content["caption_entities"] = entities
        return self.queue_update({"message": self._message(user, chat, reply_to, **content)})

    def edit_text(self, original: dict[str, Any], text: str) -> dict[str, Any]:
        """The user edits one of their messages (the update from send_text)."""
        message = {**original["message"], "text": text, "edit_date": int(time.time())}
        message.pop("entities", None)
        if entities := _entities(text):
            message["entities"] = entities
        return self.queue_update({"edited_message": message})

    def press(
        self,
        user: dict[str, Any],
        message: dict[str, Any],
        label: str | None = None,
        *,
        data: str | None = None,
    ) -> dict[str, Any]:
        """The user presses the button labelled `label` (or carrying `data`) of a bot message."""
        current = self.messages.get((message["chat"]["id"], message["message_id"]), message)
        if data is None:
            rows = current.get("reply_markup", {}).get("inline_keyboard", [])
            buttons = [button for row in rows for button in row]
            found = [button for button in buttons if button["text"] == label]
            if not found:
                labels = [button["text"] for button in buttons]
                raise LookupError(f"no button {label!r} on message: {labels}")
            data = found[0]["callback_data"]
        query = {
            "id": str(next(self._callback_ids)),
            "from": user,
            "message": current,
            "chat_instance": f"ci{current['chat']['id']}",
            "data": data,
        }
        return self.queue_update({"callback_query": query})

    # -- the chats, as the bot's messages need them ----------------------------------------------

    def next_message_id(self) -> int:
        """A new message id (user or bot message)."""
        return next(self._message_ids)

    def chat(self, chat_id: Any) -> dict[str, Any]:
        """The chat with that id as an update showed it (a private chat if never seen)."""
        return self._chats.get(chat_id) or {"id": chat_id, "type": "private", "first_name": "?"}

    # -- serving updates -----------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Updates queued and not yet confirmed."""
        return len(self._pending)

    def drop_pending(self) -> None:
        """Forget the updates not yet confirmed (drop_pending_updates)."""
        self._pending.clear()

    async def next_updates(self, offset: int, timeout: float, limit: int) -> list[dict[str, Any]]:
        """getUpdates: confirm those before `offset`, then wait up to `timeout` for any."""
        if offset > 0:
            self._confirm(offset - 1)
        if not self._pending and timeout > 0 and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        batch = list(itertools.islice(self._pending, limit))
        now = time.perf_counter()
        for update in batch:
            self.served_at.setdefault(update["update_id"], now)
        return batch

    def _confirm(self, upto: int) -> None:
        while self._pending and self._pending[0]["update_id"] <= upto:
            self._pending.popleft()
        self.confirmed_upto = max(self.confirmed_upto, upto)
        for waiter in list(self._confirm_waiters):
            update_id, future = waiter
            if update_id <= upto:
                if not future.done():
                    future.set_result(None)
                self._confirm_waiters.remove(waiter)

    async def wait_confirmed(self, update_id: int, timeout: float = 5.0) -> None:
        """Until the bot has confirmed `update_id` with a later getUpdates offset.

        PTB puts fetched updates into its update queue before asking for the next ones, so
        after this `await application.update_queue.join()` means they have been processed.
        """
        if self.confirmed_upto >= update_id:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm_waiters.append((update_id, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(f"update {update_id} not confirmed within {timeout} s") from None

    def close_feed(self) -> None:
        """Long polls return at once, and no new one waits."""
        self._closed = True
        self._arrived.set()

    def cancel_waiters(self) -> None:
        """Nobody waits any longer for a confirmation that will not come."""
        for _, future in self._confirm_waiters:
            future.cancel()
