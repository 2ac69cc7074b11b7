"""The reading half of the entcore `Directory`: the ENT's JSON mapped to domain records."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from bot.entcore import mapping
from bot.entcore.reads import CachedReads
from intents.domain import (
    PROFILES,
    Group,
    RemovedGroup,
    SchoolClass,
    ShareFavorite,
    Structure,
    User,
)


class EntcoreView(CachedReads):
    """Reads of the `Directory` protocol, answered from the ENT.

    Structure ids are entcore's ids (those of the ADML scope); a UAI is accepted too and
    resolved through the structure list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # entcore keeps no trace of a deleted group: those deleted through this backend,
        # most recent first, per structure (the audit log keeps them across restarts).
        self._removed: dict[str, list[RemovedGroup]] = {}

    def transaction(self) -> AbstractContextManager[None]:
        """entcore has no transactions: each call is applied on its own and checked by a
        re-read, so this is a null context (nothing to commit or roll back)."""
        return contextlib.nullcontext()

    def structure_id(self, structure_id: str) -> str:
        """entcore's id for an id or a UAI of a structure the director administers."""
        for raw in self.raw_structures():
            if structure_id in (raw.get("id"), raw.get("UAI")):
                return str(raw.get("id"))
        return structure_id

    def structure(self, structure_id: str) -> Structure | None:
        """The structure with this id (or UAI), among those the director administers."""
        for raw in self.raw_structures():
            if structure_id in (raw.get("id"), raw.get("UAI")):
                return mapping.structure_record(raw)
        return None

    def structures(self) -> list[Structure]:
        """The structures the director administers (their ADML scope)."""
        return [mapping.structure_record(raw) for raw in self.raw_structures()]

    def classes(self, structure_id: str) -> list[SchoolClass]:
        """The school's classes; pupil counts from the school's user list."""
        sid = self.structure_id(structure_id)
        counts: dict[str, int] = {}
        for user in self._users(sid):
            if user.profile == "Student" and user.is_live:
                for class_id in user.classes:
                    counts[class_id] = counts.get(class_id, 0) + 1
        return [
            mapping.class_record(raw, sid, counts.get(str(raw.get("id")), 0))
            for raw in self.raw_classes(sid)
        ]

    def _users(self, sid: str, fresh: bool = False) -> list[User]:
        rows = self.raw_users(sid, fresh)
        return mapping.mark_individual_blocks(mapping.user_record(row) for row in rows)

    def users(
        self,
        structure_id: str,
        profiles: Iterable[str] | None = None,
        include_removed: bool = False,
    ) -> list[User]:
        """The school's accounts (one request), optionally of some profiles; live ones unless
        asked. Their `home_structure` is unknown here (see `user`)."""
        wanted = set(profiles) if profiles is not None else None
        return [
            user
            for user in self._users(self.structure_id(structure_id))
            if (wanted is None or user.profile in wanted) and (include_removed or user.is_live)
        ]

    def user(self, user_id: str) -> User | None:
        """The account as the ENT shows it to the director (with its administrative
        attachment); None when unknown or out of reach."""
        return self._user(user_id)

    def _user(self, user_id: str, fresh: bool = False) -> User | None:
        raw = self.raw_user(user_id, fresh)
        if raw is None:
            return None
        structures = self.raw_structures()
        structure_by_external = {
            str(s["externalId"]): str(s["id"]) for s in structures if s.get("externalId")
        }
        class_by_external: dict[str, str] = {}
        administered = {str(s.get("id")) for s in structures}
        for node in raw.get("structureNodes") or ():
            sid = node.get("id") if isinstance(node, dict) else None
            if sid in administered:
                for row in self.raw_classes(str(sid)):
                    if row.get("externalId"):
                        class_by_external[str(row["externalId"])] = str(row.get("id"))
        user = mapping.user_record(
            raw,
            class_ids_by_external=class_by_external,
            structure_ids_by_external=structure_by_external,
        )
        # The node lists classes by external id, which a fake or an older entcore may not
        # give: the school's list row has them by id.
        classes = list(user.classes)
        for sid in user.structures:
            if sid in administered:
                rows: list[dict[str, Any]] = self.raw_users(sid, fresh)
                for row in rows:
                    if row.get("id") == user_id:
                        classes.extend(mapping.user_record(row).classes)
        user = replace(user, classes=tuple(dict.fromkeys(classes)))
        return user

    def user_by_login(self, login: str) -> User | None:
        """The account with this login, searched in the schools the director administers."""
        for raw in self.raw_structures():
            for row in self.raw_users(str(raw.get("id"))):
                if row.get("login") == login or row.get("originalLogin") == login:
                    return self.user(str(row.get("id"))) or mapping.user_record(row)
        return None

    def groups(self, structure_id: str) -> list[Group]:
        """The school's groups with their members."""
        sid = self.structure_id(structure_id)
        rows = self.raw_groups(sid)
        users = self._users(sid)
        return [mapping.group_record(row, sid, self._members(row, users)) for row in rows]

    def _members(self, row: dict[str, Any], users: list[User], fresh: bool = False) -> list[str]:
        """A group's member ids: a profile group's from the school's list (entcore links
        every account of the profile, of the school or of the class), others read."""
        profile = row.get("filter")
        if mapping.group_type(row) == "ProfileGroup" and profile in PROFILES:
            classes = set(mapping.group_class_ids(row))
            return [
                u.id
                for u in users
                if u.is_live
                and u.profile == profile
                and (not classes or classes.intersection(u.classes))
            ]
        return [str(m.get("id")) for m in self.raw_group_members(str(row.get("id")), fresh)]

    def find_group(self, group_id: str, fresh: bool = False) -> tuple[dict[str, Any], str] | None:
        """The group's row and its school's id, among the schools the director administers."""
        for raw in self.raw_structures():
            sid = str(raw.get("id"))
            for row in self.raw_groups(sid, fresh):
                if row.get("id") == group_id:
                    return row, sid
        return None

    def group(self, group_id: str) -> Group | None:
        """The group with this id, if it still exists in one of the director's schools."""
        found = self.find_group(group_id)
        if found is None:
            return None
        row, sid = found
        return mapping.group_record(row, sid, self._members(row, self._users(sid)))

    def group_locked(self, group_id: str) -> bool:
        """Whether entcore protects the group from deletion (`lockDelete`)."""
        found = self.find_group(group_id)
        return found is not None and mapping.group_locked(found[0])

    def share_favorites(self, structure_id: str) -> list[ShareFavorite]:
        """Always empty: share favourites belong to each user and entcore has no admin route
        to list or delete them; that chore is done by each user in the ENT."""
        return []

    def removed_groups(self, structure_id: str) -> list[RemovedGroup]:
        """The groups deleted through this backend from the school, most recent first."""
        return list(self._removed.get(self.structure_id(structure_id), []))
