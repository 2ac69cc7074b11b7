"""GET /oauth/callback: where the ENT sends a director back after its authorization page.

The state is spent once (wrong, expired or replayed: 400), the code exchanged and userinfo
read off the event loop, the tokens stored; the page then says to go back to Telegram, and
the hook given to the route tells the core, which writes to the director in the chat.
Neither the code nor the state is ever logged; the page is not cached and sends no Referer.
"""

from __future__ import annotations

import html
import inspect
import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bot.entcore.oauth import (
    CALLBACK_PATH,
    ClientRejected,
    EntAuthError,
    EntLink,
    EntUnavailable,
    LinkedAccount,
)
from bot.storage.ent_tokens import StateRejected

log = logging.getLogger(__name__)

# Told of every link made (the core writes to the speaker): a coroutine function, or a plain
# function, then run in a worker thread.
OnLinked = Callable[[LinkedAccount], Awaitable[None] | None]

LINKED = "Compte relié, vous pouvez revenir dans Telegram."
# entcore's error=… values (OAuthAuthorizationResponse), for the page.
_REFUSALS = {
    "access_denied": "Vous avez refusé l'accès à l'ENT : rien n'a été relié.",
    "invalid_scope": "L'ENT refuse les droits demandés par l'assistant : prévenez "
    "l'administrateur de l'assistant.",
    "unauthorized_client": "L'ENT ne reconnaît pas l'assistant : prévenez l'administrateur "
    "de l'assistant.",
}


def page(message: str, status_code: int = 200) -> HTMLResponse:
    """A short French page around one sentence."""
    text = html.escape(message)
    body = (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Assistant de rentrée — ENT</title></head>\n<body><p>{text}</p></body></html>\n"
    )
    return HTMLResponse(
        body,
        status_code=status_code,
        # The URL carries a code: no cache keeps the page, no Referer leaves with it.
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def oauth_callback(link: EntLink, on_linked: OnLinked | None = None) -> Route:
    """The route of GET /oauth/callback over this sign-in service."""

    async def endpoint(request: Request) -> Response:
        """The ENT's redirect: ?code=…&state=… or ?error=…&state=…."""
        params = request.query_params
        code, state, refusal = params.get("code"), params.get("state"), params.get("error")
        if refusal is not None:
            if state:
                await run_in_threadpool(link.abandon, state)
            known = refusal if refusal in _REFUSALS or refusal == "server_error" else "other"
            log.info("ENT sign-in ended by the ENT with an error (%s)", known)
            message = _REFUSALS.get(
                refusal, "L'ENT n'a pas pu vous connecter : recommencez avec /connexion."
            )
            return page(message, 400)
        if not code or not state:
            return page("Ce lien de connexion est incomplet : recommencez avec /connexion.", 400)
        try:
            account = await run_in_threadpool(link.complete, code, state)
        except StateRejected as error:
            log.info("ENT callback with a %s state", type(error).__name__)
            return page(str(error), 400)
        except (ClientRejected, EntUnavailable) as error:
            return page(str(error), 502)
        except EntAuthError as error:
            log.info("ENT sign-in failed (%s)", type(error).__name__)
            return page(str(error), 400)
        except Exception:  # a French page, never a traceback; the log has it
            log.exception("ENT callback failed")
            return page("Une erreur est survenue : recommencez avec /connexion plus tard.", 500)
        if on_linked is not None:
            try:
                if inspect.iscoroutinefunction(on_linked):
                    await on_linked(account)
                else:  # the core is synchronous: off the event loop
                    await run_in_threadpool(on_linked, account)
            except Exception:  # the link is made: the page says so whatever the chat did
                log.exception("the core could not be told of an ENT link")
        return page(LINKED)

    return Route(CALLBACK_PATH, endpoint, methods=["GET"])
