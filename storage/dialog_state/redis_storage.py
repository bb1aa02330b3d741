"""aiogram's Redis FSM storage, with fewer round trips per update."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, cast

from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage

REMEMBERED = 20_000


class RedisDialogStorage(RedisStorage):
    """aiogram-dialog writes a member's dialog stack back at every update, changed or not,
    and it rarely changes: one Redis round trip per tap for nothing.

    A value read here is remembered with the task (the update) that read it; a write of the
    same value by the same task is skipped. That is safe because a member's updates take
    turns across instances (the member lock): within the update nobody else changed it. A
    write in any other task, or with no read before it, always reaches Redis. (Skipped only
    without a TTL on the data, so no refresh is lost.)

    With the member lock (storage/dialog_state/member_lock.py), two more: the lock reads the member's stack
    and context with the lock (`read_ahead`), and the update's writes are kept until the lock
    is released, then sent with the release (`begin_turn`, `end_turn`): still before the
    update ends, as before, in the same round trip as the release."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: OrderedDict[str, tuple[asyncio.Task[Any] | None, str | None]] = OrderedDict()
        self.ahead: OrderedDict[str, tuple[asyncio.Task[Any] | None, str | None]] = OrderedDict()
        # Per task, the turns it holds (innermost last): the member's key prefix, and the
        # writes to that member's keys kept until the lock's release.
        self.turns: dict[asyncio.Task[Any] | None, list[tuple[str, dict[str, str | None]]]] = {}

    def begin_turn(self, prefix: str) -> None:
        """The current task holds the lock of the member whose keys start with `prefix`: its
        writes to them wait for `end_turn`."""
        if not self.data_ttl:
            self.turns.setdefault(asyncio.current_task(), []).append((prefix, {}))

    def end_turn(self) -> dict[str, str | None]:
        """The writes kept since `begin_turn` (None: delete the key), for the lock's release."""
        task = asyncio.current_task()
        turns = self.turns.get(task)
        if not turns:
            return {}
        _prefix, kept = turns.pop()
        if not turns:
            del self.turns[task]
        return kept

    def _kept(self, redis_key: str) -> dict[str, str | None] | None:
        """The writes kept for the turn of the member this key belongs to, if one is held."""
        for prefix, kept in reversed(self.turns.get(asyncio.current_task(), ())):
            if redis_key.startswith(prefix):
                return kept
        return None

    def read_ahead(self, values: Mapping[str, bytes | str | None]) -> None:
        """Values the member lock read with the lock (storage/dialog_state/member_lock.py): the next read of
        each key by the same task (the update) is served from here, once."""
        task = asyncio.current_task()
        for key, value in values.items():
            raw = value.decode("utf-8") if isinstance(value, bytes) else value
            self.ahead[key] = (task, raw)
            self.ahead.move_to_end(key)
        while len(self.ahead) > REMEMBERED:
            self.ahead.popitem(last=False)

    def _remember(self, key: str, raw: str | None) -> None:
        self.read[key] = (asyncio.current_task(), raw)
        self.read.move_to_end(key)
        while len(self.read) > REMEMBERED:
            self.read.popitem(last=False)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        redis_key = self.key_builder.build(key, "data")
        current = asyncio.current_task()
        kept = self._kept(redis_key) if self.turns else None
        if kept is not None and redis_key in kept:
            raw = kept[redis_key]
            return cast(dict[str, Any], self.json_loads(raw)) if raw is not None else {}
        task, raw = self.ahead.pop(redis_key, (None, None))
        if task is None or task is not current:
            value = await self.redis.get(redis_key)
            raw = value.decode("utf-8") if isinstance(value, bytes) else value
        self._remember(redis_key, raw)
        return cast(dict[str, Any], self.json_loads(raw)) if raw is not None else {}

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        redis_key = self.key_builder.build(key, "data")
        raw = self.json_dumps(data) if data else None
        current = asyncio.current_task()
        task, seen = self.read.pop(redis_key, (None, None))
        if task is not None and task is current and seen == raw and not self.data_ttl:
            return
        kept = self._kept(redis_key) if self.turns else None
        if kept is not None:
            kept[redis_key] = raw
            self._remember(redis_key, raw)
            return
        await super().set_data(key, data)
