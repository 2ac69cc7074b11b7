"""The fake ENT's in-memory directory, shaped like entcore's graph as its directory module
reads and changes it (structures, classes, accounts, groups, functions, bearer tokens)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

PROFILES = ("Teacher", "Personnel", "Student", "Relative", "Guest")
# Profile groups of a class (entcore creates one per profile present; these are enough here).
CLASS_PROFILES = ("Teacher", "Student", "Relative")


@dataclass
class FakeStructure:
    id: str
    uai: str
    name: str

    @property
    def external_id(self) -> str:
        return f"EXT-{self.uai}"


@dataclass
class FakeClass:
    id: str
    structure_id: str
    name: str
    external_id: str


@dataclass
class FakeUser:
    id: str
    login: str
    first_name: str
    last_name: str
    profile: str
    source: str = "AAF1D"
    activation_code: str | None = None
    blocked: bool = False
    # Epoch milliseconds, as Neo4j's timestamp() (entcore's pre-deletion).
    delete_date: int | None = None
    # Function code → scope (structure ids), e.g. {"ADMIN_LOCAL": ["s1"]}.
    functions: dict[str, list[str]] = field(default_factory=dict)
    structures: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    administrative: str | None = None
    # What entcore's Backup node keeps of a pre-deleted account (User.backupRelationship).
    backup_structures: list[str] = field(default_factory=list)
    backup_classes: list[str] = field(default_factory=list)
    backup_groups: list[str] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class FakeGroup:
    id: str
    name: str
    type: str
    structure_id: str
    class_id: str | None = None
    lock_delete: bool = False
    # Profile groups: the profile; their members are the accounts of that profile.
    filter: str | None = None
    members: list[str] = field(default_factory=list)


@dataclass
class FakeToken:
    user_id: str
    scope: frozenset[str]


class EntState:
    """Everything the fake ENT holds; every access goes through `lock`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.structures: dict[str, FakeStructure] = {}
        self.classes: dict[str, FakeClass] = {}
        self.users: dict[str, FakeUser] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.tokens: dict[str, FakeToken] = {}

    # --- building -------------------------------------------------------------------------

    def add_structure(self, id: str, uai: str, name: str) -> FakeStructure:
        """A school with its profile groups (as entcore's feeder creates them)."""
        structure = FakeStructure(id, uai, name)
        self.structures[id] = structure
        for profile in PROFILES:
            gid = f"pg-{id}-{profile}"
            self.groups[gid] = FakeGroup(
                gid, f"{name}-{profile}", "ProfileGroup", id, filter=profile
            )
        return structure

    def add_class(self, id: str, structure_id: str, name: str) -> FakeClass:
        """A class of a school, with its class profile groups."""
        uai = self.structures[structure_id].uai
        school_class = FakeClass(id, structure_id, name, f"{uai}${name}")
        self.classes[id] = school_class
        for profile in CLASS_PROFILES:
            gid = f"pg-{id}-{profile}"
            self.groups[gid] = FakeGroup(
                gid, f"{name}-{profile}", "ProfileGroup", structure_id, id, filter=profile
            )
        return school_class

    def add_user(self, user: FakeUser) -> FakeUser:
        """An account (its structures and classes given on it)."""
        self.users[user.id] = user
        return user

    def add_group(self, group: FakeGroup) -> FakeGroup:
        """A manual, functional or other group."""
        self.groups[group.id] = group
        return group

    def add_token(self, token: str, user_id: str, scope: str = "userinfo directory") -> None:
        """A bearer token for this account, with an OAuth2 scope (space-separated)."""
        self.tokens[token] = FakeToken(user_id, frozenset(scope.split()))

    # --- reading --------------------------------------------------------------------------

    def live(self, user: FakeUser) -> bool:
        return user.delete_date is None

    def adml_scope(self, user: FakeUser) -> set[str]:
        """The structures of the account's ADMIN_LOCAL function."""
        return set(user.functions.get("ADMIN_LOCAL", []))

    def members(self, group: FakeGroup) -> list[str]:
        """Members of a group; a profile group's are the accounts of its profile."""
        if group.type == "ProfileGroup":
            return [
                u.id
                for u in self.users.values()
                if self.live(u)
                and u.profile == group.filter
                and (
                    group.class_id in u.classes
                    if group.class_id
                    else group.structure_id in u.structures
                )
            ]
        return [m for m in group.members if m in self.users and self.live(self.users[m])]

    def user_groups(self, user: FakeUser, type: str) -> list[FakeGroup]:
        return [g for g in self.groups.values() if g.type == type and user.id in g.members]

    def structure_json(self, s: FakeStructure) -> dict[str, Any]:
        return {
            "id": s.id,
            "UAI": s.uai,
            "name": s.name,
            "externalId": s.external_id,
            "levelsOfEducation": [1],
            "distributions": [],
            "source": "AAF1D",
            "parents": None,
        }

    def functions_json(self, user: FakeUser) -> list[list[Any]]:
        return [[code, scope] for code, scope in user.functions.items()]

    def user_row(self, user: FakeUser, structure_id: str | None = None) -> dict[str, Any]:
        """A row of `GET /directory/structure/:id/users` (DefaultSchoolService.userList)."""
        live = self.live(user)
        structures = user.structures if live else user.backup_structures
        classes = [self.classes[c] for c in user.classes if c in self.classes] if live else []
        return {
            "id": user.id,
            "type": user.profile,
            "code": user.activation_code,
            "login": user.login,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "displayName": user.display_name,
            "source": user.source,
            "deleteDate": user.delete_date,
            "disappearanceDate": None,
            "blocked": user.blocked or None,
            "creationDate": "2024-09-01T08:00:00.000",
            "removedFromStructures": None,
            "aafFunctions": [],
            "classes": [
                {"id": c.id, "name": c.name, "externalId": c.external_id} for c in classes
            ],
            "functionalGroups": [g.name for g in self.user_groups(user, "FunctionalGroup")]
            if live
            else [],
            "manualGroups": [g.name for g in self.user_groups(user, "ManualGroup")]
            if live
            else [],
            "functions": self.functions_json(user) if live else [],
            "duplicates": [],
            "structures": [
                {
                    "id": s,
                    "name": self.structures[s].name,
                    "externalId": self.structures[s].external_id,
                }
                for s in structures
                if s in self.structures
            ],
            "userPositions": [],
        }

    def user_node(self, user: FakeUser) -> dict[str, Any]:
        """`GET /directory/user/:id`: the node's properties and the collected relations."""
        live = self.live(user)
        structures = [self.structures[s] for s in user.structures if s in self.structures]
        node: dict[str, Any] = {
            "id": user.id,
            "login": user.login,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "displayName": user.display_name,
            "source": user.source,
            "profiles": [user.profile],
            "type": [user.profile],
            "blocked": user.blocked,
            "structures": [s.external_id for s in structures] if live else [],
            "classes": [self.classes[c].external_id for c in user.classes if c in self.classes]
            if live
            else [],
            "structureNodes": [
                {"id": s.id, "name": s.name, "UAI": s.uai, "externalId": s.external_id}
                for s in structures
            ]
            if live
            else [],
            "functions": self.functions_json(user) if live else [],
            "functionalGroups": [
                {"id": g.id, "name": g.name} for g in self.user_groups(user, "FunctionalGroup")
            ],
            "administrativeStructures": [{"id": user.administrative}]
            if user.administrative
            else [],
            "children": [],
            "parents": [],
            "subjectCodes": [],
            "userPositions": [],
            "hasTotp": False,
        }
        if user.activation_code:
            node["activationCode"] = user.activation_code
        if user.delete_date is not None:
            node["deleteDate"] = user.delete_date
        return node

    def group_row(self, group: FakeGroup) -> dict[str, Any]:
        """A row of `GET /directory/group/admin/list` (DefaultGroupService.listAdmin)."""
        structure = self.structures[group.structure_id]
        school_class = self.classes.get(group.class_id or "")
        return {
            "id": group.id,
            "name": group.name,
            "displayName": group.name,
            "filter": group.filter or ("Manual" if group.type == "ManualGroup" else None),
            "labels": ["Group", group.type, "Visible"],
            "type": group.type,
            "lockDelete": group.lock_delete or None,
            "nbUsers": len(self.members(group)),
            "classes": [{"id": school_class.id, "name": school_class.name}]
            if school_class
            else None,
            "structures": [{"id": structure.id, "name": structure.name}],
            "subType": "ClassGroup"
            if group.type == "ProfileGroup" and school_class
            else ("StructureGroup" if group.type == "ProfileGroup" else None),
        }

    def member_row(self, user: FakeUser) -> dict[str, Any]:
        """A row of `GET /directory/user/admin/list` (DefaultUserService.listAdmin)."""
        return {
            "id": user.id,
            "type": user.profile,
            "code": user.activation_code,
            "login": user.login,
            "originalLogin": user.login,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "displayName": user.display_name,
            "source": user.source,
            "blocked": user.blocked or None,
            "structures": [
                {"id": s, "name": self.structures[s].name}
                for s in user.structures
                if s in self.structures
            ],
            "allClasses": [
                {"id": c, "name": self.classes[c].name} for c in user.classes if c in self.classes
            ],
            "functions": self.functions_json(user),
        }

    # --- changes (entcore's feeder, ManualFeeder and services) ----------------------------

    def unlink_structure(self, user: FakeUser, structure_id: str) -> bool:
        """Out of the school, its classes and the school's (and its classes') groups."""
        if structure_id not in user.structures:
            return False
        user.structures.remove(structure_id)
        user.classes = [
            c
            for c in user.classes
            if self.classes.get(c, None) is None or self.classes[c].structure_id != structure_id
        ]
        for group in self.groups.values():
            if group.structure_id == structure_id and user.id in group.members:
                group.members.remove(user.id)
        for code, scope in list(user.functions.items()):
            if structure_id in scope:
                scope.remove(structure_id)
                if not scope:
                    del user.functions[code]
        return True

    def pre_delete(self, user: FakeUser) -> None:
        """User.backupRelationship + User.preDelete: relations kept aside, deleteDate set."""
        user.backup_structures = list(user.structures)
        user.backup_classes = list(user.classes)
        user.backup_groups = [g.id for g in self.groups.values() if user.id in g.members]
        for group in self.groups.values():
            if user.id in group.members:
                group.members.remove(user.id)
        user.structures, user.classes = [], []
        user.delete_date = int(time.time() * 1000)

    def delete_for_good(self, user: FakeUser) -> None:
        del self.users[user.id]

    def restore(self, user: FakeUser) -> None:
        """User.restorePreDeleted: relations given back, deleteDate removed."""
        if user.delete_date is None:
            return
        user.structures = list(user.backup_structures)
        user.classes = list(user.backup_classes)
        for gid in user.backup_groups:
            if gid in self.groups and user.id not in self.groups[gid].members:
                self.groups[gid].members.append(user.id)
        user.backup_structures, user.backup_classes, user.backup_groups = [], [], []
        user.delete_date = None

    def new_id(self) -> str:
        return str(uuid.uuid4())
