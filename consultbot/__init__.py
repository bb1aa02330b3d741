"""The `consultbot` command line: above the bot and the tools."""

from bot.telegram.lazy_models import defer_aiogram_model_builds

# The command is the process's entry: before anything imports aiogram (why: lazy_models.py).
defer_aiogram_model_builds()
