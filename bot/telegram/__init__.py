"""Telegram plumbing: the API session, the webhook server, middlewares."""
