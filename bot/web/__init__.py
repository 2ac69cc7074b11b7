"""The production web server: Telegram's webhook, /healthz and /metrics (Starlette, uvicorn)."""
