"""Telegram front end: a thin python-telegram-bot translator around the transport-free core.

Every handler turns an update into an `Incoming`, asks the core, and turns the `Outcome` back
into Bot API calls. The adapter says nothing of its own except the flood-guard line and the
apology of the error handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MaybeInaccessibleMessage,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType, MessageEntityType, MessageLimit, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from bot.core.messages import Button, Incoming, Outcome, Reply
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# Only what the handlers read: Telegram then does not even send the rest (member updates…).
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]

SLOW_DOWN = (
    "Doucement : vous m'envoyez beaucoup de messages d'un coup. Je reprends dans quelques "
    "secondes, merci de patienter."
)
APOLOGY = (
    "Désolé, un incident technique m'a empêché de répondre. Réessayez dans un instant ; "
    "si cela persiste, contactez votre eRun de circonscription."
)

PUBLIC_COMMANDS = [
    BotCommand("start", "Démarrer : ce que je sais faire"),
    BotCommand("aide", "Aide et exemples de questions"),
    BotCommand("connexion", "Relier votre compte ENT avec le code de l'eRun"),
    BotCommand("deconnexion", "Délier votre compte ENT de cette conversation"),
    BotCommand("annuler", "Annuler la demande en cours"),
]
DIRECTOR_COMMANDS = [
    *PUBLIC_COMMANDS,
    BotCommand("bloquer", "Bloquer des comptes (ex. les parents)"),
    BotCommand("debloquer", "Débloquer des comptes"),
    BotCommand("rattacher", "Rattacher un enseignant à une classe"),
    BotCommand("detacher", "Détacher un enseignant de l'école"),
    BotCommand("groupes", "Voir les groupes de l'école"),
    BotCommand("checklist", "Où en est l'école pour la rentrée"),
    BotCommand("gar", "Responsables d'affectation GAR"),
]
# Commands the core understands: handled even in a group without a mention, as Telegram's
# privacy mode delivers them to the bot precisely because they are meant for a bot.
KNOWN_COMMANDS = [command.command for command in DIRECTOR_COMMANDS]

# Buttons whose labels are all this short share a row (Confirmer | Annuler).
SHORT_LABEL = 20
FLOOD_LIMIT = 20
FLOOD_WINDOW = 10.0


class Core(Protocol):
    """What the adapter needs from `bot.core.Assistant`."""

    def handle(self, incoming: Incoming) -> Outcome: ...


# -- HTML splitting --------------------------------------------------------------------------

_ATOM = re.compile(
    r"<[^>]*>"  # a tag, never cut inside
    r"|&#?\w+;"  # an entity, never cut inside
    r"|\n[ \t]*\n\s*"  # a paragraph break
    r"|\n"  # a line break
    r"|[ \t]+"  # spaces between words
    r"|[^<&\s]{1,32}"  # a piece of word: the unit of a hard cut
    r"|[\s\S]"  # anything else (a stray < or &)
)
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][\w-]*)")
# Break quality of the boundary that follows an atom: paragraph > line > space > hard cut.
_PARAGRAPH, _LINE, _SPACE, _HARD = 3, 2, 1, 0


def _utf16_len(text: str) -> int:
    # Telegram counts message length in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, room: int) -> str:
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > room:
            return text[:index]
    return text


def _break_level(atom: str) -> int:
    if atom.startswith("\n"):
        return _PARAGRAPH if atom.count("\n") > 1 else _LINE
    if atom[0] in " \t":
        return _SPACE
    return _HARD


def _closers(stack: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def split_html(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Split Telegram HTML into chunks of at most `limit`, each with balanced tags.

    Cuts at paragraph boundaries, else at a line, else between words, else anywhere outside a
    tag or entity; tags open at a cut are closed at the end of the chunk and reopened at the
    start of the next one. The markup counts towards the limit, so the visible text always fits.
    """
    if _utf16_len(text) <= limit:
        return [text] if text.strip() else []
    atoms: list[str] = _ATOM.findall(text)
    # stacks[i]: the tags open before atom i, as (name, opening tag) pairs.
    stacks: list[tuple[tuple[str, str], ...]] = []
    stack: tuple[tuple[str, str], ...] = ()
    for atom in atoms:
        stacks.append(stack)
        if atom.startswith("<") and (match := _TAG_NAME.match(atom)):
            name = match.group(1).lower()
            if atom.startswith("</"):
                names = [open_name for open_name, _ in stack]
                if name in names:
                    stack = stack[: len(names) - 1 - names[::-1].index(name)]
            elif not atom.endswith("/>"):
                stack = (*stack, (name, atom))
    stacks.append(stack)

    chunks: list[str] = []
    start = 0
    while start < len(atoms):
        prefix = "".join(tag for _, tag in stacks[start])
        size = _utf16_len(prefix)
        best = [-1, -1, -1, -1]  # the last fitting boundary of each break level
        end = start
        while end < len(atoms):
            size += _utf16_len(atoms[end])
            if size + _utf16_len(_closers(stacks[end + 1])) > limit:
                break
            end += 1
            # A cut just before a break is as good as one just after it (spaces are trimmed).
            after = _break_level(atoms[end - 1])
            before = _break_level(atoms[end]) if end < len(atoms) else _HARD
            best[max(after, before)] = end
        if end == start and not atoms[start].startswith(("<", "&")):
            # A piece of word that alone is too long for what is left: cut inside it.
            room = limit - _utf16_len(prefix) - _utf16_len(_closers(stacks[start + 1]))
            head = _fitting_prefix(atoms[start], room)
            if head:
                atoms[start : start + 1] = [head, atoms[start][len(head) :]]
                stacks.insert(start + 1, stacks[start])  # text opens or closes no tag
                continue
        if end == len(atoms):
            cut = end
        else:
            levels = (_PARAGRAPH, _LINE, _SPACE)
            cut = next((best[level] for level in levels if best[level] > start), end)
            if cut <= start:
                # A single atom that does not fit even alone (a huge tag): let it through
                # rather than loop forever; Telegram will refuse it, the error handler speaks.
                cut = start + 1
        body = "".join(atoms[start:cut]).strip()
        chunk = prefix + body + _closers(stacks[cut])
        if re.sub(r"<[^>]*>", "", chunk).strip():
            chunks.append(chunk)
        start = cut
        # The next chunk starts with a word, not with the spaces of the break.
        while start < len(atoms) and _break_level(atoms[start]) != _HARD:
            start += 1
    return chunks


# -- flood guard -----------------------------------------------------------------------------

Verdict = Literal["pass", "warn", "drop"]


class FloodGuard:
    """More than `limit` messages from one user within `window` seconds mutes that user for a
    window: the message that crosses the line is answered once with a slow-down note, the
    following ones are dropped unprocessed until the window has passed."""

    def __init__(
        self,
        limit: int = FLOOD_LIMIT,
        window: float = FLOOD_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._muted_until: dict[int, float] = {}
        self._checks = 0

    def check(self, user_id: int) -> Verdict:
        now = self.clock()
        until = self._muted_until.get(user_id)
        if until is not None:
            if now < until:
                return "drop"
            del self._muted_until[user_id]
            self._recent.pop(user_id, None)
        recent = self._recent.setdefault(user_id, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            self._muted_until[user_id] = now + self.window
            self._recent.pop(user_id, None)
            return "warn"
        recent.append(now)
        self._checks += 1
        if self._checks % 1024 == 0:
            self._forget_quiet_users(now)
        return "pass"

    def _forget_quiet_users(self, now: float) -> None:
        # Keeps memory bounded by the users active in the last window, not all users ever seen.
        for user_id in [u for u, r in self._recent.items() if not r or r[-1] <= now - self.window]:
            del self._recent[user_id]
        for user_id in [u for u, t in self._muted_until.items() if t <= now]:
            del self._muted_until[user_id]


# -- update ordering -------------------------------------------------------------------------


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Processes the updates of different users concurrently and those of one user in order.

    Concurrency lets the network round trips of many conversations overlap (a reply to
    Telegram takes tens of milliseconds); per-user order keeps a conversation coherent
    (« bloque les parents » is understood before « Confirmer » is pressed).
    """

    def __init__(self, max_concurrent_updates: int = 64) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        if user is None:
            await coroutine
            return
        # Tasks reach this point in arrival order (FIFO scheduling, fair semaphore) and
        # asyncio.Lock wakes its waiters in FIFO order, so one user's updates keep their order.
        lock = self._locks.setdefault(user.id, asyncio.Lock())
        self._waiting[user.id] = self._waiting.get(user.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[user.id] -= 1
            if not self._waiting[user.id]:
                del self._waiting[user.id]
                del self._locks[user.id]

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Nothing to free."""


# -- the adapter -----------------------------------------------------------------------------


class AddressedToBot(filters.MessageFilter):
    """Private chats, or group messages that mention the bot or reply to one of its messages."""

    def filter(self, message: Message) -> bool:
        if message.chat.type == ChatType.PRIVATE:
            return True
        bot = message.get_bot()
        author = message.reply_to_message.from_user if message.reply_to_message else None
        if author is not None and author.id == bot.id:
            return True
        mention = f"@{bot.username}".lower()
        for kind, fragment in _entity_texts(message):
            if kind == MessageEntityType.MENTION and fragment.lower() == mention:
                return True
            if kind == MessageEntityType.BOT_COMMAND and fragment.lower().endswith(mention):
                return True
        return False


def _entity_texts(message: Message) -> Iterable[tuple[str, str]]:
    # parse_entities handles Telegram's UTF-16 offsets.
    for entity, fragment in message.parse_entities().items():
        yield entity.type, fragment
    for entity, fragment in message.parse_caption_entities().items():
        yield entity.type, fragment


ADDRESSED = AddressedToBot(name="AddressedToBot")
# Service messages (members joining, pinned message…) are not something a user said.
UNSUPPORTED_CONTENT = ~filters.TEXT & ~filters.StatusUpdate.ALL

# Checked in order: an animation also carries a document, a venue a location.
_ATTACHMENT_KINDS = (
    "animation",
    "sticker",
    "photo",
    "video_note",
    "video",
    "voice",
    "audio",
    "document",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
)


def _attachment_kind(message: Message) -> str:
    return next((kind for kind in _ATTACHMENT_KINDS if getattr(message, kind, None)), "other")


def _clean_text(text: str, username: str | None) -> str:
    """The text as the core expects it: without the bot's @mention or command suffix."""
    if not username:
        return text.strip()
    name = re.escape(username)
    text = re.sub(rf"^(/\w+)@{name}\b", r"\1", text.strip(), flags=re.IGNORECASE)
    text = re.sub(rf"(?<![\w@])@{name}\b[,:]?", " ", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _keyboard(buttons: list[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    width = 2 if all(len(button.label) <= SHORT_LABEL for button in buttons) else 1
    keys = [InlineKeyboardButton(button.label, callback_data=button.id) for button in buttons]
    return InlineKeyboardMarkup([keys[i : i + width] for i in range(0, len(keys), width)])


@dataclass(frozen=True)
class _Destination:
    """Where replies go: the chat, its forum topic, and the message answered in a group."""

    chat_id: int
    thread_id: int | None = None
    quote: int | None = None

    @classmethod
    def of(cls, message: MaybeInaccessibleMessage, *, quote: bool) -> _Destination:
        # An InaccessibleMessage (pressed button on a message older than 48 h) has no topic.
        topic = getattr(message, "is_topic_message", False)
        thread = getattr(message, "message_thread_id", None) if topic else None
        # In a group several people talk: quoting says whom the answer is for.
        in_group = message.chat.type != ChatType.PRIVATE
        return cls(message.chat.id, thread, message.message_id if quote and in_group else None)


class TelegramAdapter:
    """Holds the core and the flood guard; its methods are the PTB callbacks."""

    def __init__(self, assistant: Core, flood_guard: FloodGuard) -> None:
        self.assistant = assistant
        self.flood_guard = flood_guard

    # -- handlers ----------------------------------------------------------------------------

    async def guard_floods(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stop a user who sends too much, before any other handler runs."""
        user = update.effective_user
        if user is None:
            return
        verdict = self.flood_guard.check(user.id)
        if verdict == "pass":
            return
        if update.callback_query is not None:
            # The press is not processed, but Telegram's spinner must still stop.
            await _answer_quietly(update)
        if verdict == "warn":
            log.info("flood guard: muting user %s for %.0f s", user.id, self.flood_guard.window)
            message = update.effective_message
            if message is not None:
                await self._send(context, _Destination.of(message, quote=False), Reply(SLOW_DOWN))
        raise ApplicationHandlerStop

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Forward a text message or a command, verbatim, to the core."""
        message = update.effective_message
        assert message is not None and message.text is not None
        text = _clean_text(message.text, context.bot.username)
        outcome = self._ask(update, text=text)
        await self._deliver(context, update, outcome, _Destination.of(message, quote=True))

    async def on_unsupported(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Tell the core about a photo, sticker, edit…: it answers that it reads text."""
        message = update.effective_message
        assert message is not None
        kind = "edited_message" if update.edited_message else _attachment_kind(message)
        outcome = self._ask(update, unsupported=kind)
        await self._deliver(context, update, outcome, _Destination.of(message, quote=True))

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Forward a button press (its opaque id) to the core; edit the pressed message."""
        query = update.callback_query
        assert query is not None
        # Answered first and always: it stops the spinner even if the core or a send fails.
        await _answer_quietly(update)
        message = query.message
        if query.data is None or message is None:
            return
        outcome = self._ask(update, press=query.data)
        pressed = message if isinstance(message, Message) else None
        await self._deliver(
            context, update, outcome, _Destination.of(message, quote=False), pressed=pressed
        )

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

    def _ask(self, update: Update, **fields: Any) -> Outcome:
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        incoming = Incoming(
            speaker_key=f"tg:{user.id}",
            chat_key=f"tg:{chat.id}",
            private_chat=chat.type == ChatType.PRIVATE,
            # Unaddressed group messages never reach the handlers (AddressedToBot filter).
            addressed=True,
            display_name=user.full_name,
            **fields,
        )
        # Called on the event loop, not in a thread: the core is synchronous and takes about a
        # millisecond, and its store (SQLAlchemy sessions, thread-local transactions) is then
        # only ever used from one thread; other conversations' network waits still overlap.
        return self.assistant.handle(incoming)

    async def _deliver(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        update: Update,
        outcome: Outcome,
        destination: _Destination,
        *,
        pressed: Message | None = None,
    ) -> None:
        replies = [reply for reply in outcome.replies if reply.text.strip()]
        if replies and pressed is not None and replies[0].edits_pressed:
            await self._edit(context, pressed, destination, replies.pop(0))
        for reply in replies:
            await self._send(context, destination, reply)
        if outcome.menu and update.effective_user is not None:
            await _apply_menu(context, update.effective_user.id, outcome.menu)

    async def _send(
        self, context: ContextTypes.DEFAULT_TYPE, destination: _Destination, reply: Reply
    ) -> None:
        chunks = split_html(reply.text)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await context.bot.send_message(
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


async def _answer_quietly(update: Update) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer()
    except BadRequest as error:
        # "query is too old" after a restart: the press itself is still worth processing.
        log.info("could not answer callback query %s: %s", query.id, error.message)


async def _apply_menu(context: ContextTypes.DEFAULT_TYPE, user_id: int, menu: str) -> None:
    # A user's private chat with the bot has the user's id, so this scope is their own menu.
    scope = BotCommandScopeChat(user_id)
    try:
        if menu == "director":
            await context.bot.set_my_commands(DIRECTOR_COMMANDS, scope=scope)
        elif menu == "public":
            await context.bot.delete_my_commands(scope=scope)
    except TelegramError:
        # The menu is a convenience; the answer has already been sent.
        log.warning("could not set the %s menu of %s", menu, user_id, exc_info=True)


async def _set_public_menu(application: Application) -> None:
    await application.bot.set_my_commands(PUBLIC_COMMANDS, scope=BotCommandScopeDefault())


def base_urls(api_url: str) -> tuple[str, str]:
    """The Bot API base URL and the matching file URL (…/bot → …/file/bot)."""
    api_url = api_url.rstrip("/")
    if api_url.endswith("/bot"):
        return api_url, api_url[: -len("/bot")] + "/file/bot"
    return api_url, api_url + "/file/bot"


def build_application(
    settings: Settings,
    assistant: Core,
    *,
    rate_limiter: bool = True,
    flood_guard: FloodGuard | None = None,
    max_concurrent_updates: int = 64,
) -> Application:
    """The PTB Application with every handler wired to the core (token checked here)."""
    token = settings.require_telegram_token()
    base_url, base_file_url = base_urls(settings.telegram_api_url)
    adapter = TelegramAdapter(assistant, flood_guard or FloodGuard())
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(PerUserUpdateProcessor(max_concurrent_updates))
        .post_init(_set_public_menu)
    )
    if rate_limiter:
        # Spreads sends under Telegram's limits and retries once on RetryAfter.
        builder = builder.rate_limiter(AIORateLimiter(max_retries=1))
    application = builder.build()

    new_message = filters.UpdateType.MESSAGE
    # Group -1 runs first and can stop everything else (ApplicationHandlerStop).
    application.add_handlers(
        [
            MessageHandler(
                filters.UpdateType.MESSAGES & (ADDRESSED | filters.COMMAND), adapter.guard_floods
            ),
            CallbackQueryHandler(adapter.guard_floods),
        ],
        group=-1,
    )
    application.add_handlers(
        [
            # First: an edited text must not be taken for a new message.
            MessageHandler(filters.UpdateType.EDITED_MESSAGE & ADDRESSED, adapter.on_unsupported),
            CommandHandler(KNOWN_COMMANDS, adapter.on_text, filters=new_message),
            MessageHandler(new_message & filters.TEXT & ADDRESSED, adapter.on_text),
            MessageHandler(new_message & UNSUPPORTED_CONTENT & ADDRESSED, adapter.on_unsupported),
            CallbackQueryHandler(adapter.on_press),
        ]
    )
    application.add_error_handler(adapter.on_error)
    return application


# -- entry points --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookOptions:
    listen: str
    port: int
    url_path: str
    webhook_url: str
    secret_token: str


_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def webhook_options(settings: Settings) -> WebhookOptions:
    """Where to listen and what to tell Telegram; refuses to run without a secret."""
    if not settings.webhook_url:
        raise SettingsError(
            "WEBHOOK_URL manquant : donnez l'adresse publique HTTPS du webhook "
            "(ex. https://assistant.example.org/telegram)."
        )
    url = urlsplit(settings.webhook_url)
    if url.scheme not in ("https", "http") or not url.netloc:
        raise SettingsError("WEBHOOK_URL mal formée : attendu https://hote/chemin.")
    if not settings.webhook_secret:
        raise SettingsError(
            "WEBHOOK_SECRET manquant : le webhook refuse de démarrer sans secret partagé "
            "avec Telegram."
        )
    if not _SECRET.match(settings.webhook_secret):
        raise SettingsError(
            "WEBHOOK_SECRET mal formé : 1 à 256 caractères parmi A-Z, a-z, 0-9, _ et -."
        )
    return WebhookOptions(
        # Behind a reverse proxy: listen on every interface of the container.
        listen="0.0.0.0",  # noqa: S104
        port=settings.port,
        # The proxy forwards the public path unchanged.
        url_path=url.path.strip("/"),
        webhook_url=settings.webhook_url,
        secret_token=settings.webhook_secret,
    )


@contextlib.asynccontextmanager
async def polling_session(application: Application, **polling: Any) -> AsyncIterator[Application]:
    """Long polling inside an already running event loop (tests, bench), in run_polling's order:
    initialize, post_init, updater.start_polling, start; then stop in reverse on exit."""
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, **polling)
        await application.start()
        try:
            yield application
        finally:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
    finally:
        await application.shutdown()


def _assistant(settings: Settings) -> tuple[Core, Any]:
    from bot.app import open_store
    from bot.core.assistant import Assistant

    store = open_store(settings)
    return Assistant.create(settings, store), store


async def _check_token(settings: Settings) -> None:
    """Ask Telegram who we are before starting, so that a refused token or an unreachable API
    surfaces as InvalidToken / NetworkError, not as PTB's bootstrap-loop traceback."""
    base_url, base_file_url = base_urls(settings.telegram_api_url)
    token = settings.require_telegram_token()
    async with Bot(token, base_url=base_url, base_file_url=base_file_url):
        pass  # entering calls getMe


def run_polling(settings: Settings) -> None:
    """Long polling until SIGINT/SIGTERM; pending updates are processed before exit."""
    asyncio.run(_check_token(settings))
    assistant, store = _assistant(settings)
    application = build_application(settings, assistant)
    try:
        # Default stop_signals (SIGINT, SIGTERM, SIGABRT): stop fetching, process what was
        # fetched, confirm it to Telegram; anything not fetched is redelivered next start.
        application.run_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
    finally:
        _dispose(store)


def run_webhook(settings: Settings) -> None:
    """Webhook server on $PORT until SIGINT/SIGTERM; requests need the secret-token header."""
    settings.require_telegram_token()
    options = webhook_options(settings)
    asyncio.run(_check_token(settings))
    assistant, store = _assistant(settings)
    application = build_application(settings, assistant)
    try:
        # PTB answers 403 to any request without the X-Telegram-Bot-Api-Secret-Token header
        # (or with a wrong one) before reading the update. Updates already accepted are
        # processed on SIGTERM; Telegram redelivers those it could not deliver meanwhile.
        application.run_webhook(
            listen=options.listen,
            port=options.port,
            url_path=options.url_path,
            webhook_url=options.webhook_url,
            secret_token=options.secret_token,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
    finally:
        _dispose(store)


def _dispose(store: Any) -> None:
    dispose = getattr(store, "dispose", None)
    if callable(dispose):
        dispose()
