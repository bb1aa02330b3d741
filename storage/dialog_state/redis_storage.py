"""aiogram's Redis FSM storage, with fewer round trips per update."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage

from storage.redis_pipelined import PipelinedRedis


@dataclass
class Turn:
    """What one update knows of its member's dialog keys while it holds the member's lock:
    dropped with the turn, so nothing of an update outlives it."""

    prefix: str  # the member's keys start with it
    ahead: dict[str, str | None]  # read by the lock, served once
    seen: dict[str, str | None] = field(default_factory=dict)  # as Redis has it
    kept: dict[str, str | None] = field(default_factory=dict)  # written (None: deleted)


class RedisDialogStorage(RedisStorage):
    """aiogram-dialog reads a member's dialog stack and context at every update and writes
    both back, changed or not: up to four Redis round trips per tap.

    With the member lock (storage/dialog_state/member_lock.py) they take none of their own.
    The lock's round trip reads the member's stack and context (`begin_turn`); the update's
    writes are kept until the lock is released and go with the release (`end_turn`): still
    before the update ends, in the same round trip. A write of what the update read is
    dropped. That is safe because a member's updates take turns across instances: within
    the turn nobody else changes the member's keys. Reads and writes outside a turn (another
    member's keys, no lock) go to Redis as aiogram's storage sends them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per task (an update), the turns it holds, innermost last.
        self.turns: dict[asyncio.Task[Any] | None, list[Turn]] = {}
        # The lock's pipelined connection, lent for a turn's reads (set by the lock).
        self.fast: PipelinedRedis | None = None

    def begin_turn(self, prefix: str, ahead: Mapping[str, bytes | str | None]) -> None:
        """The current task holds the lock of the member whose keys start with `prefix`;
        `ahead`: values the lock read with it."""
        if self.data_ttl:  # every write refreshes the TTL: none may be dropped
            return
        read = {k: v.decode() if isinstance(v, bytes) else v for k, v in ahead.items()}
        self.turns.setdefault(asyncio.current_task(), []).append(Turn(prefix, read))

    def end_turn(self) -> dict[str, str | None]:
        """The writes kept since `begin_turn` (None: delete the key), for the lock's release."""
        task = asyncio.current_task()
        turns = self.turns.get(task)
        if not turns:
            return {}
        turn = turns.pop()
        if not turns:
            del self.turns[task]
        return turn.kept

    def _turn(self, redis_key: str) -> Turn | None:
        """The current update's turn of the member this key belongs to, if it holds one."""
        for turn in reversed(self.turns.get(asyncio.current_task(), ())):
            if redis_key.startswith(turn.prefix):
                return turn
        return None

    def _loads(self, raw: str | None) -> dict[str, Any]:
        return cast(dict[str, Any], self.json_loads(raw)) if raw is not None else {}

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        redis_key = self.key_builder.build(key, "data")
        turn = self._turn(redis_key) if self.turns else None
        if turn is None:
            return await super().get_data(key)
        if redis_key in turn.kept:
            return self._loads(turn.kept[redis_key])
        if redis_key in turn.ahead:
            raw = turn.ahead.pop(redis_key)
        else:
            value = await (self.fast or self.redis).execute_command("GET", redis_key)
            raw = value.decode("utf-8") if isinstance(value, bytes) else value
        turn.seen[redis_key] = raw
        return self._loads(raw)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        redis_key = self.key_builder.build(key, "data")
        turn = self._turn(redis_key) if self.turns else None
        if turn is None:
            await super().set_data(key, data)
            return
        raw = self.json_dumps(data) if data else None
        if redis_key not in turn.kept and redis_key in turn.seen and turn.seen[redis_key] == raw:
            return  # as Redis has it: nothing to send
        turn.kept[redis_key] = raw
