"""Discord adapter (discord.py app commands): commands in, core results out, outbox delivery."""
