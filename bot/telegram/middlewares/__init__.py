"""Outer and inner middlewares: database session, member, throttling, locks."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import TelegramObject

# What a middleware calls next: the rest of the chain, down to the handler.
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
