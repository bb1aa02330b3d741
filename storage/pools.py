"""One instance's PostgreSQL connections: one budget shared by all its pools, and a wait for
a free connection that ends with a clear error instead of a hang.

PostgreSQL refuses connections past its `max_connections` (100 by default), and then refuses
the backup, the migration and the CLI too. Each pool therefore has a fixed size (no overflow)
taken from `DATABASE_MAX_CONNECTIONS`; README (Deployment) gives the sum for N instances.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool

log = logging.getLogger(__name__)


class PoolExhausted(TimeoutError):
    """No connection of a pool became free in time (the pool is full: raise the budget or
    lower the work done at once)."""


def exhausted(pool: str, size: int, timeout: float) -> str:
    return (
        f"no free PostgreSQL connection in the {pool} pool ({size} connections, all busy) "
        f"after {timeout:g} s: this update gives up. If it happens often, raise "
        "DATABASE_MAX_CONNECTIONS (README: Deployment) or lower UPDATE_CONCURRENCY."
    )


class LoggedQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool for asyncio, whose time-out says which pool and what to do."""

    # Its own log lines under SQLAlchemy's (quiet unless asked), like the pool it extends.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.LoggedQueuePool"

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except exc.TimeoutError:
            name = self._orig_logging_name or "database"
            message = exhausted(name, self.size(), self._timeout)
            log.error(message)
            raise PoolExhausted(message) from None


@dataclass(frozen=True)
class PoolBudget:
    """How `total` connections are shared. The parts always add up to `total`."""

    total: int
    main: int  # SQLAlchemy: each update's session, the scheduler's jobs
    hot_path: int  # asyncpg: a tap's statements (storage/hot_path)
    dialogs: int  # the dialog storage's engine when the dialogs live in PostgreSQL (else 0)
    outbox: int  # SQLAlchemy: the sender's own, so a crowd cannot stall a broadcast
    timeout: float

    @classmethod
    def split(cls, total: int, timeout: float, *, dialogs_in_database: bool) -> PoolBudget:
        outbox = max(2, total // 8)
        hot_path = max(2, total // 4)
        dialogs = max(2, total // 4) if dialogs_in_database else 0
        main = total - outbox - hot_path - dialogs
        if main < 2:
            raise ValueError(f"{total} connections are too few for this instance's pools")
        return cls(total, main, hot_path, dialogs, outbox, timeout)

    def engine_options(self, name: str, size: int) -> dict[str, Any]:
        """`make_engine` keyword arguments for a pool of exactly `size` connections."""
        return {
            "poolclass": LoggedQueuePool,
            "pool_size": size,
            "max_overflow": 0,
            "pool_timeout": self.timeout,
            "pool_logging_name": name,
        }
