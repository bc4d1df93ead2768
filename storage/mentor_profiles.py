"""Queries for mentor profiles and the capacity-guarded claim.

The claim's capacity check lives inside the claim's own UPDATE, so the check and the claim are
one statement: two claims by the same mentor can never both pass a stale count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from bot.domain import Status
from storage.driver import on_driver
from storage.models import (
    AvailabilityWindow,
    Member,
    MentorProfile,
    MentorSkill,
    Request,
    RequestSuggestion,
    table_of,
)

LOAD_STATUSES = (Status.CLAIMED.value, Status.SCHEDULED.value)
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# The pool is bounded so posting costs the same with 10 profiles or 10,000. Inside it the core
# ranks fully; the database pre-orders by the first and last keys of that ranking (shared tags,
# then least recently suggested), so who makes the pool is as fair as who is picked from it.
TAG_POOL = 40  # best tag matches considered (away and full mentors left out in SQL, as in the fair pool)
FAIR_POOL = 20  # least recently suggested profiles considered besides
RELEASED_ROUND = -1  # request_suggestions.round of a mentor who released the request (not asked)
# request_suggestions.round of a mentor who called off a session of an earlier copy of the
# request (never asked; carried to the next copy, see bot/matching.py `left_out_of_copy`).
CALLED_OFF_ROUND = -2
LATEST_ZONE_OFFSET = timedelta(hours=14)  # UTC+14 (Kiribati): the first zone into a new day


@dataclass(frozen=True)
class CandidateRow:
    member_id: int
    external_id: str
    display_name: str
    skills: tuple[str, ...]
    capacity: int
    away_until: date | None
    last_suggested_at: datetime
    load: int
    weekdays: frozenset[int]  # weekdays of the mentor's weekly availability
    timezone: str | None = None  # the mentor's own zone: "away until" ends on their date


async def candidates(
    session: AsyncSession,
    *,
    platform: str,
    workspace: str,
    tags: Sequence[str],
    now: datetime,
    exclude: Collection[int] = (),
) -> list[CandidateRow]:
    """A bounded pool of profiles for matching, found through indexes: the best tag matches
    plus the least recently suggested; then their load and availability in two grouped reads.
    Its cost follows the pool, not the number of profiles. `exclude`: member ids left out.

    "Away until" is a date in the mentor's own zone, which the query does not know: it keeps
    everyone back by the latest date anywhere (UTC+14), and the ranking checks each mentor's
    own date (bot/matching.py `eligible`)."""
    latest_today = (now.astimezone(UTC) + LATEST_ZONE_OFFSET).date()
    ids: dict[int, None] = {}
    # Away and full mentors are never suggested, so they would be the least recently suggested:
    # both pools leave them out, or enough of them would fill the pools. The full ones are found
    # once, from the active claims (their number, not the profiles', sets the cost): a load
    # counted per profile made PostgreSQL count it for every profile of the workspace.
    full = (
        select(Request.claimed_by_id)
        .join(MentorProfile, MentorProfile.member_id == Request.claimed_by_id)
        .where(
            Request.status.in_(LOAD_STATUSES),
            MentorProfile.platform == platform,
            MentorProfile.workspace == workspace,
        )
        .group_by(Request.claimed_by_id, MentorProfile.capacity)
        .having(func.count() >= MentorProfile.capacity)
    )
    here = ((MentorProfile.away_until.is_(None)) | (MentorProfile.away_until <= latest_today)) & (
        MentorProfile.member_id.not_in(full)
    )
    if exclude:
        here = here & MentorProfile.member_id.not_in(list(exclude))
    if tags:
        shared = func.count().label("shared")
        tag_rows = await session.execute(
            select(MentorSkill.member_id, shared)
            .join(MentorProfile, MentorProfile.member_id == MentorSkill.member_id)
            .where(
                MentorSkill.platform == platform,
                MentorSkill.workspace == workspace,
                MentorSkill.tag.in_(list(tags)),
                here,
            )
            .group_by(MentorSkill.member_id, MentorProfile.last_suggested_at)
            .order_by(shared.desc(), MentorProfile.last_suggested_at, MentorSkill.member_id)
            .limit(TAG_POOL)
        )
        ids.update((row[0], None) for row in tag_rows)
    fair = await session.scalars(
        select(MentorProfile.member_id)
        .where(MentorProfile.platform == platform, MentorProfile.workspace == workspace, here)
        .order_by(MentorProfile.last_suggested_at, MentorProfile.member_id)
        .limit(FAIR_POOL)
    )
    ids.update((member_id, None) for member_id in fair)
    if not ids:
        return []
    wanted = list(ids)
    rows = (
        await session.execute(
            select(MentorProfile, Member)
            .join(Member, Member.id == MentorProfile.member_id)
            .where(MentorProfile.member_id.in_(wanted))
        )
    ).all()
    loads = dict(
        (
            await session.execute(
                select(Request.claimed_by_id, func.count())
                .where(Request.claimed_by_id.in_(wanted), Request.status.in_(LOAD_STATUSES))
                .group_by(Request.claimed_by_id)
            )
        ).all()
    )
    days: dict[int, set[int]] = {}
    for mentor_id, weekday in await session.execute(
        select(AvailabilityWindow.mentor_id, AvailabilityWindow.weekday).where(
            AvailabilityWindow.mentor_id.in_(wanted)
        )
    ):
        days.setdefault(mentor_id, set()).add(weekday)
    return [
        CandidateRow(
            member_id=profile.member_id,
            external_id=member.external_id,
            display_name=member.display_name,
            skills=tuple(profile.skills),
            capacity=profile.capacity,
            away_until=profile.away_until,
            last_suggested_at=profile.last_suggested_at,
            load=int(loads.get(profile.member_id, 0)),
            weekdays=frozenset(days.get(profile.member_id, ())),
            timezone=member.timezone,
        )
        for profile, member in rows
    ]


async def asked(session: AsyncSession, request_id: int) -> set[int]:
    return set(
        await session.scalars(
            select(RequestSuggestion.member_id).where(RequestSuggestion.request_id == request_id)
        )
    )


async def record_suggestions(
    session: AsyncSession, request_id: int, member_ids: Sequence[int], *, round_: int, now: datetime
) -> list[int]:
    """Record who was asked; returns the ones newly recorded (a second runner records nobody)."""
    already = await asked(session, request_id)
    fresh = [m for m in member_ids if m not in already]
    for member_id in fresh:
        session.add(
            RequestSuggestion(request_id=request_id, member_id=member_id, round=round_, created_at=now)
        )
    if fresh:
        await session.flush()
        await session.execute(
            update(MentorProfile)
            .where(MentorProfile.member_id.in_(fresh))
            .values(last_suggested_at=now)
            .execution_options(synchronize_session=False)
        )
    return fresh


async def not_to_ask_again(session: AsyncSession, request_id: int, member_id: int, *, now: datetime) -> None:
    """Count `member_id` as asked about the request without offering it (they released it), so a
    widening never DMs it back to them as a fit; fairness (last_suggested_at) is untouched."""
    if member_id not in await asked(session, request_id):
        session.add(
            RequestSuggestion(
                request_id=request_id, member_id=member_id, round=RELEASED_ROUND, created_at=now
            )
        )
        await session.flush()


async def called_off(session: AsyncSession, request_id: int) -> set[int]:
    """The mentors a request was never offered to because they called off an earlier copy."""
    return set(
        await session.scalars(
            select(RequestSuggestion.member_id).where(
                RequestSuggestion.request_id == request_id, RequestSuggestion.round == CALLED_OFF_ROUND
            )
        )
    )


async def keep_out(
    session: AsyncSession, request_id: int, member_ids: Collection[int], *, now: datetime
) -> None:
    """Count `member_ids` as asked about a new copy without offering it (they called off a
    session of an earlier copy), so neither posting nor a widening DMs it to them; fairness
    (last_suggested_at) is untouched and they may still claim it from the feed."""
    fresh = set(member_ids) - await asked(session, request_id)
    for member_id in sorted(fresh):
        session.add(
            RequestSuggestion(
                request_id=request_id, member_id=member_id, round=CALLED_OFF_ROUND, created_at=now
            )
        )
    if fresh:
        await session.flush()


async def rotate_back(session: AsyncSession, member_ids: Collection[int], *, now: datetime) -> None:
    """Move profiles to the back of the fairness rotation (the platform no longer counts them as
    mentors: left unmoved, they would stay the least recently suggested for good)."""
    await session.execute(
        update(MentorProfile)
        .where(MentorProfile.member_id.in_(list(member_ids)))
        .values(last_suggested_at=now)
        .execution_options(synchronize_session=False)
    )


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
        profile = MentorProfile(
            member_id=member.id,
            platform=member.platform,
            workspace=member.workspace,
            last_suggested_at=NEVER,
        )
        session.add(profile)
    profile.skills = list(skills)
    profile.capacity = capacity
    profile.away_until = away_until
    profile.updated_at = now
    await session.flush()
    await session.execute(delete(MentorSkill).where(MentorSkill.member_id == member.id))
    for tag in dict.fromkeys(skills):
        session.add(
            MentorSkill(member_id=member.id, tag=tag, platform=member.platform, workspace=member.workspace)
        )
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
    mentor_locked: bool = False,
) -> int | None:
    """open -> claimed for `mentor_id`, only while their load is below their capacity: the
    request's new version, or None when the claim was not won.

    On PostgreSQL one mentor's claims are serialised on their member row, so the UPDATE below
    starts after the other claim committed and (READ COMMITTED) counts it. `mentor_locked`: the
    caller already holds that row lock in this transaction (`upsert_member` takes it, as every
    INSERT … ON CONFLICT DO UPDATE does). SQLite's BEGIN IMMEDIATE already serialises."""
    if session.get_bind().dialect.name == "postgresql" and not mentor_locked:
        await session.execute(select(Member.id).where(Member.id == mentor_id).with_for_update())
    values = {"request_id": request_id, "mentor_id": mentor_id, "now": now}
    values["default_capacity"] = default_capacity
    version = await session.scalar(_CLAIM_WITHIN_CAPACITY, values)
    return int(version) if version is not None else None


def _claim_within_capacity() -> Any:
    # Built once with bind parameters (see storage/repository.py): this runs on every click.
    requests = table_of(Request)
    mentor: BindParameter[int] = bindparam("mentor_id")
    other = requests.alias("other")
    load = (
        select(func.count())
        .select_from(other)
        .where(other.c.claimed_by_id == mentor, other.c.status.in_(LOAD_STATUSES))
        .scalar_subquery()
    )
    capacity = func.coalesce(
        select(MentorProfile.capacity).where(MentorProfile.member_id == mentor).scalar_subquery(),
        bindparam("default_capacity"),
    )
    return (
        update(requests)
        .where(
            requests.c.id == bindparam("request_id"),
            requests.c.status == Status.OPEN.value,
            load < capacity,
        )
        .values(
            version=requests.c.version + 1,
            status=Status.CLAIMED.value,
            claimed_by_id=mentor,
            claimed_at=bindparam("now"),
            nudge_due_at=None,
        )
        .returning(requests.c.version)
    )


_CLAIM_WITHIN_CAPACITY = on_driver(_claim_within_capacity())


async def mentors_listing(
    session: AsyncSession,
    *,
    platform: str,
    workspace: str,
    tags: Sequence[str],
    besides: int | None = None,
) -> int:
    """How many mentors list at least one of `tags` (indexed by workspace and tag), not counting
    member `besides` (the student asking: their own profile is no mentor for them)."""
    if not tags:
        return 0
    query = select(func.count(func.distinct(MentorSkill.member_id))).where(
        MentorSkill.platform == platform,
        MentorSkill.workspace == workspace,
        MentorSkill.tag.in_(list(tags)),
    )
    if besides is not None:
        query = query.where(MentorSkill.member_id != besides)
    return int(await session.scalar(query) or 0)


async def recent_claim_waits(
    session: AsyncSession, *, platform: str, workspace: str, urgency: str, since: datetime, limit: int = 500
) -> list[float]:
    """Seconds from posting to claim of the latest claimed requests of one urgency since `since`."""
    rows = await session.execute(
        select(Request.created_at, Request.claimed_at)
        .where(
            Request.platform == platform,
            Request.workspace == workspace,
            Request.urgency == urgency,
            Request.created_at >= since,
            Request.claimed_at.is_not(None),
        )
        .order_by(Request.created_at.desc())
        .limit(limit)
    )
    return [(claimed - created).total_seconds() for created, claimed in rows if claimed is not None]
