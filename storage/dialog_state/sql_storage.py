"""aiogram FSM storage in the database, so dialogs survive restarts without Redis."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StorageKey
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.dialog_state import codec
from storage.hot_path.statements import Direct
from storage.models import FsmRecord
from storage.upsert import upsert_for

# (state, data as JSON): what the database holds for a key; (None, None) when it has no row.
Row = tuple[str | None, str | None]
CACHED_KEYS = 20_000


@dataclass(frozen=True)
class FsmStatements:
    """Built once per storage: they run at almost every update."""

    read: Any
    write: dict[str, Any]  # by column: "state" or "data"
    drop_empty: Any

    @classmethod
    def build(cls, insert: Any) -> FsmStatements:
        table = FsmRecord.__table__
        write = {}
        for column in ("state", "data"):
            upsert = insert(table).values(key=bindparam("k"), **{column: bindparam("v")})
            write[column] = upsert.on_conflict_do_update(
                index_elements=[table.c.key], set_={column: upsert.excluded[column]}
            )
        return cls(
            read=select(table.c.state, table.c.data).where(table.c.key == bindparam("k")),
            write=write,
            drop_empty=delete(table).where(
                table.c.key == bindparam("k"), table.c.state.is_(None), table.c.data.is_(None)
            ),
        )


class SQLStorage(BaseStorage):
    """State and data per key in `fsm_records`, one statement per change.

    aiogram-dialog reads a member's stack and context at every update and writes both back,
    changed or not. With `cache` (the default on SQLite, where one process owns the
    database), reads are served from memory and unchanged writes are skipped; every change
    still reaches the database before the update ends, so a killed process loses nothing.
    Without it (PostgreSQL, possibly several instances), every read goes to the database.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
        engine: AsyncEngine | None = None,
        cache: bool | None = None,
    ) -> None:
        self.engine: AsyncEngine = engine or sessionmaker.kw["bind"]
        self.owns_engine = engine is not None  # disposed on close when the storage owns it
        # aiogram-dialog needs the destiny in the key (one stack per destiny).
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        self.cache = self.engine.dialect.name == "sqlite" if cache is None else cache
        self.rows: OrderedDict[str, Row] = OrderedDict()
        self.sql = FsmStatements.build(upsert_for(self.engine))
        self.direct = Direct.of(self.engine)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    async def _row(self, key: str) -> Row:
        if self.cache and key in self.rows:
            self.rows.move_to_end(key)
            return self.rows[key]
        async with self.direct.reading() as db:
            found = await db.rows(self.sql.read, {"k": key})
        row: Row = (found[0][0], found[0][1]) if found else (None, None)
        self._remember(key, row)
        return row

    def _remember(self, key: str, row: Row) -> None:
        if not self.cache:
            return
        self.rows[key] = row
        self.rows.move_to_end(key)
        while len(self.rows) > CACHED_KEYS:
            self.rows.popitem(last=False)

    async def _write(self, key: str, column: str, value: str | None, row: Row) -> None:
        """Set one column (the other is left as the database has it), dropping empty rows."""
        async with self.direct.writing() as db:
            await db.run(self.sql.write[column], {"k": key, "v": value})
            if value is None:
                await db.run(self.sql.drop_empty, {"k": key})
        self._remember(key, row)

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        value = state.state if isinstance(state, State) else state
        name = self._key(key)
        if self.cache:
            old, data = await self._row(name)
            if old == value:
                return
            await self._write(name, "state", value, (value, data))
        else:
            await self._write(name, "state", value, (value, None))

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._row(self._key(key)))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        value = codec.dumps(dict(data)) if data else None
        name = self._key(key)
        if self.cache:
            state, old = await self._row(name)
            if old == value:
                return
            await self._write(name, "data", value, (state, value))
        else:
            await self._write(name, "data", value, (None, value))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        data = (await self._row(self._key(key)))[1]
        # A fresh copy each time: aiogram-dialog changes what it loaded before saving it.
        return codec.loads(data) if data else {}  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.owns_engine:
            await self.engine.dispose()
