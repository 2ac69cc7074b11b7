"""Rows of the directory tables turned into the domain's records."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.storage.tables import (
    ClassMemberRow,
    GroupRow,
    IndividualBlockRow,
    StructureRow,
    UserRow,
    UserStructureRow,
)
from intents.domain import Group, Structure, User

# Bound parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
_CHUNK = 500


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """The values in slices small enough for one IN (...) list."""
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def structure_record(row: StructureRow) -> Structure:
    """The domain's Structure of a row."""
    return Structure(id=row.id, name=row.name, city=row.city, circonscription=row.circonscription)


def group_record(row: GroupRow, member_ids: Iterable[str]) -> Group:
    """The domain's Group of a row and its members, in order."""
    return Group(
        id=row.id,
        structure_id=row.structure_id,
        name=row.name,
        type=row.type,
        member_ids=tuple(member_ids),
    )


def user_records(session: Session, rows: list[UserRow]) -> list[User]:
    """Build User records, loading list fields with one query per link table and chunk."""
    ids = [row.id for row in rows]
    structures: dict[str, list[str]] = defaultdict(list)
    classes: dict[str, list[str]] = defaultdict(list)
    alone: set[str] = set()
    for chunk in chunks(ids):
        alone.update(
            session.scalars(
                select(col(IndividualBlockRow.user_id)).where(
                    col(IndividualBlockRow.user_id).in_(chunk)
                )
            )
        )
        for user_id, structure_id in session.execute(
            select(col(UserStructureRow.user_id), col(UserStructureRow.structure_id))
            .where(col(UserStructureRow.user_id).in_(chunk))
            .order_by(col(UserStructureRow.user_id), col(UserStructureRow.position))
        ):
            structures[user_id].append(structure_id)
        for user_id, class_id in session.execute(
            select(col(ClassMemberRow.user_id), col(ClassMemberRow.class_id))
            .where(col(ClassMemberRow.user_id).in_(chunk))
            .order_by(col(ClassMemberRow.user_id), col(ClassMemberRow.position))
        ):
            classes[user_id].append(class_id)
    return [
        User(
            id=row.id,
            login=row.login,
            first_name=row.first_name,
            last_name=row.last_name,
            profile=row.profile,
            source=row.source,
            activated=row.activated,
            blocked=row.blocked,
            structures=tuple(structures[row.id]),
            home_structure=row.home_structure,
            classes=tuple(classes[row.id]),
            functions=tuple(json.loads(row.functions)),
            deleted=row.deleted,
            pre_deleted=row.pre_deleted,
            blocked_individually=row.id in alone,
        )
        for row in rows
    ]
