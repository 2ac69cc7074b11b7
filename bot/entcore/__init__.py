"""The entcore backend: the ENT's HTTP API and the directors' OAuth2 sign-in."""
