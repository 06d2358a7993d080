"""Telegram adapter (python-telegram-bot): commands in, core results out, outbox delivery."""
