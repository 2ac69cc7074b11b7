"""The production web app: /healthz for the load balancer, /metrics for Prometheus, and the
routes of the channels (Telegram's webhook: bot.channels.telegram.webhook), whose lifespan
it runs. Transport-free: a channel brings its routes and its start and stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from bot.web.metrics import Metrics

log = logging.getLogger(__name__)

# A database that does not answer a SELECT 1 within this is as good as gone, for the probe.
HEALTH_TIMEOUT = 5.0

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class WebContext:
    """What the app serves: the database to probe, the figures to show, the channels' routes
    (the Telegram webhook) and what runs around the serving (PTB's start and stop)."""

    engine: Engine
    metrics: Metrics
    channel_routes: list[BaseRoute] = field(default_factory=list)
    lifespan: Lifespan[Any] | None = None
    # GET /oauth/callback, the ENT's sign-in (bot.web.oauth.oauth_callback); None without it.
    oauth_callback: BaseRoute | None = None


def routes(context: WebContext) -> list[BaseRoute]:
    """The route table: the one place where a feature adds its routes (the ENT's sign-in
    callback of a later issue goes here)."""
    return [
        Route("/healthz", health_check(context.engine), methods=["GET"]),
        Route("/metrics", metrics_page(context.metrics), methods=["GET"]),
        *context.channel_routes,
        *([context.oauth_callback] if context.oauth_callback is not None else []),
    ]


def create_app(context: WebContext) -> Starlette:
    """The Starlette app."""
    return Starlette(routes=routes(context), lifespan=context.lifespan)


def database_answers(engine: Engine) -> bool:
    """SELECT 1 on a connection of the pool, twice at most: a connection the server dropped
    (restart, pg_terminate_backend) is thrown away by the first failure."""
    reason = ""
    for _ in range(2):
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception as error:  # any failure means « unreachable » to the probe
            reason = type(error).__name__
    log.warning("healthz: the database does not answer (%s)", reason)
    return False


def health_check(engine: Engine) -> Endpoint:
    """GET /healthz: 200 when the database answers, 503 otherwise; never a traceback."""

    async def endpoint(_: Request) -> Response:
        """The probe's answer."""
        try:
            # Off the event loop: a slow database must not stall the webhook.
            alive = await asyncio.wait_for(
                asyncio.to_thread(database_answers, engine), HEALTH_TIMEOUT
            )
        except TimeoutError:
            log.warning("healthz: the database did not answer within %s s", HEALTH_TIMEOUT)
            alive = False
        if alive:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "database unreachable"}, status_code=503)

    return endpoint


def metrics_page(metrics: Metrics) -> Endpoint:
    """GET /metrics: this instance's figures, in the Prometheus text format."""

    async def endpoint(_: Request) -> Response:
        """The page, generated now."""
        page, content_type = metrics.page()
        return Response(page, media_type=content_type)

    return endpoint
