"""entcore's directory reads, cached a short while per director (per bearer token).

A whole school is read in a handful of requests: the structure list, the school's class list,
its user list (`GET /directory/structure/:id/users`, every account with its classes) and its
group list. Profile groups' members are derived from the user list; the other groups' members
(manual, functional, function groups…) are read one request per group. Never one per user.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bot.entcore.client import (
    EntcoreAuthError,
    EntcoreClient,
    EntcoreForbidden,
    EntcoreNotFound,
    QueryParams,
    Token,
)

# Seconds a read is reused: long enough for one conversation turn (which reads the school
# several times), short enough that a change made in the ENT's console shows up quickly.
DEFAULT_CACHE_SECONDS = 30.0


class CachedReads:
    """The raw JSON reads of the ENT, through a TTL cache that the own changes clear."""

    def __init__(
        self,
        client: EntcoreClient,
        token: Token,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._token = token
        self._ttl = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget every cached read (after a change: the next read asks the ENT)."""
        with self._lock:
            self._cache.clear()

    def _get(self, path: str, params: dict[str, str] | None = None, fresh: bool = False) -> Any:
        key = (path, tuple(sorted((params or {}).items())))
        now = self._clock()
        if not fresh and self._ttl > 0:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        query: QueryParams | None = params
        body = self._client.get(self._token, path, query)
        with self._lock:
            self._cache[key] = (now, body)
        return body

    # --- the ENT's reads, as JSON ---------------------------------------------------------

    def raw_structures(self, fresh: bool = False) -> list[dict[str, Any]]:
        """`GET /directory/structure/admin/list`: the structures the director administers."""
        return _rows(self._get("/directory/structure/admin/list", fresh=fresh))

    def raw_classes(self, structure_id: str, fresh: bool = False) -> list[dict[str, Any]]:
        """`GET /directory/class/admin/list?structureId=`."""
        return _rows(
            self._get("/directory/class/admin/list", {"structureId": structure_id}, fresh)
        )

    def raw_users(self, structure_id: str, fresh: bool = False) -> list[dict[str, Any]]:
        """`GET /directory/structure/:id/users`: every account of the school, pre-deleted ones
        with their `deleteDate`."""
        return _rows(self._get(f"/directory/structure/{structure_id}/users", fresh=fresh))

    def raw_groups(self, structure_id: str, fresh: bool = False) -> list[dict[str, Any]]:
        """`GET /directory/group/admin/list?structureId=`: the school's and its classes'
        groups, with type and lockDelete."""
        return _rows(
            self._get("/directory/group/admin/list", {"structureId": structure_id}, fresh)
        )

    def raw_group_members(self, group_id: str, fresh: bool = False) -> list[dict[str, Any]]:
        """`GET /directory/user/admin/list?groupId=`."""
        return _rows(self._get("/directory/user/admin/list", {"groupId": group_id}, fresh))

    def raw_user(self, user_id: str, fresh: bool = False) -> dict[str, Any] | None:
        """`GET /directory/user/:id`; None when the ENT does not show it: 404, or the 401
        that entcore's filter gives for an account out of the director's reach (gone for
        good, or in another school) while the token itself still works."""
        try:
            body = self._get(f"/directory/user/{user_id}", fresh=fresh)
        except EntcoreNotFound:
            return None
        except (EntcoreAuthError, EntcoreForbidden):
            # Tells a bad token (raises again here) from an account out of reach.
            self.raw_structures(fresh=True)
            return None
        return body if isinstance(body, dict) and body.get("id") else None


def _rows(body: Any) -> list[dict[str, Any]]:
    """A JSON array of objects (anything else reads as empty)."""
    if not isinstance(body, list):
        return []
    return [row for row in body if isinstance(row, dict)]
