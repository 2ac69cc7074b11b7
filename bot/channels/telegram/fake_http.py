"""The fake Bot API's HTTP side: just enough HTTP/1.1 (keep-alive, Content-Length bodies) over
asyncio streams to stay cheap, so that a benchmark measures the bot, not the fake."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

# (target, headers, body) → (status, JSON payload)
Responder = Callable[[str, dict[str, str], bytes], Awaitable[tuple[int, dict[str, Any]]]]

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
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error"}  # fmt: skip


def decode_params(content_type: str, body: bytes) -> dict[str, Any]:
    """The parameters of a Bot API request, JSON, form-encoded or multipart as PTB posts them."""
    if not body:
        return {}
    if content_type.startswith("application/json"):
        decoded: dict[str, Any] = json.loads(body)
        return decoded
    if content_type.startswith("multipart/form-data"):
        return _multipart(content_type, body)
    return {
        key: _field(key, value) for key, value in parse_qsl(body.decode(), keep_blank_values=True)
    }


def _field(key: str, value: str) -> Any:
    # PTB posts form fields whose non-string values are JSON-encoded.
    if key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of an upload (sendPhoto): a file part is kept as its bytes."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        return {}
    params: dict[str, Any] = {}
    for part in body.split(b"--" + boundary.group(1).encode())[1:]:
        if part.startswith(b"--"):  # the closing delimiter
            break
        head, _, data = part.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        disposition = next(
            (
                line
                for line in head.decode().split("\r\n")
                if line.lower().startswith("content-disposition")
            ),
            "",
        )
        name = re.search(r'\bname="([^"]*)"', disposition)
        if name is None:
            continue
        is_file = re.search(r'\bfilename="', disposition) is not None
        params[name.group(1)] = data if is_file else _field(name.group(1), data.decode())
    return params


class JsonHttpServer:
    """Serves every request on 127.0.0.1 with `respond`, answering JSON."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping = False

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen; with port 0 a free port is chosen (see `port`)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listening socket and every open connection."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

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
                _method, target, _version = request_line.split(" ", 2)
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
                status, payload = await self.respond(target, headers, body)
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
