"""Redis as the bot uses it with PostgreSQL: a crowd of updates at once, and one update at a
time per member across instances."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.app import create_isolation, create_storage
from bot.config import Settings
from storage.dialog_state import member_lock
from storage.dialog_state.member_lock import SharedMemberLock
from storage.redis_pool import redis_client
from tests.support import REDIS_URL, record_calls

BOT_ID = 123456789


def key(user: int) -> StorageKey:
    return StorageKey(bot_id=BOT_ID, chat_id=user, user_id=user)


async def reachable() -> None:
    client = redis_client(REDIS_URL)
    try:
        await client.ping()
    except (OSError, RedisConnectionError) as exc:
        pytest.fail(f"Redis is required for this test and unreachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()


async def test_three_hundred_updates_at_once_wait_for_a_connection() -> None:
    # redis-py's default pool raised "Too many connections" past 100 callers at once: at 200
    # members every update failed before reaching a handler.
    await reachable()
    settings = Settings(bot_token=None, redis_url=REDIS_URL)
    storage = create_storage(settings, sessionmaker=None)
    isolation = create_isolation(settings)
    try:

        async def update(user: int) -> dict[str, object]:
            async with isolation.lock(key(user)):
                await storage.set_data(key(user), {"n": user})
                return await storage.get_data(key(user))

        results = await asyncio.gather(*(update(70_000 + i) for i in range(300)))
        assert [r["n"] for r in results] == [70_000 + i for i in range(300)]
    finally:
        await storage.close()
        await isolation.close()


async def test_one_update_at_a_time_per_member_across_instances() -> None:
    await reachable()
    instances = [SharedMemberLock(redis_client(REDIS_URL)) for _ in range(2)]
    await instances[0].redis.delete(instances[0].key_builder.build(key(1), "lock"))
    inside: list[int] = []
    overlaps: list[tuple[int, ...]] = []
    order: list[int] = []

    async def update(n: int) -> None:
        async with instances[n % 2].lock(key(1)):
            inside.append(n)
            if len(inside) > 1:
                overlaps.append(tuple(inside))
            await asyncio.sleep(0)  # a handler awaits: the other instance gets its chance
            order.append(n)
            inside.remove(n)

    async def other_member() -> None:
        async with instances[1].lock(key(2)):
            order.append(-1)

    try:
        async with instances[0].lock(key(1)):
            # Queued behind the held lock: the other member is not held up by it.
            waiting = [asyncio.create_task(update(n)) for n in range(20)]
            await asyncio.wait_for(other_member(), timeout=5)
            assert order == [-1]
        await asyncio.wait_for(asyncio.gather(*waiting), timeout=20)
        assert overlaps == []
        assert sorted(order[1:]) == list(range(20))
        # Within one instance the queue is first come, first served.
        assert [n for n in order[1:] if n % 2 == 0] == list(range(0, 20, 2))
    finally:
        for instance in instances:
            await instance.close()


async def test_a_slow_update_keeps_its_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lock lapsed after LOCK_SECONDS whatever the update was doing: another instance then
    # ran the member's next update beside it.
    await reachable()
    monkeypatch.setattr(member_lock, "LOCK_SECONDS", 1.5)  # renewed every 0.5 s
    lock = SharedMemberLock(redis_client(REDIS_URL))
    other = SharedMemberLock(redis_client(REDIS_URL))  # another instance
    renewed = asyncio.Event()
    renewals = 0
    renew = lock.renew

    async def counting_renew(*args: Any, **kwargs: Any) -> Any:
        nonlocal renewals
        result = await renew(*args, **kwargs)
        renewals += 1
        if renewals >= 5:  # about 2.5 s: well past the lock's own lifetime
            renewed.set()
        return result

    lock.renew = counting_renew  # type: ignore[method-assign]
    entered = asyncio.Event()
    try:

        async def slow_update() -> None:
            async with lock.lock(key(4)):
                entered.set()
                # The handler's own work lasts until the lock has outlived its lifetime.
                async with asyncio.timeout(60):
                    await renewed.wait()

        slow = asyncio.create_task(slow_update())
        await entered.wait()
        overtaken = asyncio.create_task(other.lock(key(4)).__aenter__())
        done, _ = await asyncio.wait({slow, overtaken}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {slow}, "the other instance took the lock of a running update"
        await slow
        await overtaken  # and gets it once the slow update is over
    finally:
        await lock.close()
        await other.close()


async def test_a_lost_lock_writes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    # The release wrote the update's dialog state even when the lock was gone: a slow update
    # overwrote newer state another instance had written under the lock meanwhile.
    from uuid import uuid4

    from storage.dialog_state.redis_storage import RedisDialogStorage

    await reachable()
    builder = DefaultKeyBuilder(with_destiny=True, prefix=f"lost-{uuid4().hex[:8]}")
    storage = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)
    other_storage = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)
    lock = SharedMemberLock(redis_client(REDIS_URL), storage=storage)
    other = SharedMemberLock(redis_client(REDIS_URL), storage=other_storage)
    member = StorageKey(bot_id=BOT_ID, chat_id=5, user_id=5, destiny="default")
    stack = replace(member, destiny="aiogd:stack:")
    name = lock.key_builder.build(member, "lock")

    async def other_update() -> None:
        async with other.lock(member):
            await other_storage.set_data(stack, {"intents": ["newer"]})

    try:
        async with lock.lock(member):
            await storage.set_data(stack, {"intents": ["old"]})
            await lock.redis.delete(name)  # lapsed: the process was frozen, say
            await asyncio.create_task(other_update())  # another instance, meanwhile
        assert await other_storage.get_data(stack) == {"intents": ["newer"]}
        assert "lost" in caplog.text
        # And the member is served again at once.
        async with asyncio.timeout(2), lock.lock(member):
            assert await lock.redis.exists(name)
    finally:
        for closing in (lock, other, storage, other_storage):
            await closing.close()


async def test_redis_connections_dropped_are_retried() -> None:
    # A Redis restart drops every pooled connection: the first command on each then failed,
    # 40 of 40 member turns with it.
    from uuid import uuid4

    from storage.dialog_state.redis_storage import RedisDialogStorage

    await reachable()
    builder = DefaultKeyBuilder(with_destiny=True, prefix=f"blip-{uuid4().hex[:8]}")
    storage = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)
    lock = SharedMemberLock(redis_client(REDIS_URL), storage=storage)
    admin = redis_client(REDIS_URL)

    async def turn(user: int) -> dict[str, Any]:
        member = StorageKey(bot_id=BOT_ID, chat_id=user, user_id=user, destiny="default")
        async with lock.lock(member):
            await storage.set_data(member, {"n": user})
            return await storage.get_data(member)

    try:
        await asyncio.gather(*(turn(80_000 + i) for i in range(40)))  # the pools fill
        # Every connection to this test's database, as a restart would; not another test
        # worker's (they use other databases).
        me = await admin.client_id()
        db = str(admin.connection_pool.connection_kwargs.get("db", 0))
        ours = [c["id"] for c in await admin.client_list() if c["db"] == db and c["id"] != str(me)]
        killed = 0
        for client in ours:
            killed += await admin.execute_command("CLIENT KILL", "ID", client)
        assert killed >= 1
        assert lock.fast.connections == 1  # the lock's pipelined connection among them
        results = await asyncio.gather(*(turn(80_000 + i) for i in range(40)))
        assert [r["n"] for r in results] == [80_000 + i for i in range(40)]
        assert lock.fast.connections == 2  # made again once, for every turn waiting on it
    finally:
        for closing in (lock, storage):
            await closing.close()
        await admin.aclose()


async def test_the_lock_reads_the_members_dialog_ahead_in_its_round_trip() -> None:
    from uuid import uuid4

    from storage.dialog_state.redis_storage import RedisDialogStorage

    await reachable()
    builder = DefaultKeyBuilder(with_destiny=True, prefix=f"ahead-{uuid4().hex[:8]}")
    storage = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)
    lock = SharedMemberLock(redis_client(REDIS_URL), storage=storage)
    member = StorageKey(bot_id=BOT_ID, chat_id=7, user_id=7, destiny="default")
    stack = StorageKey(bot_id=BOT_ID, chat_id=7, user_id=7, destiny="aiogd:stack:")
    context = StorageKey(bot_id=BOT_ID, chat_id=7, user_id=7, destiny="aiogd:context:AbC1")
    await storage.set_data(stack, {"_id": "", "intents": ["old", "AbC1"]})
    await storage.set_data(context, {"id": "AbC1", "dialog_data": {"q": "x"}})
    gets = record_calls(storage.redis, "get")

    async def update() -> tuple[dict[str, Any], dict[str, Any]]:
        async with lock.lock(member):
            return await storage.get_data(stack), await storage.get_data(context)

    try:
        seen = await asyncio.create_task(update())
        assert seen == (
            {"_id": "", "intents": ["old", "AbC1"]},
            {"id": "AbC1", "dialog_data": {"q": "x"}},
        )
        assert gets == []  # both came with the lock
        # Read outside an update that took the lock: Redis is asked.
        assert await storage.get_data(context) == {"id": "AbC1", "dialog_data": {"q": "x"}}
        assert len(gets) == 1
        # A new member (no stack yet) and a stack whose context is gone: nothing read wrongly.
        await storage.set_data(context, {})
        gets.clear()
        assert await asyncio.create_task(update()) == ({"_id": "", "intents": ["old", "AbC1"]}, {})
        assert gets == []
        await storage.set_data(stack, {})

        async def first_update() -> dict[str, Any]:
            async with lock.lock(member):
                return await storage.get_data(stack)

        assert await asyncio.create_task(first_update()) == {}
        assert gets == []
        # Nothing of an update outlives its turn (it kept every update's task and JSON, up
        # to 20,000 of them: 2-3 MB at 200 members).
        assert storage.turns == {}
    finally:
        await lock.close()
        await storage.close()


async def test_an_updates_dialog_writes_go_with_the_locks_release() -> None:
    from uuid import uuid4

    from storage.dialog_state.redis_storage import RedisDialogStorage

    await reachable()
    builder = DefaultKeyBuilder(with_destiny=True, prefix=f"turn-{uuid4().hex[:8]}")
    storage = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)
    other = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)  # another instance
    lock = SharedMemberLock(redis_client(REDIS_URL), storage=storage)

    def keys(user: int) -> tuple[StorageKey, StorageKey, StorageKey]:
        member = StorageKey(bot_id=BOT_ID, chat_id=user, user_id=user, destiny="default")
        stack = replace(member, destiny="aiogd:stack:")
        return member, stack, replace(member, destiny="aiogd:context:Ctx1")

    anne, anne_stack, anne_context = keys(8)
    bob, bob_stack, bob_context = keys(9)
    sets = record_calls(storage.redis, "set")

    async def update(fail: bool = False) -> None:
        async with lock.lock(anne):
            await storage.set_data(anne_stack, {"intents": ["Ctx1"]})
            await storage.set_data(anne_context, {"id": "Ctx1", "n": 1})
            assert await storage.get_data(anne_context) == {"id": "Ctx1", "n": 1}
            assert await other.get_data(anne_context) == {}  # not sent yet
            await storage.set_data(bob_context, {"id": "Ctx1", "bob": True})  # not Anne's
            assert await other.get_data(bob_context) == {"id": "Ctx1", "bob": True}
            async with lock.lock(bob):  # another member's turn inside hers
                await storage.set_data(bob_stack, {"intents": ["Ctx1"]})
            assert await other.get_data(bob_stack) == {"intents": ["Ctx1"]}  # sent at his release
            if fail:
                raise RuntimeError("the handler failed")

    try:
        await asyncio.create_task(update())
        assert sets == [storage.key_builder.build(bob_context, "data")]  # the rest by script
        assert await other.get_data(anne_stack) == {"intents": ["Ctx1"]}
        assert await other.get_data(anne_context) == {"id": "Ctx1", "n": 1}
        await other.set_data(anne_context, {})
        with pytest.raises(RuntimeError):
            await asyncio.create_task(update(fail=True))
        assert await other.get_data(anne_context) == {"id": "Ctx1", "n": 1}  # kept all the same

        # An emptied context is deleted with the release.
        async def clear() -> None:
            async with lock.lock(anne):
                await storage.get_data(anne_stack)
                await storage.set_data(anne_context, {})

        await asyncio.create_task(clear())
        assert not await other.redis.exists(storage.key_builder.build(anne_context, "data"))
        assert not await other.redis.exists(lock.key_builder.build(anne, "lock"))
    finally:
        await lock.close()
        await storage.close()
        await other.close()


async def test_a_starting_bot_connects_the_locks_connection_before_the_crowd() -> None:
    await reachable()
    isolation = create_isolation(Settings(bot_token=None, redis_url=REDIS_URL))
    assert isinstance(isolation, SharedMemberLock)
    try:
        assert not isolation.fast.connected
        await isolation.open()
        assert isolation.fast.connected and isolation.fast.connections == 1

        async def update(user: int) -> None:
            async with isolation.lock(key(user)):
                await asyncio.sleep(0.01)

        await asyncio.gather(*(update(71_000 + i) for i in range(100)))
        # the crowd found its connection open and shared it: none was made during it
        assert isolation.fast.connections == 1
    finally:
        await isolation.close()
