"""`EntcoreDirectory`: the `Directory` protocol carried out on an entcore ENT, as the director.

Every change is sent once (entcore has no idempotency key) and then checked by a fresh read:
entcore answers several refusals with a success (a DELETE of a protected group, users added
to a group type that ignores them, a block that touched nobody), and a 5xx or a time-out says
nothing about what was done. A change that the re-read does not show raises an `EntcoreError`
whose French message is told to the director, and is audited as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Literal

from bot.entcore import mapping
from bot.entcore.client import (
    Answer,
    EntcoreAuthError,
    EntcoreClient,
    EntcoreError,
    EntcoreNoOp,
    EntcoreNotFound,
    EntcoreRefused,
    EntcoreUncertain,
    Token,
)
from bot.entcore.reads import DEFAULT_CACHE_SECONDS
from bot.entcore.view import EntcoreView
from intents.domain import BlockResult, Group, NotFound, RemovedGroup, User

log = logging.getLogger(__name__)

NOT_CONFIRMED = (
    "L'ENT n'a pas répondu clairement et la vérification montre que ce n'est pas fait. "
    "Réessayez dans quelques minutes ; si cela dure, prévenez votre eRun."
)


class EntcoreDirectory(EntcoreView):
    """The directory of an entcore ENT, read and changed with one director's bearer token."""

    def __init__(
        self,
        client: EntcoreClient,
        token: Token,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        removed: dict[str, list[RemovedGroup]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        super().__init__(client, token, cache_seconds=cache_seconds, **extra)
        if removed is not None:
            # Shared between the directors' instances of one process.
            self._removed = removed

    def _send(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None
    ) -> Answer | None:
        """Send a change once; None when its outcome is unknown (checked by the caller)."""
        try:
            return self._client.send(self._token, method, path, params=params, json=json)
        except EntcoreUncertain as error:
            log.warning("entcore %s %s: no clear answer (%s); checking", method, path, error)
            return None
        finally:
            self.invalidate()

    # --- blocking -------------------------------------------------------------------------

    def set_blocked(
        self, structure_id: str, profiles: Iterable[str], blocked: bool, keep: Iterable[str] = ()
    ) -> BlockResult:
        """One `PUT /directory/structure/:id/profile/block` per profile (entcore answers 204
        with no counts: the result comes from reads before and after). `blocked` is a
        property of the account, so a parent with a child in another school is blocked there
        too; unblocking lifts individual blocks too, so the `keep` accounts are blocked again
        one by one (`PUT /auth/block/:userId`, which needs the token's `auth` scope)."""
        sid = self.structure_id(structure_id)
        wanted = list(dict.fromkeys(profiles))
        kept_ids = set(keep) if not blocked else set()
        before = [u for u in self._users(sid, fresh=True) if u.is_live and u.profile in wanted]
        refusal: EntcoreError | None = None
        for profile in wanted:
            try:
                self._send(
                    "PUT",
                    f"/directory/structure/{sid}/profile/block",
                    json={"profile": profile, "block": blocked},
                )
            except EntcoreError as error:
                # The other profiles are still sent; the re-read tells what was done.
                refusal = refusal or error
        for user in before:
            if user.id in kept_ids and user.blocked:
                try:
                    self._send("PUT", f"/auth/block/{user.id}", json={"block": True})
                except EntcoreError as error:
                    log.warning("entcore: %s not blocked again: %s", user.id, error)
        after = {u.id: u for u in self._users(sid, fresh=True)}
        changed: list[str] = []
        unchanged: list[str] = []
        kept: list[str] = []
        missed: list[User] = []
        lost: list[User] = []
        for user in before:
            now = after.get(user.id)
            if user.id in kept_ids and user.blocked:
                if now is not None and now.blocked:
                    kept.append(user.id)
                else:
                    lost.append(user)
            elif user.blocked == blocked:
                unchanged.append(user.id)
            elif now is not None and now.blocked == blocked:
                changed.append(user.id)
            else:
                missed.append(user)
        if missed and refusal is not None:
            done = f" {len(changed)} compte(s) ont tout de même changé." if changed else ""
            raise type(refusal)(refusal.message + done, status=refusal.status)
        if missed:
            verb = "bloqué" if blocked else "débloqué"
            raise EntcoreNoOp(
                f"L'ENT n'a pas {verb} {_names(missed)} : la vérification après coup montre "
                f"{'qu’ils sont' if len(missed) > 1 else 'que ce compte est'} dans le même état "
                f"qu'avant. {len(changed)} compte(s) ont bien changé. Réessayez, ou faites-le "
                "dans la console d'administration de l'ENT."
            )
        if lost:
            raise EntcoreError(
                f"Les comptes ont été débloqués, mais l'ENT n'a pas bloqué de nouveau "
                f"{_names(lost)}, que vous vouliez garder bloqués : bloquez-les un par un "
                "dans la console d'administration de l'ENT."
            )
        return BlockResult(changed=tuple(changed), unchanged=tuple(unchanged), kept=tuple(kept))

    # --- classes and schools --------------------------------------------------------------

    def attach_teacher_to_class(self, user_id: str, class_id: str) -> None:
        """`PUT /directory/class/:classId/link/:userId` (200 {"id"}, 404 when nothing was
        linked); entcore also adds the account to the class's school."""
        try:
            answer = self._send("PUT", f"/directory/class/{class_id}/link/{user_id}")
        except EntcoreNotFound as error:
            raise EntcoreNotFound(
                "L'ENT n'a rattaché personne à cette classe : le compte ou la classe est "
                "introuvable dans l'ENT.",
                status=error.status,
            ) from error
        if answer is None and not self._in_class(user_id, class_id):
            raise EntcoreError(NOT_CONFIRMED)

    def unlink_from_class(self, user_id: str, class_id: str) -> None:
        """Undo of an attach: `DELETE /directory/class/:classId/unlink/:userId` (404 when the
        account was not in the class: nothing left to undo)."""
        try:
            answer = self._send("DELETE", f"/directory/class/{class_id}/unlink/{user_id}")
        except EntcoreNotFound:
            answer = None
        if answer is None and self._in_class(user_id, class_id):
            raise EntcoreError(NOT_CONFIRMED)

    def _class_structure(self, class_id: str) -> str | None:
        for raw in self.raw_structures():
            sid = str(raw.get("id"))
            if any(row.get("id") == class_id for row in self.raw_classes(sid)):
                return sid
        return None

    def _in_class(self, user_id: str, class_id: str) -> bool:
        sid = self._class_structure(class_id)
        if sid is None:
            return False
        user = next((u for u in self._users(sid, fresh=True) if u.id == user_id), None)
        return user is not None and class_id in user.classes

    def _in_structure(self, user_id: str, sid: str) -> bool:
        return any(u.id == user_id and u.is_live for u in self._users(sid, fresh=True))

    def detach_teacher_from_structure(self, user_id: str, structure_id: str) -> None:
        """`DELETE /directory/structure/:structureId/unlink/:userId`: out of the school, its
        classes and its groups; checked by reading the school again."""
        sid = self.structure_id(structure_id)
        answer = self._send("DELETE", f"/directory/structure/{sid}/unlink/{user_id}")
        if self._in_structure(user_id, sid):
            if answer is None:
                raise EntcoreError(NOT_CONFIRMED)
            raise EntcoreNoOp(
                "L'ENT a répondu, mais ce compte fait toujours partie de l'école : il n'a pas "
                "été détaché."
            )

    def reattach_to_structure(self, user_id: str, structure_id: str) -> None:
        """Undo of a detach: `PUT /directory/structure/:sid/link/:uid` (classes and groups are
        not given back: entcore does not remember them)."""
        sid = self.structure_id(structure_id)
        try:
            answer = self._send("PUT", f"/directory/structure/{sid}/link/{user_id}")
        except EntcoreNotFound as error:
            raise EntcoreNotFound(
                "L'ENT n'a pas pu remettre ce compte dans l'école : il est introuvable.",
                status=error.status,
            ) from error
        if answer is None and not self._in_structure(user_id, sid):
            raise EntcoreError(NOT_CONFIRMED)

    # --- groups ---------------------------------------------------------------------------

    def delete_group(self, group_id: str, on: date | None = None) -> None:
        """`DELETE /directory/group/:groupId`, which entcore carries out only for a
        ManualGroup without lockDelete and answers 204 for any group: the type is checked
        first and the group list read again afterwards."""
        found = self.find_group(group_id, fresh=True)
        if found is None:
            raise NotFound(f"groupe « {group_id} » introuvable")
        row, sid = found
        name = mapping.text(row, "name") or group_id
        kind = mapping.group_type(row)
        if kind != "ManualGroup" or mapping.group_locked(row):
            raise EntcoreRefused(
                f"L'ENT ne supprime que les groupes manuels non protégés : « {name} » "
                + (
                    "est protégé contre la suppression."
                    if kind == "ManualGroup"
                    else f"est un groupe {kind or 'automatique'}."
                )
                + " Rien n'a été modifié."
            )
        answer = self._send("DELETE", f"/directory/group/{group_id}")
        if any(r.get("id") == group_id for r in self.raw_groups(sid, fresh=True)):
            if answer is None:
                raise EntcoreError(NOT_CONFIRMED)
            raise EntcoreNoOp(
                f"L'ENT a répondu que c'était fait, mais le groupe « {name} » existe toujours : "
                "il n'a pas été supprimé."
            )
        gone = RemovedGroup(group_id, sid, name, on.isoformat() if on else None)
        self._removed.setdefault(sid, []).insert(0, gone)

    def add_group_members(
        self, group_id: str, user_ids: Iterable[str], structure_id: str | None = None
    ) -> tuple[str, ...]:
        """`PUT /directory/group/:groupId/users/add` with the accounts not in it yet. entcore's
        filter does not check the group's school and the route silently ignores groups
        other than manual and functional ones: both are checked here, and the members read
        again afterwards. Returns the ids added."""
        found = self.find_group(group_id, fresh=True)
        if found is None:
            raise NotFound(f"groupe « {group_id} » introuvable")
        row, sid = found
        name = mapping.text(row, "name") or group_id
        if structure_id is not None and self.structure_id(structure_id) != sid:
            raise EntcoreRefused(f"Le groupe « {name} » n'appartient pas à cette école.")
        kind = mapping.group_type(row)
        if kind not in mapping.MEMBER_GROUP_TYPES:
            raise EntcoreRefused(
                f"L'ENT n'ajoute des membres qu'aux groupes manuels ou fonctionnels : « {name} » "
                f"est un groupe {kind or 'automatique'}. Rien n'a été modifié."
            )
        school = {u.id: u for u in self._users(sid, fresh=True) if u.is_live}
        wanted = list(dict.fromkeys(user_ids))
        outsiders = [u for u in wanted if u not in school]
        if outsiders:
            raise EntcoreRefused(
                f"{len(outsiders)} compte(s) ne font pas partie de l'école du groupe « {name} » : "
                "rien n'a été modifié."
            )
        present = set(self._members(row, list(school.values()), fresh=True))
        new = [u for u in wanted if u not in present]
        if not new:
            return ()
        answer = self._send("PUT", f"/directory/group/{group_id}/users/add", json={"userIds": new})
        after = set(self._members(row, [], fresh=True))
        missing = [school[u] for u in new if u not in after]
        if missing:
            if answer is None:
                raise EntcoreError(NOT_CONFIRMED)
            raise EntcoreNoOp(
                f"L'ENT a répondu, mais {_names(missing)} "
                f"{'ne sont' if len(missing) > 1 else 'n’est'} pas dans le groupe « {name} »."
            )
        return tuple(new)

    def create_group(self, structure_id: str, name: str, type: str) -> Group:
        """`POST /directory/group` {"name", "structureId"} (201 {"id"}): entcore creates
        manual groups only."""
        sid = self.structure_id(structure_id)
        if type != "ManualGroup":
            raise EntcoreRefused(
                "L'ENT ne crée que des groupes manuels depuis son API : rien n'a été créé."
            )
        before = {r.get("id") for r in self.raw_groups(sid, fresh=True)}
        answer = self._send("POST", "/directory/group", json={"name": name, "structureId": sid})
        new_id = answer.body.get("id") if answer and isinstance(answer.body, dict) else None
        rows = self.raw_groups(sid, fresh=True)
        row = next((r for r in rows if new_id and r.get("id") == new_id), None) or next(
            (r for r in rows if r.get("id") not in before and r.get("name") == name), None
        )
        if row is None:
            raise EntcoreError(
                NOT_CONFIRMED
                if answer is None
                else (f"L'ENT a répondu, mais le groupe « {name} » n'apparaît pas dans l'école.")
            )
        return mapping.group_record(row, sid, [])

    # --- accounts -------------------------------------------------------------------------

    def remove_manual_account(self, user_id: str, on: date) -> Literal["deleted", "pre_deleted"]:
        """`DELETE /directory/user?userId=`: entcore pre-deletes the account and deletes it
        for good when it still holds an activation code (never activated). Only sources
        such as MANUAL or CSV are accepted (any other fails the call with 400): checked
        first. The outcome is the one read back, not the one expected."""
        user = self._user(user_id, fresh=True)
        if user is None:
            raise NotFound(f"utilisateur « {user_id} » introuvable")
        if user.source not in mapping.DELETABLE_SOURCES:
            raise EntcoreRefused(
                f"L'ENT ne supprime que les comptes créés à la main (MANUAL, CSV…) : celui de "
                f"{user.full_name} vient de {user.source or 'l’annuaire académique'}. "
                "Rien n'a été modifié."
            )
        answer = self._send("DELETE", "/directory/user", params={"userId": user_id})
        state = self._account_state(user_id)
        if state == "live":
            if answer is None:
                raise EntcoreError(NOT_CONFIRMED)
            raise EntcoreNoOp(
                f"L'ENT a répondu, mais le compte de {user.full_name} est toujours actif : il "
                "n'a pas été supprimé."
            )
        return state

    def restore_user(self, user_id: str) -> None:
        """Undo of a pre-deletion: `PUT /directory/restore/user?userId=`."""
        gone = EntcoreNotFound(
            "Ce compte a été supprimé définitivement par l'ENT : il ne peut pas être restauré."
        )
        try:
            answer = self._send("PUT", "/directory/restore/user", params={"userId": user_id})
        except EntcoreAuthError:
            # entcore's filter refuses an account that no longer exists (401).
            if self._account_state(user_id) == "deleted":
                raise EntcoreNotFound(
                    "L'ENT ne montre plus ce compte dans vos écoles : il a été supprimé "
                    "définitivement, ou il appartient à une autre école. Il ne peut pas être "
                    "restauré."
                ) from None
            raise
        state = self._account_state(user_id)
        if state == "deleted":
            raise gone
        if state == "pre_deleted":
            raise EntcoreError(
                NOT_CONFIRMED
                if answer is None
                else "L'ENT a répondu, mais le compte est toujours en pré-suppression."
            )

    def _account_state(self, user_id: str) -> Literal["live", "pre_deleted", "deleted"]:
        user = self._user(user_id, fresh=True)
        if user is None:
            return "deleted"
        return "pre_deleted" if user.pre_deleted else "live"


def _names(users: list[User]) -> str:
    """« Prénom Nom, Prénom Nom » (at most five, then « et N autres »)."""
    shown = ", ".join(u.full_name for u in users[:5])
    return shown + (f" et {len(users) - 5} autres" if len(users) > 5 else "")
