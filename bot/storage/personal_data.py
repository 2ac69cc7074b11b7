"""Access requests: everything stored about one directory account, as JSON-ready data
(`python -m bot accounts export LOGIN`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.storage.audit import Names, to_json_line
from bot.storage.store import Store
from bot.storage.tables import (
    AccountLinkRow,
    ConversationStateRow,
    FailedLinkAttemptRow,
    FavoriteMemberRow,
    FavoriteRow,
    GroupMemberRow,
    GroupRow,
    LinkCodeRow,
    from_db_time,
)
from intents.domain import User


def _at(moment: datetime | None) -> str | None:
    """An aware ISO time, as the audit's JSON writes it."""
    return from_db_time(moment).isoformat(timespec="seconds") if moment is not None else None


def account_export(store: Store, login: str) -> dict[str, Any] | None:
    """What is stored about that account: its directory record, its Telegram links, its link
    codes (times only), the failed attempts, conversation states and tickets of its linked
    chats, and the audit entries where it acted (a linked chat, or the console) or was a
    target; None for a login the directory does not know."""
    user = store.directory.user_by_login(login)
    if user is None:
        return None
    with store.session() as session:
        links = list(
            session.scalars(
                select(AccountLinkRow)
                .where(col(AccountLinkRow.login) == login)
                .order_by(col(AccountLinkRow.linked_at), col(AccountLinkRow.id))
            )
        )
        speakers = [link.speaker_key for link in links]
        codes = session.scalars(
            select(LinkCodeRow)
            .where(col(LinkCodeRow.login) == login)
            .order_by(col(LinkCodeRow.created_at), col(LinkCodeRow.id))
        )
        attempts = session.scalars(
            select(FailedLinkAttemptRow)
            .where(col(FailedLinkAttemptRow.speaker_key).in_(speakers))
            .order_by(col(FailedLinkAttemptRow.at), col(FailedLinkAttemptRow.id))
        )
        states = session.scalars(
            select(ConversationStateRow)
            .where(col(ConversationStateRow.speaker_key).in_(speakers))
            .order_by(col(ConversationStateRow.speaker_key))
        )
        export: dict[str, Any] = {
            "login": login,
            "directory": _record(store, user),
            "account_links": [
                {"speaker_key": link.speaker_key, "linked_at": _at(link.linked_at)}
                for link in links
            ],
            "link_codes": [
                {
                    "created_at": _at(code.created_at),
                    "expires_at": _at(code.expires_at),
                    "used_at": _at(code.used_at),
                }
                for code in codes
            ],
            "failed_link_attempts": [
                {"speaker_key": attempt.speaker_key, "at": _at(attempt.at)} for attempt in attempts
            ],
            "conversations": [
                {
                    "speaker_key": state.speaker_key,
                    "updated_at": _at(state.updated_at),
                    "state": json.loads(state.data),
                }
                for state in states
            ],
        }
    export["tickets"] = [
        {
            "speaker_key": ticket.speaker_key,
            "opened_at": _at(ticket.opened_at),
            "question": ticket.question,
            "status": ticket.status,
            "structure_id": ticket.structure_id,
            "handled_at": _at(ticket.handled_at),
            "resolution": ticket.resolution.value if ticket.resolution else None,
        }
        for key in [*speakers, f"console:{login}"]
        for ticket in store.tickets.of_speaker(key)
    ]
    entries = store.audit.involving([*speakers, f"console:{login}"], user.id)
    names = Names.of(store.directory, entries)
    export["audit"] = [to_json_line(entry, names) for entry in entries]
    return export


def _record(store: Store, user: User) -> dict[str, Any]:
    """The account as the directory keeps it, with its groups and its share favourites."""
    with store.session() as session:
        groups = session.execute(
            select(col(GroupRow.id), col(GroupRow.structure_id), col(GroupRow.name))
            .join(GroupMemberRow, col(GroupMemberRow.group_id) == col(GroupRow.id))
            .where(col(GroupMemberRow.user_id) == user.id)
            .order_by(col(GroupRow.position))
        ).all()
        favorites = list(
            session.scalars(
                select(FavoriteRow)
                .where(col(FavoriteRow.owner_id) == user.id)
                .order_by(col(FavoriteRow.position))
            )
        )
        members = {
            favorite.id: list(
                session.scalars(
                    select(col(FavoriteMemberRow.user_id))
                    .where(col(FavoriteMemberRow.favorite_id) == favorite.id)
                    .order_by(col(FavoriteMemberRow.position))
                )
            )
            for favorite in favorites
        }
    return {
        "id": user.id,
        "login": user.login,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "profile": user.profile,
        "source": user.source,
        "activated": user.activated,
        "blocked": user.blocked,
        "blocked_individually": user.blocked_individually,
        "structures": list(user.structures),
        "home_structure": user.home_structure,
        "classes": list(user.classes),
        "functions": list(user.functions),
        "deleted": user.deleted,
        "pre_deleted": user.pre_deleted,
        "groups": [{"id": g, "structure": s, "name": n} for g, s, n in groups],
        "share_favorites": [
            {"id": f.id, "name": f.name, "members": members[f.id]} for f in favorites
        ],
    }
