"""Telegram front end (python-telegram-bot 22), its fake Bot API and bench."""
