"""From a Telegram update to the core's `Incoming`: which messages are meant for the bot, and
what they say once the bot's own name is taken out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.ext import filters

from bot.core.messages import Incoming


class AddressedToBot(filters.MessageFilter):
    """Private chats, or group messages that mention the bot or reply to one of its messages."""

    def filter(self, message: Message) -> bool:
        """Whether the bot is spoken to."""
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


def attachment_kind(message: Message) -> str:
    """What the message carries instead of text (« photo », « voice »…)."""
    return next((kind for kind in _ATTACHMENT_KINDS if getattr(message, kind, None)), "other")


def clean_text(text: str, username: str | None) -> str:
    """The text as the core expects it: without the bot's @mention or command suffix."""
    if not username:
        return text.strip()
    name = re.escape(username)
    text = re.sub(rf"^(/\w+)@{name}\b", r"\1", text.strip(), flags=re.IGNORECASE)
    text = re.sub(rf"(?<![\w@])@{name}\b[,:]?", " ", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def sender_id(update: Update) -> int | None:
    """Who speaks: the person, or the chat a message was sent on behalf of (a channel posting
    in a group has no `from`; an anonymous admin's `from` is a placeholder shared by every
    group, so the group itself speaks). None when nobody sent the update."""
    sender = update.effective_sender
    return sender.id if sender is not None else None


def incoming_of(update: Update, **fields: Any) -> Incoming | None:
    """The core's view of an update: who, in which chat, and `fields` (text, press…); None
    for an update without sender or chat, which nobody could be answered about."""
    sender, chat = sender_id(update), update.effective_chat
    if sender is None or chat is None:
        return None
    return Incoming(
        # Chats have negative ids, people positive ones: the keys never collide.
        speaker_key=f"telegram:{sender}",
        private_chat=chat.type == ChatType.PRIVATE,
        # Unaddressed group messages never reach the handlers (AddressedToBot filter).
        addressed=True,
        update_id=update.update_id,
        **fields,
    )
