"""A fake entcore OAuth2 server for the tests (/auth/oauth2/auth, token, userinfo), written
from entcore's source, and a helper serving any ASGI app with uvicorn in a thread."""

from tests.fake_entcore_oauth.server import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeEntcoreOAuth,
    FakeUser,
    free_port,
    serve_in_thread,
)

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "FakeEntcoreOAuth",
    "FakeUser",
    "free_port",
    "serve_in_thread",
]
