"""Sessions that give their connection back between reads and a wait.

An update reads (the member, the screen's data) and then waits for Telegram to show the
screen: milliseconds usually, seconds when the Bot API is slow. A session keeps its pooled
connection from its first statement until its transaction ends, so with a slow Bot API the
updates waiting for it held every connection of the pool, and the next ones gave up after
DATABASE_POOL_TIMEOUT (PoolExhausted). `end_reads` ends a transaction that has only read,
which gives its connection back; one that wrote or locked rows is left to its own commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

_WROTE = "consultbot_wrote"


class TrackedSession(Session):
    """A session that notes in its `info` whether its transaction wrote or locked rows."""


@event.listens_for(TrackedSession, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    # Anything but a plain SELECT counts as a write: DML, DDL, text(), SELECT … FOR UPDATE.
    if not state.is_select or getattr(state.statement, "_for_update_arg", None) is not None:
        state.session.info[_WROTE] = True


@event.listens_for(TrackedSession, "after_flush")
def _on_flush(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(TrackedSession, "after_transaction_end")
def _on_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost one: the connection went back
        session.info.pop(_WROTE, None)


def only_read(session: AsyncSession) -> bool:
    """True when the session holds a transaction in which it has only read."""
    sync = session.sync_session
    return (
        sync.in_transaction()
        and not sync.in_nested_transaction()
        and not sync.info.get(_WROTE)
        and not (sync.new or sync.dirty or sync.deleted)
    )


async def end_reads(session: AsyncSession) -> bool:
    """End the session's transaction if it has only read (its objects stay loaded:
    expire_on_commit is off); the next statement takes a connection again."""
    if not only_read(session):
        return False
    await session.commit()
    return True
