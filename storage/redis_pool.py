"""Redis clients for the bot's shared state (FSM, member locks, the shared rate limit)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

# Connections per client. redis-py's default pool raises "Too many connections" past 100
# at once, which a crowd of updates reaches; this one makes the extra callers wait instead.
POOL_SIZE = 50
POOL_WAIT_SECONDS = 20.0


def redis_client(url: str, size: int = POOL_SIZE) -> Redis:
    return Redis(
        connection_pool=BlockingConnectionPool.from_url(
            url, max_connections=size, timeout=POOL_WAIT_SECONDS
        )
    )
