"""Redis clients for the bot's shared state (FSM, member locks, the shared rate limit)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Connections per client. redis-py's default pool raises "Too many connections" past 100
# at once, which a crowd of updates reaches; this one makes the extra callers wait instead.
POOL_SIZE = 50
POOL_WAIT_SECONDS = 20.0
# A pool built from a URL retries nothing: after a Redis restart the first command on every
# pooled connection failed. Retried with back-off, a restart of a few seconds is ridden out.
RETRIES = 6
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0


def redis_client(url: str, size: int = POOL_SIZE) -> Redis:
    return Redis(
        connection_pool=BlockingConnectionPool.from_url(
            url,
            max_connections=size,
            timeout=POOL_WAIT_SECONDS,
            retry=Retry(
                ExponentialWithJitterBackoff(base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS),
                RETRIES,
            ),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=30,
        )
    )
