"""entcore's HTTP API as the directory backend calls it: reads retried, changes sent once.

Every call runs as the director (a bearer token from their OAuth2 sign-in), so entcore's own
filters apply on top of the assistant's rules. entcore answers a refused filter with 401
(`ActionFilter.deny`) and an unknown or expired token with a 302 to its login page
(`UserAuthFilter.redirectLogin`); both become an `EntcoreAuthError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from intents.domain import DirectoryFailure

log = logging.getLogger(__name__)

# Seconds: entcore's directory answers in well under a second; a read of a large school
# (the structure's user list) is the slowest call.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
# Attempts for one read (the first included), and the pause before the second one
# (doubled each time): a short hiccup is absorbed, an outage is reported within seconds.
READ_ATTEMPTS = 3
READ_BACKOFF = 0.2

QueryParams = Mapping[str, str | Sequence[str]]


class EntcoreError(DirectoryFailure):
    """An ENT call that did not do what was asked; `message` is French, for the director (a
    DirectoryFailure: the core tells it without knowing the ENT)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EntcoreAuthError(EntcoreError):
    """The ENT refused the token or the director's rights (302 to its login page, 401)."""


class EntcoreForbidden(EntcoreError):
    """The ENT answered 403."""


class EntcoreNotFound(EntcoreError):
    """The ENT answered 404 (nothing linked, unknown record)."""


class EntcoreRejected(EntcoreError):
    """The ENT answered 400 (or another 4xx): the request was refused as a whole."""


class EntcoreUnavailable(EntcoreError):
    """The ENT could not be reached, timed out or answered 5xx, after the read's retries."""


class EntcoreUncertain(EntcoreError):
    """A change got no clear answer (5xx, timeout, lost connection): it may or may not have
    been carried out; the caller re-reads to find out, and never sends it again blindly."""


class EntcoreNoOp(EntcoreError):
    """The ENT answered success but a re-read shows nothing changed (entcore's silent
    no-ops: a DELETE of a protected group, users added to a group type that ignores them)."""


class EntcoreRefused(EntcoreError):
    """Not sent: the ENT would refuse it or silently ignore it (checked before the call)."""


@dataclass(frozen=True)
class Answer:
    """A successful answer: its status and its JSON body (None when empty)."""

    status: int
    body: Any


Token = str | Callable[[], str]


class EntcoreClient:
    """A thin, blocking client of entcore's API (call it off the event loop)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        read_attempts: int = READ_ATTEMPTS,
        read_backoff: float = READ_BACKOFF,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            # A 302 is entcore's answer to a bad token: seen, never followed.
            follow_redirects=False,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._attempts = max(1, read_attempts)
        self._backoff = read_backoff
        self._sleep = sleep

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> EntcoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ----------------------------------------------------------------------------

    def get(self, token: Token, path: str, params: QueryParams | None = None) -> Any:
        """GET a JSON document; retried on 5xx, time-outs and connection errors."""
        failure = ""
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._http.get(path, params=params, headers=_auth(token))
            except httpx.TimeoutException:
                failure = "l'ENT n'a pas répondu à temps"
                log.warning("entcore GET %s timed out (attempt %d)", path, attempt + 1)
                continue
            except httpx.TransportError as error:
                failure = "l'ENT est injoignable"
                log.warning("entcore GET %s failed: %s (attempt %d)", path, error, attempt + 1)
                continue
            if response.status_code >= 500:
                failure = f"l'ENT a répondu par une erreur ({response.status_code})"
                log.warning(
                    "entcore GET %s: %d (attempt %d)", path, response.status_code, attempt + 1
                )
                continue
            return _answer(response, "GET", path).body
        raise EntcoreUnavailable(
            f"Impossible de lire l'annuaire de l'ENT : {failure}, même après {self._attempts} "
            "essais. Réessayez dans quelques minutes ; si cela dure, prévenez votre eRun."
        )

    # --- changes --------------------------------------------------------------------------

    def send(
        self,
        token: Token,
        method: str,
        path: str,
        *,
        params: QueryParams | None = None,
        json: Any = None,
    ) -> Answer:
        """A change, sent exactly once: a 5xx, a time-out or a lost connection raises
        EntcoreUncertain (the caller re-reads and verifies), never a second send."""
        try:
            response = self._http.request(
                method, path, params=params, json=json, headers=_auth(token)
            )
        except httpx.TimeoutException as error:
            raise EntcoreUncertain(
                "L'ENT n'a pas répondu à temps : la modification a peut-être été faite."
            ) from error
        except httpx.TransportError as error:
            raise EntcoreUncertain(
                "La connexion à l'ENT a été perdue : la modification a peut-être été faite."
            ) from error
        if response.status_code >= 500:
            raise EntcoreUncertain(
                f"L'ENT a répondu par une erreur ({response.status_code}) : la modification a "
                "peut-être été faite.",
                status=response.status_code,
            )
        return _answer(response, method, path)


def _auth(token: Token) -> dict[str, str]:
    value = token() if callable(token) else token
    return {"Authorization": f"Bearer {value}"}


def _answer(response: httpx.Response, method: str, path: str) -> Answer:
    """A 2xx as an Answer; any other status (below 500) as its typed, French error."""
    status = response.status_code
    if 200 <= status < 300:
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        return Answer(status, body)
    log.info("entcore %s %s answered %d", method, path, status)
    if status in (301, 302, 303, 307, 308) or status == 401:
        raise EntcoreAuthError(
            "L'ENT a refusé la demande : votre connexion à l'ENT a expiré, ou votre compte "
            "n'administre pas cette école (ADML). Reconnectez-vous avec /connexion ; si "
            "cela continue, vérifiez vos droits d'administration avec votre eRun.",
            status=status,
        )
    if status == 403:
        raise EntcoreForbidden(
            "L'ENT a refusé la demande (accès interdit) : votre compte n'a pas ce droit sur "
            "cette école.",
            status=status,
        )
    if status == 404:
        raise EntcoreNotFound("L'ENT ne trouve pas cet élément (404).", status=status)
    detail = _error_code(response)
    raise EntcoreRejected(
        f"L'ENT a refusé la demande ({status}{' : ' + detail if detail else ''}).",
        status=status,
    )


def _error_code(response: httpx.Response) -> str:
    """entcore's `{"error": "…"}` code, when the body has one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:100]
    return ""
