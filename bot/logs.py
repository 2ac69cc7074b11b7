"""Logging set-up for the long-running front ends: the level, and a mask over every record so
that the bot token, the webhook secret and account-link codes never reach a log.

At DEBUG, PTB logs every Bot API call with its parameters and every update with its text
(« /connexion K7M2-P9QX »), httpx logs request URLs (which hold the token: …/bot<token>/getMe),
and a failure's traceback can quote either. The mask is applied when a record is created (a
log record factory), not by a handler: it then holds for every logger, every level and every
handler, including pytest's and any added later (a JSON log handler, say).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
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
        return record

    logging.setLogRecordFactory(masked_record)
    _active = mask
    return mask


def remove_mask() -> None:
    """Back to unmasked records (tests restore the process as they found it)."""
    global _active
    if _active is None:
        return
    logging.setLogRecordFactory(_unmasked)
    _active = None


def configure_logging(settings: Settings) -> None:
    """LOG_LEVEL for the root logger, and the mask with this configuration's secrets."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise SettingsError(f"LOG_LEVEL inconnu : {settings.log_level} (DEBUG, INFO, WARNING…).")
    install_mask(settings.secrets())
    logging.getLogger().setLevel(level)
    # httpx logs every request at INFO: noise at INFO, wanted at DEBUG (masked either way).
    quiet = logging.DEBUG if level <= logging.DEBUG else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)
