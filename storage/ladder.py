"""Queries of the escalation ladder (bot/escalation.py) and of the Claim messages to retire.

A ladder step is one guarded UPDATE on the request (`WHERE status = 'open' AND escalation_step =
:step AND nudge_due_at <= :now`): of any number of runners that see the same step due, exactly
one moves it on, and only that one owes the step's messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import Status
from storage.driver import on_driver
from storage.models import Notification, Request


async def due_steps(session: AsyncSession, now: datetime, limit: int) -> list[tuple[int, int]]:
    """(request id, step) of open requests whose next step is due: an index range scan."""
    rows = await session.execute(
        select(Request.id, Request.escalation_step)
        .where(Request.status == Status.OPEN.value, Request.nudge_due_at <= now)
        .order_by(Request.nudge_due_at)
        .limit(limit)
    )
    return [(int(row[0]), int(row[1])) for row in rows.all()]


async def take_step(
    session: AsyncSession,
    request_id: int,
    step: int,
    now: datetime,
    *,
    next_step: int,
    next_due: datetime | None,
) -> bool:
    """Move the ladder from `step` to `next_step`; true only for the one caller that did."""
    result = await session.execute(
        update(Request)
        .where(
            Request.id == request_id,
            Request.status == Status.OPEN.value,
            Request.escalation_step == step,
            Request.nudge_due_at <= now,
        )
        .values(escalation_step=next_step, nudge_due_at=next_due, version=Request.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def delivered_claim_messages(session: AsyncSession, request_id: int, kinds: Iterable[str]) -> list[Any]:
    """The request's delivered messages of `kinds` whose place is known (to edit them): rows
    of id, audience and member_id."""
    rows = await session.execute(_DELIVERED_CLAIM_MESSAGES, {"request_id": request_id, "kinds": list(kinds)})
    return list(rows.all())


_DELIVERED_CLAIM_MESSAGES = on_driver(  # built once: it runs on every claim
    select(Notification.id, Notification.audience, Notification.member_id)
    .where(
        Notification.request_id == bindparam("request_id"),
        Notification.kind.in_(bindparam("kinds", expanding=True)),
        Notification.message_ref.is_not(None),
    )
    .order_by(Notification.id)
)


async def request_status(session: AsyncSession, request_id: int, *, lock: bool = False) -> str | None:
    """The request's status; with `lock`, its row is held until the transaction ends (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already serialises writers)."""
    query = select(Request.status).where(Request.id == request_id)
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return await session.scalar(query)
