"""aiogram FSM storage in the database, so dialogs survive restarts without Redis."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StorageKey
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import FsmRecord


class SQLStorage(BaseStorage):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
        engine: AsyncEngine | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine  # disposed on close when the storage owns it
        # aiogram-dialog needs the destiny in the key (one stack per destiny).
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    async def _upsert(self, key: StorageKey, **values: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            record = await session.get(FsmRecord, self._key(key), with_for_update=True)
            if record is None:
                record = FsmRecord(key=self._key(key), state=None, data=None)
                for name, value in values.items():
                    setattr(record, name, value)
                if record.state is not None or record.data is not None:
                    session.add(record)
                return
            for name, value in values.items():
                setattr(record, name, value)
            if record.state is None and record.data is None:
                await session.delete(record)

    async def _get(self, key: StorageKey) -> FsmRecord | None:
        async with self.sessionmaker() as session:
            return await session.get(FsmRecord, self._key(key))

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._upsert(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._get(key)
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(key, data=json.dumps(dict(data)) if data else None)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._get(key)
        return json.loads(record.data) if record and record.data else {}

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
