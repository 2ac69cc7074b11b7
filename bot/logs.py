"""Logging set-up for the long-running front ends: the level, the format (text or JSON), the
update and (hashed) user every record is about, and a mask over every record so that the bot
token, the webhook secret and account-link codes never reach a log.

At DEBUG, PTB logs every Bot API call with its parameters and every update with its text
(« /connexion K7M2-P9QX »), httpx logs request URLs (which hold the token: …/bot<token>/getMe),
and a failure's traceback can quote either. The mask is applied when a record is created (a
log record factory), not by a handler: it then holds for every logger, every level and every
handler, including pytest's and any added later (a JSON log handler, say).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from bot.settings import Settings, SettingsError
from bot.storage.accounts import CODE_ALPHABET, CODE_LENGTH

MASK = "[masqué]"

# Any bot token's shape, not only ours: a refused or older token is no less secret.
_TOKEN = re.compile(r"\d{3,12}:[A-Za-z0-9_-]{30,64}")
# What follows /connexion (or /connexion@bot), up to the end of the quoted text it sits in:
# the code however it was typed (spaces, dashes, lower case).
_LINK_COMMAND = re.compile(r"(/connexion(?:@\w+)?)[ \t]+[^\s\"'\\,}\]<][^\"'\\\n,}\]<]*", re.I)


def _code_pattern() -> re.Pattern[str]:
    """A link code on its own (pasted without the command): CODE_LENGTH characters of the
    code alphabet, maybe split in two by a dash or a space. In upper case, as codes are
    printed, any such word; in lower case only with a digit and a letter, so that ordinary
    French words (« accepter ») are left alone."""
    upper = re.escape(CODE_ALPHABET)
    lower = re.escape(CODE_ALPHABET.lower())
    half = CODE_LENGTH // 2
    rest = CODE_LENGTH - half
    edge_before, edge_after = r"(?<![A-Za-z0-9_])", r"(?![A-Za-z0-9_])"
    printed = rf"[{upper}]{{{half}}}[- ]?[{upper}]{{{rest}}}"
    typed = (
        rf"(?=[{lower}{upper} -]*\d)(?=[\d -]*[A-Za-z])"
        rf"[{lower}{upper}]{{{half}}}[- ]?[{lower}{upper}]{{{rest}}}"
    )
    return re.compile(rf"{edge_before}(?:{printed}|{typed}){edge_after}")


_CODE = _code_pattern()


class SecretMask(logging.Filter):
    """Masks the secrets it was given, anything shaped like a bot token, and link codes, in
    a record's message, traceback and stack."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too (empty ones are ignored: they would mask everything)."""
        self.secrets.update(secret for secret in secrets if secret)

    def mask(self, text: str) -> str:
        """`text` with every secret replaced by MASK."""
        # Longest first: a secret that contains another is masked whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        text = _TOKEN.sub(MASK, text)
        text = _LINK_COMMAND.sub(rf"\1 {MASK}", text)
        return _CODE.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: logging reports it at emit time
            return True
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatted now, as the formatter would, so that the traceback is masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


# The update being handled and who sent it, for every record emitted meanwhile (log_context).
_update_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("update_id", default=None)
_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("log_user", default=None)
# Key of the pseudonymous user hash. A fixed application salt until configure_logging replaces
# it with one derived from the bot token: a secret every instance of one bot shares, so one
# person hashes alike on every instance, and a hash cannot be reversed by hashing all Telegram
# ids (which a public salt would allow). A new token starts new pseudonyms; no extra setting.
_APP_SALT = b"assistant-rentree/log-user/v1"
_user_key: bytes = _APP_SALT


def set_user_key(secret: str | None) -> None:
    """Key the user hash with this secret (the bot token); None: the fixed app salt."""
    global _user_key
    if not secret:
        _user_key = _APP_SALT
        return
    _user_key = hashlib.blake2b(secret.encode(), key=_APP_SALT, digest_size=32).digest()


def hash_user(user_id: int) -> str:
    """A Telegram id's pseudonym in the logs: 12 hex digits of a keyed BLAKE2b."""
    digest = hashlib.blake2b(str(user_id).encode(), key=_user_key, digest_size=16)
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def log_context(*, update_id: int | None, user_id: int | None) -> Iterator[None]:
    """Every record emitted inside carries this update id and the sender's hashed id (the
    context follows asyncio tasks; a worker thread sees it only if started in a copy of it,
    as asyncio.to_thread and contextvars.copy_context().run do)."""
    update_token = _update_id.set(update_id)
    user_token = _user.set(None if user_id is None else hash_user(user_id))
    try:
        yield
    finally:
        _user.reset(user_token)
        _update_id.reset(update_token)


class ContextFilter(logging.Filter):
    """Sets `record.update_id` and `record.user` (hashed) from log_context, None outside."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate, never drop; a value already set (by the record factory) is kept."""
        if getattr(record, "update_id", None) is None:
            record.update_id = _update_id.get()
        if getattr(record, "user", None) is None:
            record.user = _user.get()
        return True


_CONTEXT = ContextFilter()
_active: SecretMask | None = None
_unmasked: Callable[..., logging.LogRecord] = logging.LogRecord


def install_mask(secrets: Iterable[str] = ()) -> SecretMask:
    """Mask every log record from now on (once per process; later calls add secrets)."""
    global _active, _unmasked
    if _active is not None:
        _active.add(secrets)
        return _active
    mask = SecretMask(secrets)
    make_record = _unmasked = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        mask.filter(record)
        # At creation, in the emitting task or thread: that is where the context is.
        _CONTEXT.filter(record)
        return record

    logging.setLogRecordFactory(masked_record)
    _active = mask
    return mask


def remove_mask() -> None:
    """Back to unmasked records and the default user-hash key (tests restore the process as
    they found it)."""
    global _active
    set_user_key(None)
    if _active is None:
        return
    logging.setLogRecordFactory(_unmasked)
    _active = None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, update_id,
    user (hashed) and, when any, the exception text. The mask ran when the record was made."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (newlines inside strings escaped)."""
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "update_id": getattr(record, "update_id", None),
            "user": getattr(record, "user", None),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The console's line: UTC time, level, logger, the update and user when known, message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """ISO 8601 in UTC, to the millisecond (logging's default has a comma and no zone)."""
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        """The line, with « [update 12 user 3f…] » inside log_context."""
        update_id, user = getattr(record, "update_id", None), getattr(record, "user", None)
        parts = [f"update {update_id}"] if update_id is not None else []
        parts += [f"user {user}"] if user is not None else []
        record.where = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


# uvicorn's access line: « client - "METHOD path HTTP/1.1" status ».
_ACCESS = re.compile(r'^.*? - "(?P<method>[A-Z]+) (?P<path>\S*) HTTP/[\d.]+" (?P<status>\d{3})$')


class AccessLogFilter(logging.Filter):
    """Rewrites uvicorn's access records to « METHOD /path STATUS »: no client address
    (personal data, and only the proxy's anyway), no query string (where a secret could be
    passed). Read from the message, which the mask may already have rewritten."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite in place; never drops a record."""
        found = _ACCESS.match(record.getMessage())
        if found:
            path = found["path"].split("?", 1)[0]
            record.msg, record.args = f"{found['method']} {path} {found['status']}", None
        return True


def configure_logging(settings: Settings) -> None:
    """LOG_LEVEL and LOG_FORMAT for the root logger's console handler, the mask with this
    configuration's secrets, the user-hash key, uvicorn's loggers through the same handler."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise SettingsError(f"LOG_LEVEL inconnu : {settings.log_level} (DEBUG, INFO, WARNING…).")
    install_mask(settings.secrets())
    token = settings.telegram_token.get_secret_value().strip() if settings.telegram_token else ""
    set_user_key(token or None)
    root = logging.getLogger()
    root.setLevel(level)
    formatter: logging.Formatter = (
        JsonFormatter() if settings.log_format == "json" else TextFormatter()
    )
    # The console handler of the command line (logging.basicConfig), not pytest's capture
    # (a subclass); one on stderr only when the root has no handler at all.
    consoles = [h for h in root.handlers if type(h) is logging.StreamHandler]
    if not root.handlers:
        consoles = [logging.StreamHandler()]
        root.addHandler(consoles[0])
    for handler in consoles:
        handler.setFormatter(formatter)
        handler.setLevel(logging.NOTSET)
    # httpx logs every request at INFO, uvicorn every HTTP request (health checks, scrapes):
    # noise at INFO, wanted at DEBUG (masked either way).
    quiet = logging.DEBUG if level <= logging.DEBUG else logging.WARNING
    for name in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(name).setLevel(quiet)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in access.filters):
        access.addFilter(AccessLogFilter())
    # uvicorn's own handlers are not installed (log_config=None): its records reach the root.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).propagate = True
