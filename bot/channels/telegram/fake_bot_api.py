"""A small fake Telegram Bot API server on 127.0.0.1, for the tests and the benchmark.

Updates are queued by the test and served by `getUpdates` (fake_updates); every Bot API call
is recorded with its parameters and can be awaited (fake_calls); the HTTP is in fake_http.
This module holds the bot's side: its identity, and the Bot API methods it calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from bot.channels.telegram.fake_calls import ApiError, Call, CallLog
from bot.channels.telegram.fake_http import JsonHttpServer, decode_params
from bot.channels.telegram.fake_updates import UpdateFeed

__all__ = ["FAKE_TOKEN", "ApiError", "Call", "FakeBotApi"]

log = logging.getLogger(__name__)

# Shaped like a real token (bot.settings.TOKEN_PATTERN), never valid on Telegram.
FAKE_TOKEN = "123456789:AAFakeTokenForTestsOnly_0123456789abc"

_REQUEST_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$")


class FakeBotApi(UpdateFeed, CallLog):
    """The fake server; use `async with FakeBotApi() as api:` and point the bot at api.base_url."""

    def __init__(
        self,
        token: str = FAKE_TOKEN,
        *,
        bot_id: int = 7_000_000_001,
        username: str = "assistant_rentree_bot",
    ) -> None:
        UpdateFeed.__init__(self)
        CallLog.__init__(self)
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
        # Command menus by (scope as JSON, language code).
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] = {}
        self._http = JsonHttpServer(self._respond)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeBotApi:
        """Listen (on a free port by default)."""
        await self._http.start(host, port)
        return self

    async def stop(self) -> None:
        """Answer the long polls at once, close every connection."""
        self.close_feed()
        await self._http.stop()
        self.cancel_waiters()

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port listened on (chosen at start)."""
        return self._http.port

    @property
    def base_url(self) -> str:
        """What to give as TELEGRAM_API_URL (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """What PTB uses to download files (never called by the bot)."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- requests ------------------------------------------------------------------------------

    async def _respond(
        self, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        match = _REQUEST_PATH.match(urlsplit(target).path)
        if match is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if match.group("token") != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        name = match.group("method")
        call = Call(name, decode_params(headers.get("content-type", ""), body))
        recorded = False
        implementation = getattr(self, f"_api_{name}", None)
        try:
            failure = self.next_failure(name)
            if failure is not None:
                raise ApiError(**vars(failure))
            if implementation is None:
                raise ApiError(404, "Not Found: method not found")
            result = implementation(call.params)
            if asyncio.iscoroutine(result):
                # A long poll is seen as soon as it is asked (its result comes later), so
                # that waiting for "getUpdates" means waiting for the bot to be polling.
                self.record(call)
                recorded = True
                result = await result
        except Exception as error:  # a bug of the fake must not look like a network failure
            if not isinstance(error, ApiError):
                log.exception("fake Bot API: %s failed", name)
                error = ApiError(500, f"Internal Server Error: {error!r}")
            failure = error.failure
            call.result = error
            if not recorded:
                self.record(call)
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
            self.record(call)
        return 200, {"ok": True, "result": result}

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
        return await self.next_updates(
            offset=int(params.get("offset") or 0),
            timeout=float(params.get("timeout") or 0),
            limit=int(params.get("limit") or 100),
        )

    def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params.get("text", "")
        if not str(text).strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        message = {
            "message_id": self.next_message_id(),
            "from": self.bot_user,
            "chat": self.chat(params["chat_id"]),
            "date": int(time.time()),
            "text": text,
        }
        markup = params.get("reply_markup")
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    def _api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        # The upload is kept in the recorded call: params["photo"] holds the file's bytes.
        photo = params.get("photo")
        if not isinstance(photo, bytes) or not photo:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        caption = params.get("caption") or ""
        if len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        message_id = self.next_message_id()
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": self.chat(params["chat_id"]),
            "date": int(time.time()),
            "photo": [
                {
                    "file_id": f"photo-{message_id}",
                    "file_unique_id": f"photo-{message_id}",
                    "width": 600,
                    "height": 300,
                    "file_size": len(photo),
                }
            ],
        }
        if caption:
            message["caption"] = caption
        markup = params.get("reply_markup")
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        self.messages[(message["chat"]["id"], message_id)] = message
        return message

    def _stored(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        message = None
        if isinstance(chat_id, int) and isinstance(message_id, int):
            message = self.messages.get((chat_id, message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(params)
        if "text" not in message:  # a photo: only its caption could be edited
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
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
            self.drop_pending()
        return True

    def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        if params.get("drop_pending_updates"):
            self.drop_pending()
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": self.pending_count,
            "max_connections": self.webhook.get("max_connections", 40),
            "allowed_updates": self.webhook.get("allowed_updates", []),
        }

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    def _api_logOut(self, params: dict[str, Any]) -> bool:
        return True
