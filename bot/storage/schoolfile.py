"""School directory files (shared/school-format.md): import, all or nothing, and export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from bot.storage.school_rules import load_file, refusal, validate
from bot.storage.store import Store
from bot.storage.tables import (
    ClassMemberRow,
    ClassRow,
    FavoriteMemberRow,
    FavoriteRow,
    GroupMemberRow,
    GroupRow,
    IndividualBlockRow,
    StructureRow,
    UserRow,
    UserStructureRow,
    table_of,
)


@dataclass(frozen=True)
class ImportSummary:
    """How many records an import wrote."""

    structures: int
    classes: int
    users: int
    groups: int
    share_favorites: int

    def line(self) -> str:
        """One French sentence for the operator."""
        return (
            f"Annuaire importé : {self.structures} structure(s), {self.classes} classe(s), "
            f"{self.users} compte(s), {self.groups} groupe(s), "
            f"{self.share_favorites} favori(s) de partage."
        )


# --- import -----------------------------------------------------------------------------


def import_school(store: Store, source: str | Path | dict[str, Any]) -> ImportSummary:
    """Load a school file (its path, or its parsed JSON), all or nothing.

    The file is validated first and refused whole on the first broken rule. When the database
    already holds a directory, its content (structures, classes, users, groups, favourites) is
    REPLACED by the file's, in the same transaction; audit log, account links and conversation
    states are kept. Only the fields a feature uses are stored: a pupil's `birth_date` and a
    relative's `children` are checked, then dropped (README « Données personnelles »).
    """
    data = load_file(source) if isinstance(source, str | Path) else source
    errors = validate(data)
    if errors:
        raise refusal(errors)

    structure_rows: list[dict] = []
    class_rows: list[dict] = []
    for position, structure in enumerate(data["structures"]):
        structure_rows.append(
            {
                "id": structure["id"],
                "name": structure["name"],
                "city": structure["city"],
                "circonscription": structure["circonscription"],
                "position": position,
            }
        )
        for school_class in structure["classes"]:
            class_rows.append(
                {
                    "id": school_class["id"],
                    "structure_id": structure["id"],
                    "name": school_class["name"],
                    "level": school_class["level"],
                    "position": len(class_rows),
                }
            )
    user_rows: list[dict] = []
    membership_rows: list[dict] = []
    class_member_rows: list[dict] = []
    guessed = blocked_alone(data["users"])
    alone_rows = [
        {"user_id": user["id"]}
        for user in data["users"]
        if user.get("blocked_individually", user["id"] in guessed)
    ]
    for position, user in enumerate(data["users"]):
        user_rows.append(
            {
                "id": user["id"],
                "login": user["login"],
                "first_name": user["first_name"],
                "last_name": user["last_name"],
                "profile": user["profile"],
                "source": user["source"],
                "activated": user["activated"],
                "blocked": user["blocked"],
                "home_structure": user["home_structure"],
                "functions": json.dumps(user["functions"]),
                "deleted": user.get("deleted"),
                "pre_deleted": user.get("pre_deleted"),
                "position": position,
            }
        )
        membership_rows += [
            {"user_id": user["id"], "structure_id": structure_id, "position": index}
            for index, structure_id in enumerate(user["structures"])
        ]
        class_member_rows += [
            {"user_id": user["id"], "class_id": class_id, "position": index}
            for index, class_id in enumerate(user["classes"])
        ]
    group_rows: list[dict] = []
    group_member_rows: list[dict] = []
    for position, group in enumerate(data.get("groups", [])):
        group_rows.append(
            {
                "id": group["id"],
                "structure_id": group["structure"],
                "name": group["name"],
                "type": group["type"],
                "position": position,
            }
        )
        group_member_rows += [
            {"group_id": group["id"], "user_id": member, "position": index}
            for index, member in enumerate(group["members"])
        ]
    favorite_rows: list[dict] = []
    favorite_member_rows: list[dict] = []
    for position, favorite in enumerate(data.get("share_favorites", [])):
        favorite_rows.append(
            {
                "id": favorite["id"],
                "owner_id": favorite["owner"],
                "name": favorite["name"],
                "position": position,
            }
        )
        favorite_member_rows += [
            {"favorite_id": favorite["id"], "user_id": member, "position": index}
            for index, member in enumerate(favorite["members"])
        ]

    with store.transaction(), store.session() as session:
        store.clear_directory(session)
        # Parents before children so that foreign keys hold at every statement.
        for table, rows in (
            (StructureRow, structure_rows),
            (ClassRow, class_rows),
            (UserRow, user_rows),
            (IndividualBlockRow, alone_rows),
            (UserStructureRow, membership_rows),
            (ClassMemberRow, class_member_rows),
            (GroupRow, group_rows),
            (GroupMemberRow, group_member_rows),
            (FavoriteRow, favorite_rows),
            (FavoriteMemberRow, favorite_member_rows),
        ):
            if rows:
                session.execute(insert(table), rows)
        session.expire_all()
    return ImportSummary(
        structures=len(structure_rows),
        classes=len(class_rows),
        users=len(user_rows),
        groups=len(group_rows),
        share_favorites=len(favorite_rows),
    )


# --- export -----------------------------------------------------------------------------


def export_school(store: Store) -> dict:
    """The directory as a school file, reflecting every change made since the import."""
    with store.session() as session:
        classes_by_structure: dict[str, list[dict]] = {}
        for class_row in session.scalars(select(ClassRow).order_by(col(ClassRow.position))):
            classes_by_structure.setdefault(class_row.structure_id, []).append(
                {"id": class_row.id, "name": class_row.name, "level": class_row.level}
            )
        structures = [
            {
                "id": row.id,
                "name": row.name,
                "city": row.city,
                "circonscription": row.circonscription,
                "classes": classes_by_structure.get(row.id, []),
            }
            for row in session.scalars(select(StructureRow).order_by(col(StructureRow.position)))
        ]
        memberships = _lists(session, UserStructureRow, "user_id", "structure_id")
        class_members = _lists(session, ClassMemberRow, "user_id", "class_id")
        alone = set(session.scalars(select(col(IndividualBlockRow.user_id))))
        users = []
        for user_row in session.scalars(
            select(UserRow).order_by(col(UserRow.position), col(UserRow.id))
        ):
            user: dict[str, Any] = {
                "id": user_row.id,
                "login": user_row.login,
                "first_name": user_row.first_name,
                "last_name": user_row.last_name,
                "profile": user_row.profile,
                "source": user_row.source,
                "activated": user_row.activated,
                "blocked": user_row.blocked,
                "structures": memberships.get(user_row.id, []),
                "home_structure": user_row.home_structure,
                "classes": class_members.get(user_row.id, []),
                "functions": json.loads(user_row.functions),
            }
            if user_row.deleted is not None:
                user["deleted"] = user_row.deleted
            if user_row.pre_deleted is not None:
                user["pre_deleted"] = user_row.pre_deleted
            users.append(user)
        # Written only where a reader of the file would guess wrong: files stay as they were.
        guessed = blocked_alone(users)
        for user in users:
            if (user["id"] in alone) != (user["id"] in guessed):
                user["blocked_individually"] = user["id"] in alone
        group_members = _lists(session, GroupMemberRow, "group_id", "user_id")
        groups = [
            {
                "id": row.id,
                "structure": row.structure_id,
                "name": row.name,
                "type": row.type,
                "members": group_members.get(row.id, []),
            }
            for row in session.scalars(select(GroupRow).order_by(col(GroupRow.position)))
        ]
        favorite_members = _lists(session, FavoriteMemberRow, "favorite_id", "user_id")
        favorites = [
            {
                "id": row.id,
                "owner": row.owner_id,
                "name": row.name,
                "members": favorite_members.get(row.id, []),
            }
            for row in session.scalars(select(FavoriteRow).order_by(col(FavoriteRow.position)))
        ]
    return {
        "structures": structures,
        "users": users,
        "groups": groups,
        "share_favorites": favorites,
    }


def blocked_alone(users: list[dict[str, Any]]) -> set[str]:
    """The blocked accounts of a school file that were blocked one by one, when the file does
    not say (`blocked_individually`): those whose profile is not blocked as a whole, that is
    with a live account of the same profile and school still unblocked."""
    open_profiles = {
        (structure, user["profile"])
        for user in users
        if not user["blocked"] and not user.get("deleted") and not user.get("pre_deleted")
        for structure in user["structures"]
    }
    return {
        user["id"]
        for user in users
        if user["blocked"]
        and any((structure, user["profile"]) in open_profiles for structure in user["structures"])
    }


def _lists(session: Session, model: type[SQLModel], owner: str, item: str) -> dict[str, list[str]]:
    """A whole link table as owner id → ordered item ids, in one query."""
    columns = table_of(model).c
    result: dict[str, list[str]] = {}
    for owner_id, item_id in session.execute(
        select(columns[owner], columns[item]).order_by(columns[owner], columns.position)
    ):
        result.setdefault(owner_id, []).append(item_id)
    return result
