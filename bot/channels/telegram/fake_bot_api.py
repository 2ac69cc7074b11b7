"""A small fake Telegram Bot API server on 127.0.0.1, for the tests and the benchmark.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) with the stdlib asyncio
streams to stay cheap, so that a benchmark measures the bot, not the fake. Updates are queued
by the test and served by `getUpdates` (long polling, offsets confirm them as on Telegram);
every Bot API call is recorded with its parameters and can be awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

# Shaped like a real token (bot.settings.TOKEN_PATTERN), never valid on Telegram.
FAKE_TOKEN = "123456789:AAFakeTokenForTestsOnly_0123456789abc"

# Parameters that the Bot API types as strings: kept verbatim even when they look like JSON.
_STRING_PARAMS = {
    "text",
    "caption",
    "callback_query_id",
    "inline_message_id",
    "url",
    "secret_token",
    "ip_address",
    "parse_mode",
    "language_code",
    "description",
    "short_description",
    "name",
}
_REQUEST_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$")
_COMMAND = re.compile(r"^/\w+(@\w+)?")
_MENTION = re.compile(r"(?<![\w@])@\w{5,32}")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error"}  # fmt: skip


@dataclass
class Call:
    """One Bot API request the bot made, with its decoded parameters and what was answered."""

    method: str
    params: dict[str, Any]
    result: Any = None
    at: float = field(default_factory=time.perf_counter)

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")


@dataclass
class _Failure:
    error_code: int
    description: str
    retry_after: int | None = None


@dataclass
class _CallWaiter:
    matches: Callable[[Call], bool]
    found: list[Call] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)


class ApiError(Exception):
    """Raised by a method implementation: becomes an {"ok": false} answer."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.failure = _Failure(error_code, description, retry_after)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram would attach: a leading /command and @mentions."""
    found = []
    if match := _COMMAND.match(text):
        found.append({"type": "bot_command", "offset": 0, "length": _utf16(match.group())})
    for match in _MENTION.finditer(text):
        found.append(
            {
                "type": "mention",
                "offset": _utf16(text[: match.start()]),
                "length": _utf16(match.group()),
            }
        )
    return found


class FakeBotApi:
    """The fake server; use `async with FakeBotApi() as api:` and point the bot at api.base_url."""

    def __init__(
        self,
        token: str = FAKE_TOKEN,
        *,
        bot_id: int = 7_000_000_001,
        username: str = "assistant_rentree_bot",
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Assistant Rentrée",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        # Called synchronously with each recorded call (the benchmark reacts to replies).
        self.listeners: list[Callable[[Call], None]] = []
        # When each update was first handed out by getUpdates (time.perf_counter()).
        self.served_at: dict[int, float] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] = {}
        self.confirmed_upto = 0
        self._pending: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._chats: dict[int, dict[str, Any]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._arrived = asyncio.Event()
        self._call_waiters: list[_CallWaiter] = []
        self._confirm_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping = False
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeBotApi:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._arrived.set()  # long polls return at once
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        for _, future in self._confirm_waiters:
            future.cancel()

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What to give as TELEGRAM_API_URL (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

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
            "message_id": next(self._message_ids),
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

    # -- observing the bot ---------------------------------------------------------------------

    def mark(self) -> int:
        """The number of calls so far: pass it as `after` to look only at later calls."""
        return len(self.calls)

    def calls_of(self, method: str, *, chat_id: Any = None, after: int = 0) -> list[Call]:
        return [
            call
            for call in self.calls[after:]
            if call.method == method and (chat_id is None or call.chat_id == chat_id)
        ]

    async def wait_call(
        self,
        method: str,
        *,
        chat_id: Any = None,
        after: int = 0,
        where: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> Call:
        """The first call of `method` (after index `after`) matching; waits for it if needed."""
        calls = await self.wait_calls(
            method, 1, chat_id=chat_id, after=after, where=where, timeout=timeout
        )
        return calls[0]

    async def wait_calls(
        self,
        method: str,
        count: int,
        *,
        chat_id: Any = None,
        after: int = 0,
        where: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[Call]:
        """The first `count` matching calls after index `after`, waiting until there are."""

        def matches(call: Call) -> bool:
            return (
                call.method == method
                and (chat_id is None or call.chat_id == chat_id)
                and (where is None or where(call))
            )

        waiter = _CallWaiter(matches)
        waiter.found = [call for call in self.calls[after:] if matches(call)]
        self._call_waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                while len(waiter.found) < count:
                    waiter.event.clear()
                    await waiter.event.wait()
        except TimeoutError:
            seen = [(c.method, str(c.params.get("text", ""))[:60]) for c in self.calls[after:]]
            raise AssertionError(
                f"{len(waiter.found)}/{count} {method} call(s) within {timeout} s; saw {seen}"
            ) from None
        finally:
            self._call_waiters.remove(waiter)
        return waiter.found[:count]

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

    def fail_next(
        self, method: str, error_code: int, description: str, retry_after: int | None = None
    ) -> None:
        """Make the next call of `method` fail the way Telegram would."""
        self._failures.setdefault(method, deque()).append(
            _Failure(error_code, description, retry_after)
        )

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        for waiter in self._call_waiters:
            if waiter.matches(call):
                # Collected here, not on wake-up, so that no call is missed in between.
                waiter.found.append(call)
                waiter.event.set()
        for listener in self.listeners:
            listener(call)

    # -- HTTP ------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            while not self._stopping:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                try:
                    body = await reader.readexactly(length) if length else b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                status, payload = await self._respond(target, headers, body)
                data = json.dumps(payload, ensure_ascii=False).encode()
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s"
                    % (status, _REASONS.get(status, "Error").encode(), len(data), data)
                )
                if headers.get("connection", "").lower() == "close":
                    return
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            self._connections.discard(task)
            writer.close()

    async def _respond(
        self, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        match = _REQUEST_PATH.match(urlsplit(target).path)
        if match is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if match.group("token") != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        name = match.group("method")
        params = self._decode(headers.get("content-type", ""), body)
        call = Call(name, params)
        recorded = False
        implementation = getattr(self, f"_api_{name}", None)
        try:
            failures = self._failures.get(name)
            if failures:
                raise ApiError(**vars(failures.popleft()))
            if implementation is None:
                raise ApiError(404, "Not Found: method not found")
            result = implementation(params)
            if asyncio.iscoroutine(result):
                # A long poll is seen as soon as it is asked (its result comes later), so
                # that waiting for "getUpdates" means waiting for the bot to be polling.
                self._record(call)
                recorded = True
                result = await result
        except Exception as error:  # a bug of the fake must not look like a network failure
            if not isinstance(error, ApiError):
                log.exception("fake Bot API: %s failed", name)
                error = ApiError(500, f"Internal Server Error: {error!r}")
            failure = error.failure
            call.result = error
            if not recorded:
                self._record(call)
            answer: dict[str, Any] = {
                "ok": False,
                "error_code": failure.error_code,
                "description": failure.description,
            }
            if failure.retry_after is not None:
                answer["parameters"] = {"retry_after": failure.retry_after}
            return failure.error_code, answer
        call.result = result
        if not recorded:
            self._record(call)
        return 200, {"ok": True, "result": result}

    @staticmethod
    def _decode(content_type: str, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        if content_type.startswith("application/json"):
            return json.loads(body)
        # PTB posts form fields whose non-string values are JSON-encoded.
        params: dict[str, Any] = {}
        for key, value in parse_qsl(body.decode(), keep_blank_values=True):
            if key in _STRING_PARAMS:
                params[key] = value
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        return params

    # -- Bot API methods -----------------------------------------------------------------------

    def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        if offset > 0:
            self._confirm(offset - 1)
        timeout = float(params.get("timeout") or 0)
        if not self._pending and timeout > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        limit = int(params.get("limit") or 100)
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

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        return self._chats.get(chat_id) or {"id": chat_id, "type": "private", "first_name": "?"}

    def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params.get("text", "")
        if not str(text).strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        message = {
            "message_id": next(self._message_ids),
            "from": self.bot_user,
            "chat": self._chat(params["chat_id"]),
            "date": int(time.time()),
            "text": text,
        }
        markup = params.get("reply_markup")
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    def _stored(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get((params.get("chat_id"), params.get("message_id")))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(params)
        markup = params.get("reply_markup") or {}
        keyboard = markup.get("inline_keyboard") or None
        if params.get("text") == message["text"] and keyboard == (
            message.get("reply_markup") or {}
        ).get("inline_keyboard"):
            raise ApiError(400, "Bad Request: message is not modified")
        message["text"] = params.get("text", "")
        message["edit_date"] = int(time.time())
        if keyboard:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(params)
        markup = params.get("reply_markup") or {}
        if markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get("language_code") or ""

    def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands[self._scope_key(params)] = list(params.get("commands") or [])
        return True

    def _api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._scope_key(params), None)
        return True

    def _api_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands.get(self._scope_key(params), [])

    def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {key: value for key, value in params.items() if key != "certificate"}
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
            "max_connections": self.webhook.get("max_connections", 40),
            "allowed_updates": self.webhook.get("allowed_updates", []),
        }

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    def _api_logOut(self, params: dict[str, Any]) -> bool:
        return True
