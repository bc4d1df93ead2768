"""Queries for mentor profiles and the capacity-guarded claim.

The claim's capacity check lives inside the claim's own UPDATE, so the check and the claim are
one statement: two claims by the same mentor can never both pass a stale count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain import Status
from storage.models import Member, MentorProfile, Request

LOAD_STATUSES = (Status.CLAIMED.value, Status.SCHEDULED.value)


async def get(session: AsyncSession, member_id: int) -> MentorProfile | None:
    return await session.get(MentorProfile, member_id)


async def save(
    session: AsyncSession,
    *,
    member: Member,
    skills: Iterable[str],
    capacity: int,
    away_until: date | None,
    now: datetime,
) -> MentorProfile:
    profile = await session.get(MentorProfile, member.id)
    if profile is None:
        profile = MentorProfile(member_id=member.id, platform=member.platform, workspace=member.workspace)
        session.add(profile)
    profile.skills = list(skills)
    profile.capacity = capacity
    profile.away_until = away_until
    profile.updated_at = now
    await session.flush()
    return profile


async def load_of(session: AsyncSession, member_id: int) -> int:
    """Active sessions the mentor carries now: claimed + scheduled requests."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Request)
            .where(Request.claimed_by_id == member_id, Request.status.in_(LOAD_STATUSES))
        )
        or 0
    )


async def claim_within_capacity(
    session: AsyncSession,
    request_id: int,
    mentor_id: int,
    *,
    default_capacity: int,
    now: datetime,
) -> bool:
    """open -> claimed for `mentor_id`, only while their load is below their capacity."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise one mentor's claims: the UPDATE below then starts after the other claim
        # committed and (READ COMMITTED) counts it. SQLite's BEGIN IMMEDIATE already serialises.
        await session.execute(select(Member.id).where(Member.id == mentor_id).with_for_update())
    other = aliased(Request)
    load = (
        select(func.count())
        .select_from(other)
        .where(other.claimed_by_id == mentor_id, other.status.in_(LOAD_STATUSES))
        .scalar_subquery()
    )
    capacity = func.coalesce(
        select(MentorProfile.capacity).where(MentorProfile.member_id == mentor_id).scalar_subquery(),
        default_capacity,
    )
    result = await session.execute(
        update(Request)
        .where(Request.id == request_id, Request.status == Status.OPEN.value, load < capacity)
        .values(
            version=Request.version + 1,
            status=Status.CLAIMED.value,
            claimed_by_id=mentor_id,
            claimed_at=now,
            nudge_due_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
