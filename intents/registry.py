"""The explicit registry of intent handlers; decorators only record metadata here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intents.turn import Response, SchoolTurn, SlotValue


class Permission(StrEnum):
    ANYONE = "anyone"
    # Reads a school's directory: its director or the eRun of its circonscription.
    READ_SCHOOL = "read_school"
    # Changes a school's directory: its director only.
    CHANGE_SCHOOL = "change_school"
    # Reads and answers the questions handed to a person: the eRun, for their circonscription.
    HANDLE_TICKETS = "handle_tickets"


# A handler takes a Turn, or a SchoolTurn when its permission is about a school: the core
# builds the turn that the permission promises.
Handler = Callable[[Any], "Response"]
Executor = Callable[["SchoolTurn", dict[str, "SlotValue"]], "Response"]


@dataclass(frozen=True)
class IntentSpec:
    id: str
    kind: str
    handler: Handler
    permission: Permission
    slots: tuple[str, ...]
    doc: str


class Registry:
    """Intent id → handler metadata; kind-wide handlers serve ids known only as data."""

    def __init__(self) -> None:
        self._specs: dict[str, IntentSpec] = {}
        self._kind_handlers: dict[str, IntentSpec] = {}
        self._executors: dict[str, Executor] = {}

    def intent(
        self,
        intent_id: str,
        *,
        kind: str,
        permission: Permission = Permission.ANYONE,
        slots: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def record(handler: Handler) -> Handler:
            if intent_id in self._specs:
                raise ValueError(f"intent {intent_id} registered twice")
            self._specs[intent_id] = IntentSpec(
                intent_id, kind, handler, permission, slots, _doc(handler)
            )
            return handler

        return record

    def kind(self, kind: str) -> Callable[[Handler], Handler]:
        """Handler for every intent of this kind that has no handler of its own."""

        def record(handler: Handler) -> Handler:
            self._kind_handlers[kind] = IntentSpec(
                f"*{kind}", kind, handler, Permission.ANYONE, (), _doc(handler)
            )
            return handler

        return record

    def executor(self, intent_id: str) -> Callable[[Executor], Executor]:
        """The function that carries out a confirmed change of this action."""

        def record(function: Executor) -> Executor:
            self._executors[intent_id] = function
            return function

        return record

    def spec(self, intent_id: str, kind: str) -> IntentSpec | None:
        found = self._specs.get(intent_id)
        if found is not None:
            return found
        generic = self._kind_handlers.get(kind)
        if generic is None:
            return None
        return IntentSpec(intent_id, kind, generic.handler, generic.permission, (), generic.doc)

    def executor_for(self, intent_id: str) -> Executor | None:
        return self._executors.get(intent_id)

    def specs(self) -> list[IntentSpec]:
        return list(self._specs.values()) + list(self._kind_handlers.values())


def _doc(handler: Callable[..., Any]) -> str:
    return (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""


registry = Registry()
