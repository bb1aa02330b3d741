"""Plain aiogram routers: commands, errors (and, later, the moderation group and admin)."""
