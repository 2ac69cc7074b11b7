"""Messages in and out of the core, free of any transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# The one apology, for any failure a user must not see the detail of.
APOLOGY = (
    "Désolé, un problème technique m'empêche de répondre. Réessayez dans un instant ; si cela "
    "persiste, contactez votre eRun de circonscription."
)


class Menu(StrEnum):
    """The command menu a speaker sees, by role."""

    PUBLIC = "public"
    DIRECTOR = "director"
    ERUN = "erun"


@dataclass(frozen=True)
class Incoming:
    """One message from a transport: text typed, or a button pressed (its opaque id)."""

    speaker_key: str
    text: str | None = None
    press: str | None = None
    private_chat: bool = True
    # In a group chat the assistant only answers when addressed.
    addressed: bool = True
    # Set for what the assistant cannot read (photo, voice, sticker, document, location,
    # edited message…): the core answers politely that it reads text.
    unsupported: str | None = None
    # The transport's id of the update (Telegram's update_id): one delivered twice is
    # answered once (ConversationState.first_delivery).
    update_id: int | None = None


@dataclass(frozen=True)
class Button:
    label: str
    id: str
    # A link opened by the button (the ENT's sign-in page) instead of a press sent back.
    url: str | None = None


@dataclass
class Reply:
    """One message back to the user: Telegram-flavoured HTML and optional buttons."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    # The reply replaces the message that carried the pressed button (Telegram edits it).
    edits_pressed: bool = False
    # Set on a reply whose buttons the core may void later (a confirmation): the channel
    # tells `Assistant.delivered` which of its messages carried it.
    key: str | None = None
    # A PNG shown with the text (a /stats chart): Telegram sends a photo captioned with the
    # text when it fits, the console writes it to a file and prints its path.
    image: bytes | None = None


class ActionOutcome(StrEnum):
    """How a pending change ended, as written in its audit entry (and counted in /metrics)."""

    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass
class Outcome:
    """What the core answers to one incoming message."""

    replies: list[Reply]
    intent: str | None = None
    confidence: float = 0.0
    entities: dict = field(default_factory=dict)
    # Set when the speaker's command menu must change (link, unlink).
    menu: Menu | None = None
    # The channel's references (given to `Assistant.delivered`) of earlier messages whose
    # buttons no longer do anything (confirmation expired, replaced, answered): take them away.
    void_buttons: list[str] = field(default_factory=list)
    # Set when this message ended a pending change (confirmed, refused, failed, expired,
    # cancelled): what its audit entry says.
    action: ActionOutcome | None = None
    # Jobs due now were scheduled (an eRun's answer to deliver): run them without waiting
    # for the next tick.
    jobs_due: bool = False
