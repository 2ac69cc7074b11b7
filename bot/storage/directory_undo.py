"""The undo operations of the SQL directory, with the ENT's semantics (what entcore's own
routes give back, no more): a mixin of `SqlDirectory`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.storage.tables import (
    ClassMemberRow,
    GroupMemberRow,
    GroupRow,
    Sessions,
    StructureRow,
    UserRow,
    UserStructureRow,
)
from intents.domain import DirectoryFailure, NotFound


def next_position(session: Session, owner_column: Any, owner_id: str) -> int:
    """One past the last position in the owner's list (same table), so that additions append."""
    position = owner_column.class_.position
    highest = session.scalar(select(func.max(position)).where(owner_column == owner_id))
    return (highest if highest is not None else -1) + 1


class UndoOperations:
    """`reattach_to_structure`, `unlink_from_class` and `restore_user` over the database."""

    _store: Sessions

    def reattach_to_structure(self, user_id: str, structure_id: str) -> None:
        """Back in the school, as `PUT /directory/structure/:sid/link/:uid` does: the school
        link and the school's profile group of the account's profile (in entcore, being in
        a school is being in it); the classes and other groups the detach removed are not
        given back."""
        with self._store.session() as session:
            user = session.get(UserRow, user_id)
            if session.get(StructureRow, structure_id) is None:
                raise NotFound(f"structure « {structure_id} » introuvable")
            if user is None or user.deleted or user.pre_deleted:
                # entcore answers 404 for an account unknown or being deleted.
                raise DirectoryFailure(
                    "Ce compte n'a pas pu être remis dans l'école : il est introuvable ou en "
                    "cours de suppression."
                )
            if session.get(UserStructureRow, (user_id, structure_id)) is None:
                position = next_position(session, col(UserStructureRow.user_id), user_id)
                session.add(
                    UserStructureRow(user_id=user_id, structure_id=structure_id, position=position)
                )
            for group_id in _profile_groups(session, structure_id, user.profile):
                if session.get(GroupMemberRow, (group_id, user_id)) is None:
                    position = next_position(session, col(GroupMemberRow.group_id), group_id)
                    session.add(
                        GroupMemberRow(group_id=group_id, user_id=user_id, position=position)
                    )
            session.flush()
            session.expire_all()

    def unlink_from_class(self, user_id: str, class_id: str) -> None:
        """Out of the class (`DELETE /directory/class/:classId/unlink/:userId`), still in its
        school; nothing to do when the account is not in it."""
        with self._store.session() as session:
            session.execute(
                delete(ClassMemberRow)
                .where(col(ClassMemberRow.user_id) == user_id)
                .where(col(ClassMemberRow.class_id) == class_id)
            )
            session.flush()
            session.expire_all()

    def restore_user(self, user_id: str) -> None:
        """Clear a pre-deletion (`PUT /directory/restore/user`); an account deleted for good
        cannot come back (DirectoryFailure), a live one is left as it is."""
        with self._store.session() as session:
            user = session.get(UserRow, user_id)
            if user is None:
                raise NotFound(f"utilisateur « {user_id} » introuvable")
            if user.deleted:
                raise DirectoryFailure(
                    "Ce compte a été supprimé définitivement : il ne peut pas être restauré."
                )
            user.pre_deleted = None
            session.flush()


def _profile_groups(session: Session, structure_id: str, profile: str) -> list[str]:
    """The school's profile groups of that profile: the local copy keeps no profile filter
    on a group, so a profile group whose members all have that profile."""
    found = []
    groups = session.scalars(
        select(col(GroupRow.id))
        .where(col(GroupRow.structure_id) == structure_id)
        .where(col(GroupRow.type) == "ProfileGroup")
    ).all()
    for group_id in groups:
        profiles = set(
            session.scalars(
                select(col(UserRow.profile))
                .join(GroupMemberRow, col(GroupMemberRow.user_id) == col(UserRow.id))
                .where(col(GroupMemberRow.group_id) == group_id)
            )
        )
        if profiles == {profile}:
            found.append(group_id)
    return found
