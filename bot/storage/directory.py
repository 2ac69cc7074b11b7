"""The directory stored in the assistant's own database (the SQL `Directory`)."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import date
from typing import Literal

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.storage.directory_undo import UndoOperations, next_position
from bot.storage.records import chunks, group_record, structure_record, user_records
from bot.storage.tables import (
    ClassMemberRow,
    ClassRow,
    FavoriteMemberRow,
    FavoriteRow,
    GroupMemberRow,
    GroupRow,
    IndividualBlockRow,
    RemovedGroupRow,
    Sessions,
    StructureRow,
    UserRow,
    UserStructureRow,
)
from intents.domain import (
    BlockResult,
    Group,
    NotFound,
    RemovedGroup,
    SchoolClass,
    ShareFavorite,
    Structure,
    User,
)


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by dashes (« Chorale 2025-2026 » → chorale-2025-2026)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40].strip("-") or "groupe"


def _live() -> ColumnElement[bool]:
    return col(UserRow.deleted).is_(None) & col(UserRow.pre_deleted).is_(None)


class SqlDirectory(UndoOperations):
    """The directory stored in the assistant's database; stores faithfully, enforces no policy
    (its undo operations: bot/storage/directory_undo.py).

    Outside transaction() each change is committed on its own; inside, changes and reads share
    the block's session, so reads see the block's uncommitted writes.
    """

    def __init__(self, store: Sessions) -> None:
        self._store = store

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together, or nothing if an exception escapes (re-raised)."""
        return self._store.transaction()

    # --- reads ----------------------------------------------------------------------------

    def structure(self, structure_id: str) -> Structure | None:
        """The structure with this id (UAI), if any."""
        with self._store.session() as session:
            row = session.get(StructureRow, structure_id)
            return structure_record(row) if row is not None else None

    def structures(self) -> list[Structure]:
        """Every structure, in file order."""
        with self._store.session() as session:
            rows = session.scalars(select(StructureRow).order_by(col(StructureRow.position)))
            return [structure_record(row) for row in rows]

    def classes(self, structure_id: str) -> list[SchoolClass]:
        """Every class of the structure, empty ones included (check pupil_count)."""
        with self._store.session() as session:
            counts = dict(
                session.execute(
                    select(col(ClassMemberRow.class_id), func.count())
                    .join(UserRow, col(UserRow.id) == col(ClassMemberRow.user_id))
                    .join(ClassRow, col(ClassRow.id) == col(ClassMemberRow.class_id))
                    .where(col(ClassRow.structure_id) == structure_id)
                    .where(col(UserRow.profile) == "Student")
                    .where(_live())
                    .group_by(col(ClassMemberRow.class_id))
                ).all()
            )
            rows = session.scalars(
                select(ClassRow)
                .where(col(ClassRow.structure_id) == structure_id)
                .order_by(col(ClassRow.position))
            )
            return [
                SchoolClass(
                    id=row.id,
                    structure_id=row.structure_id,
                    name=row.name,
                    level=row.level,
                    pupil_count=counts.get(row.id, 0),
                )
                for row in rows
            ]

    def users(
        self,
        structure_id: str,
        profiles: Iterable[str] | None = None,
        include_removed: bool = False,
    ) -> list[User]:
        """Members of the structure, optionally of some profiles; live accounts unless asked."""
        with self._store.session() as session:
            query = (
                select(UserRow)
                .join(UserStructureRow, col(UserStructureRow.user_id) == col(UserRow.id))
                .where(col(UserStructureRow.structure_id) == structure_id)
                .order_by(col(UserRow.position), col(UserRow.id))
            )
            if profiles is not None:
                query = query.where(col(UserRow.profile).in_(list(profiles)))
            if not include_removed:
                query = query.where(_live())
            return user_records(session, list(session.scalars(query)))

    def user(self, user_id: str) -> User | None:
        """The account with this id, removed or not."""
        with self._store.session() as session:
            row = session.get(UserRow, user_id)
            return user_records(session, [row])[0] if row is not None else None

    def user_by_login(self, login: str) -> User | None:
        """The account with this login, removed or not."""
        with self._store.session() as session:
            row = session.scalars(select(UserRow).where(col(UserRow.login) == login)).first()
            return user_records(session, [row])[0] if row is not None else None

    def groups(self, structure_id: str) -> list[Group]:
        """Every group of the structure, in file order then creation order."""
        with self._store.session() as session:
            rows = list(
                session.scalars(
                    select(GroupRow)
                    .where(col(GroupRow.structure_id) == structure_id)
                    .order_by(col(GroupRow.position))
                )
            )
            members: dict[str, list[str]] = defaultdict(list)
            for group_id, user_id in session.execute(
                select(col(GroupMemberRow.group_id), col(GroupMemberRow.user_id))
                .join(GroupRow, col(GroupRow.id) == col(GroupMemberRow.group_id))
                .where(col(GroupRow.structure_id) == structure_id)
                .order_by(col(GroupMemberRow.group_id), col(GroupMemberRow.position))
            ):
                members[group_id].append(user_id)
            return [group_record(row, members[row.id]) for row in rows]

    def group(self, group_id: str) -> Group | None:
        """The group with this id, if it still exists."""
        with self._store.session() as session:
            row = session.get(GroupRow, group_id)
            if row is None:
                return None
            return group_record(row, _group_member_ids(session, group_id))

    def share_favorites(self, structure_id: str) -> list[ShareFavorite]:
        """Share favourites owned by members of the structure."""
        with self._store.session() as session:
            owners = select(col(UserStructureRow.user_id)).where(
                col(UserStructureRow.structure_id) == structure_id
            )
            rows = list(
                session.scalars(
                    select(FavoriteRow)
                    .where(col(FavoriteRow.owner_id).in_(owners))
                    .order_by(col(FavoriteRow.position))
                )
            )
            members: dict[str, list[str]] = defaultdict(list)
            for favorite_id, user_id in session.execute(
                select(col(FavoriteMemberRow.favorite_id), col(FavoriteMemberRow.user_id))
                .join(FavoriteRow, col(FavoriteRow.id) == col(FavoriteMemberRow.favorite_id))
                .where(col(FavoriteRow.owner_id).in_(owners))
                .order_by(col(FavoriteMemberRow.favorite_id), col(FavoriteMemberRow.position))
            ):
                members[favorite_id].append(user_id)
            return [
                ShareFavorite(
                    id=row.id,
                    owner_id=row.owner_id,
                    name=row.name,
                    member_ids=tuple(members[row.id]),
                )
                for row in rows
            ]

    # --- changes --------------------------------------------------------------------------

    def set_blocked(
        self, structure_id: str, profiles: Iterable[str], blocked: bool, keep: Iterable[str] = ()
    ) -> BlockResult:
        """Block or unblock the live accounts of these profiles in the structure. As on the
        ENT, unblocking a profile lifts individual blocks too, except for `keep`."""
        kept_ids = set(keep) if not blocked else set()
        with self._store.session() as session:
            rows = session.execute(
                select(col(UserRow.id), col(UserRow.blocked))
                .join(UserStructureRow, col(UserStructureRow.user_id) == col(UserRow.id))
                .where(col(UserStructureRow.structure_id) == structure_id)
                .where(col(UserRow.profile).in_(list(profiles)))
                .where(_live())
                .order_by(col(UserRow.position), col(UserRow.id))
            ).all()
            kept = tuple(user_id for user_id, flag in rows if flag and user_id in kept_ids)
            changed = tuple(
                user_id for user_id, flag in rows if flag != blocked and user_id not in kept_ids
            )
            unchanged = tuple(user_id for user_id, flag in rows if flag == blocked)
            for chunk in chunks(changed):
                session.execute(
                    update(UserRow)
                    .where(col(UserRow.id).in_(chunk))
                    .values(blocked=blocked)
                    .execution_options(synchronize_session=False)
                )
                if not blocked:
                    session.execute(
                        delete(IndividualBlockRow).where(
                            col(IndividualBlockRow.user_id).in_(chunk)
                        )
                    )
            session.expire_all()
            return BlockResult(changed=changed, unchanged=unchanged, kept=kept)

    def attach_teacher_to_class(self, user_id: str, class_id: str) -> None:
        """Put the user in the class (and in its structure, as the ENT does); idempotent."""
        with self._store.session() as session:
            _require_user(session, user_id)
            school_class = session.get(ClassRow, class_id)
            if school_class is None:
                raise NotFound(f"classe « {class_id} » introuvable")
            if session.get(UserStructureRow, (user_id, school_class.structure_id)) is None:
                session.add(
                    UserStructureRow(
                        user_id=user_id,
                        structure_id=school_class.structure_id,
                        position=next_position(session, col(UserStructureRow.user_id), user_id),
                    )
                )
            if session.get(ClassMemberRow, (user_id, class_id)) is None:
                session.add(
                    ClassMemberRow(
                        user_id=user_id,
                        class_id=class_id,
                        position=next_position(session, col(ClassMemberRow.user_id), user_id),
                    )
                )
            session.flush()

    def detach_teacher_from_structure(self, user_id: str, structure_id: str) -> None:
        """Remove the user from the structure, its classes and its groups."""
        with self._store.session() as session:
            user = _require_user(session, user_id)
            class_ids = select(col(ClassRow.id)).where(col(ClassRow.structure_id) == structure_id)
            group_ids = select(col(GroupRow.id)).where(col(GroupRow.structure_id) == structure_id)
            session.execute(
                delete(ClassMemberRow)
                .where(col(ClassMemberRow.user_id) == user_id)
                .where(col(ClassMemberRow.class_id).in_(class_ids))
            )
            session.execute(
                delete(GroupMemberRow)
                .where(col(GroupMemberRow.user_id) == user_id)
                .where(col(GroupMemberRow.group_id).in_(group_ids))
            )
            session.execute(
                delete(UserStructureRow)
                .where(col(UserStructureRow.user_id) == user_id)
                .where(col(UserStructureRow.structure_id) == structure_id)
            )
            if user.home_structure == structure_id:
                # Policy forbids this; if a caller does it anyway, point home at what remains.
                user.home_structure = session.scalars(
                    select(col(UserStructureRow.structure_id))
                    .where(col(UserStructureRow.user_id) == user_id)
                    .order_by(col(UserStructureRow.position))
                ).first()
            session.flush()
            session.expire_all()

    def delete_group(self, group_id: str, on: date | None = None) -> None:
        """Delete the group and its memberships; its name and the day are remembered."""
        with self._store.session() as session:
            group = session.get(GroupRow, group_id)
            if group is None:
                raise NotFound(f"groupe « {group_id} » introuvable")
            session.merge(
                RemovedGroupRow(
                    id=group.id,
                    structure_id=group.structure_id,
                    name=group.name,
                    removed_on=on.isoformat() if on else None,
                )
            )
            session.execute(delete(GroupMemberRow).where(col(GroupMemberRow.group_id) == group_id))
            session.execute(delete(GroupRow).where(col(GroupRow.id) == group_id))
            session.expire_all()

    def removed_groups(self, structure_id: str) -> list[RemovedGroup]:
        """The groups deleted from the structure, most recent first (undated last)."""
        with self._store.session() as session:
            rows = session.scalars(
                select(RemovedGroupRow).where(col(RemovedGroupRow.structure_id) == structure_id)
            ).all()
            removed = [RemovedGroup(r.id, r.structure_id, r.name, r.removed_on) for r in rows]
        return sorted(removed, key=lambda g: g.removed_on or "", reverse=True)

    def remove_manual_account(self, user_id: str, on: date) -> Literal["deleted", "pre_deleted"]:
        """Delete a never-activated account, or put an activated one in pre-deletion."""
        with self._store.session() as session:
            user = _require_user(session, user_id)
            if user.activated:
                user.pre_deleted = on.isoformat()
                outcome: Literal["deleted", "pre_deleted"] = "pre_deleted"
            else:
                user.deleted = on.isoformat()
                outcome = "deleted"
            session.flush()
            return outcome

    def add_group_members(self, group_id: str, user_ids: Iterable[str]) -> tuple[str, ...]:
        """Add users to the group; returns the ids that were not members yet."""
        with self._store.session() as session:
            if session.get(GroupRow, group_id) is None:
                raise NotFound(f"groupe « {group_id} » introuvable")
            present = set(_group_member_ids(session, group_id))
            position = next_position(session, col(GroupMemberRow.group_id), group_id)
            added: list[str] = []
            for user_id in dict.fromkeys(user_ids):
                if user_id in present:
                    continue
                _require_user(session, user_id)
                session.add(GroupMemberRow(group_id=group_id, user_id=user_id, position=position))
                position += 1
                added.append(user_id)
            session.flush()
            return tuple(added)

    def create_group(self, structure_id: str, name: str, type: str) -> Group:
        """Create an empty group in the structure with a generated id."""
        with self._store.session() as session:
            if session.get(StructureRow, structure_id) is None:
                raise NotFound(f"structure « {structure_id} » introuvable")
            group_id = f"grp-{slugify(name)}-{secrets.token_hex(3)}"
            position = (session.scalar(select(func.max(col(GroupRow.position)))) or 0) + 1
            row = GroupRow(
                id=group_id, structure_id=structure_id, name=name, type=type, position=position
            )
            session.add(row)
            session.flush()
            return group_record(row, [])


def _group_member_ids(session: Session, group_id: str) -> list[str]:
    return list(
        session.scalars(
            select(col(GroupMemberRow.user_id))
            .where(col(GroupMemberRow.group_id) == group_id)
            .order_by(col(GroupMemberRow.position))
        )
    )


def _require_user(session: Session, user_id: str) -> UserRow:
    user = session.get(UserRow, user_id)
    if user is None:
        raise NotFound(f"utilisateur « {user_id} » introuvable")
    return user
