"""The figures behind the admin charts, aggregated in the database for one workspace and range.

Weeks are ISO weeks in UTC (Monday 00:00 UTC to the next), counted back from the current one.
Every figure is a GROUP BY in SQL; the time-to-claim percentiles use PostgreSQL's
`percentile_cont`, and on SQLite, which has none, they are computed here from one narrow query
(urgency and seconds only). Nothing here loads request rows, draws, or knows a platform.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, cast, exists, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Date, Float, Text

from bot.config import Settings
from bot.domain import SessionStatus, Status, Urgency
from modals import forms
from storage.models import Member, MentorProfile, MentorSession, MentorSkill, Request, UTCDateTime

RANGES = (4, 12, 52)
DEFAULT_WEEKS = 12
TOP_TAGS = 10
TOP_MENTORS = 10
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
_Q = TypeVar("_Q", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class WeekCounts:
    week: date  # the Monday (UTC) the week starts on
    posted: int
    claimed: int
    completed: int


@dataclass(frozen=True)
class ClaimTimes:
    """Time from posting to claim for one urgency, over the requests posted in the range."""

    urgency: str
    count: int
    p10: timedelta
    p25: timedelta
    median: timedelta
    p75: timedelta
    p90: timedelta
    # The first-claim target for this urgency, once targets exist; until then charts draw the median.
    target: timedelta | None = None


@dataclass(frozen=True)
class TagDemand:
    tag: str
    requests: int
    mentors: int | None = None  # mentors listing the tag, once mentor profiles exist


@dataclass(frozen=True)
class MentorLoad:
    external_id: str
    name: str
    sessions: int  # completed
    no_shows: int
    average_rating: float | None
    ratings: int


@dataclass(frozen=True)
class TargetShare:
    """Of the requests of one urgency whose outcome is known (claimed, or older than the target),
    how many were claimed within the first-claim target. Requests the student cancelled before
    anyone claimed them are left out: nobody missed them."""

    urgency: str
    target: timedelta
    decided: int
    within: int

    @property
    def share(self) -> float | None:
        return round(self.within / self.decided, 3) if self.decided else None


@dataclass(frozen=True)
class MentorCapacity:
    """A mentor's load now (claimed + scheduled) against how many they take at once."""

    external_id: str
    name: str
    active: int
    capacity: int
    away_until: date | None
    has_profile: bool

    @property
    def load_text(self) -> str:
        return f"{self.active} of {self.capacity} active"


@dataclass(frozen=True)
class Figures:
    weeks: int
    since: date  # first Monday of the range
    weekly: list[WeekCounts]  # every week of the range, gaps as zeros
    claim_times: list[ClaimTimes]  # by urgency, high → low, only urgencies with claims
    tags: list[TagDemand]  # top tags by requests
    mentors: list[MentorLoad]  # top mentors by completed sessions

    @property
    def posted(self) -> int:
        return sum(w.posted for w in self.weekly)

    @property
    def empty(self) -> bool:
        return not (self.posted or any(w.claimed or w.completed for w in self.weekly) or self.mentors)


def parse_range(text: str | None) -> int | None:
    """'4', '12' or '52' (also '4w'); None for anything else, the default for nothing."""
    if not text:
        return DEFAULT_WEEKS
    word = text.strip().lower().removesuffix("w").removesuffix(" weeks")
    return int(word) if word.isascii() and word.isdigit() and int(word) in RANGES else None


def week_start(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def range_start(now: datetime, weeks: int) -> date:
    return week_start(now) - timedelta(weeks=weeks - 1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def claim_targets(settings: Settings | None) -> Mapping[str, timedelta]:
    """First-claim target per urgency (CLAIM_TARGET_HOURS): the time-to-claim chart draws each
    as a line. None without settings (figures computed on their own, e.g. in a benchmark)."""
    return settings.claim_targets if settings is not None else {}


async def tag_supply(
    session: AsyncSession,
    platform: str,
    workspace: str,
    tags: Sequence[str],
    former: frozenset[int] = frozenset(),
) -> Mapping[str, int] | None:
    """Mentors whose profile lists each tag (one GROUP BY over the indexed skills table), not
    counting `former` mentors; None while no mentor has a profile, so a new program's chart
    shows requests only."""
    if not tags:
        return None
    rows = await session.execute(
        select(MentorSkill.tag, func.count(func.distinct(MentorSkill.member_id)))
        .where(
            MentorSkill.platform == platform,
            MentorSkill.workspace == workspace,
            MentorSkill.tag.in_(list(tags)),
            MentorSkill.member_id.not_in(list(former)) if former else true(),
        )
        .group_by(MentorSkill.tag)
    )
    counts = {str(tag): int(n) for tag, n in rows.all()}
    if not counts:
        has_profiles = await session.scalar(
            select(func.count())
            .select_from(MentorSkill)
            .where(MentorSkill.platform == platform, MentorSkill.workspace == workspace)
        )
        if not has_profiles:
            return None
    return {tag: counts.get(tag, 0) for tag in tags}


class Aggregates:
    """The queries, for one engine (PostgreSQL or SQLite)."""

    def __init__(
        self,
        session: AsyncSession,
        targets: Mapping[str, timedelta] | None = None,
        former_mentors: frozenset[int] = frozenset(),
    ) -> None:
        """`former_mentors`: member ids with a profile whom the platform no longer counts as
        mentors (left the mentors' channel or lost the role): not supply, though their past
        sessions still count."""
        self.session = session
        self.targets: Mapping[str, timedelta] = targets or {}
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.former = former_mentors

    def _week(self, column: Any) -> ColumnElement[Any]:
        if self.postgres:
            return cast(func.date_trunc("week", func.timezone("UTC", column)), Date)
        # SQLite stores naive UTC text; 'weekday 0' moves to the coming Sunday, -6 days its Monday.
        return func.date(column, "weekday 0", "-6 days")

    def iso_text(self, column: Any) -> ColumnElement[Any]:
        """An instant as ISO 8601 text in UTC, made by the database (the CSV: no parsing in Python)."""
        if self.postgres:
            return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        return func.replace(column, " ", "T") + "+00:00"

    def joined_tags(self) -> ColumnElement[Any]:
        """A request's tags joined with ';', by the database."""
        if self.postgres:
            each = func.json_array_elements_text(Request.tags).table_valued("value")
            parsed = select(func.string_agg(each.c.value, ";")).scalar_subquery()
            # Expanding the JSON per row is most of the export's time. Without a backslash in
            # the stored text no tag holds an escaped character, so every '"' is structural and
            # `["a", "b"]` reads as a;b by plain text edits; anything else is parsed.
            raw = cast(Request.tags, Text)
            plain = and_(func.strpos(raw, "\\") == 0, func.left(raw, 2) == '["', func.right(raw, 2) == '"]')
            inner = func.substr(raw, 3, func.length(raw) - 4)
            edited = func.replace(func.replace(inner, '", "', ";"), '","', ";")
            return case((raw == "[]", None), (plain, edited), else_=parsed)
        each = func.json_each(Request.tags).table_valued("value")
        return select(func.group_concat(each.c.value, ";")).scalar_subquery()

    def _seconds(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        """Seconds between two instants, computed by the database."""
        if self.postgres:
            return func.extract("epoch", later - earlier)
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0

    def _scope(self, query: _Q, platform: str, workspace: str) -> _Q:
        return query.where(Request.platform == platform, Request.workspace == workspace)

    async def figures(self, platform: str, workspace: str, now: datetime, weeks: int) -> Figures:
        since = range_start(now, weeks)
        start = _midnight(since)
        counts: dict[date, list[int]] = {since + timedelta(weeks=i): [0, 0, 0] for i in range(weeks)}
        # "Completed" is sessions held: a no-show ends its request as completed, but nobody met.
        no_show = exists().where(
            MentorSession.request_id == Request.id, MentorSession.status == SessionStatus.NO_SHOW.value
        )
        for slot, column in enumerate((Request.created_at, Request.claimed_at, Request.completed_at)):
            week = self._week(column).label("week")
            query = self._scope(select(week, func.count()), platform, workspace).where(column >= start)
            if slot == 2:
                query = query.where(~no_show)
            for day, n in (await self.session.execute(query.group_by(week))).all():
                key = day if isinstance(day, date) else date.fromisoformat(str(day))
                if key in counts:
                    counts[key][slot] = int(n)
        weekly = [WeekCounts(day, *values) for day, values in sorted(counts.items())]
        claim_times = await self._claim_times(platform, workspace, start)
        tags = await self._tags(platform, workspace, start)
        mentors = await self._mentors(platform, workspace, start)
        return Figures(weeks, since, weekly, claim_times, tags, mentors)

    async def _claim_times(self, platform: str, workspace: str, start: datetime) -> list[ClaimTimes]:
        claimed = (Request.claimed_at.is_not(None), Request.created_at >= start)
        found: dict[str, tuple[int, list[float]]] = {}
        if self.postgres:
            epoch = func.extract("epoch", Request.claimed_at - Request.created_at)
            parts = [func.percentile_cont(q).within_group(epoch) for q in QUANTILES]
            query = self._scope(select(Request.urgency, func.count(), *parts), platform, workspace)
            for urgency, n, *values in (
                await self.session.execute(query.where(*claimed).group_by(Request.urgency))
            ).all():
                found[urgency] = (int(n), [float(v) for v in values])
        else:
            seconds = (func.julianday(Request.claimed_at) - func.julianday(Request.created_at)) * 86400.0
            query = self._scope(select(Request.urgency, cast(seconds, Float)), platform, workspace)
            samples: dict[str, list[float]] = {}
            for urgency, value in (await self.session.execute(query.where(*claimed))).all():
                samples.setdefault(urgency, []).append(float(value))
            for urgency, values in samples.items():
                values.sort()
                found[urgency] = (len(values), [percentile_cont(values, q) for q in QUANTILES])
        targets = self.targets
        order = [u.value for u in (Urgency.HIGH, Urgency.NORMAL, Urgency.LOW)]
        result = []
        for urgency in sorted(found, key=lambda u: order.index(u) if u in order else len(order)):
            n, values = found[urgency]
            # Sub-second noise from the engines' float arithmetic is not worth showing.
            p10, p25, p50, p75, p90 = (timedelta(seconds=round(v)) for v in values)
            result.append(ClaimTimes(urgency, n, p10, p25, p50, p75, p90, targets.get(urgency)))
        return result

    async def claim_median(self, platform: str, workspace: str) -> timedelta | None:
        """Median time to claim over every claimed request of the workspace (the stats summary)."""
        claimed = Request.claimed_at.is_not(None)
        if self.postgres:
            epoch = func.extract("epoch", Request.claimed_at - Request.created_at)
            query = self._scope(select(func.percentile_cont(0.5).within_group(epoch)), platform, workspace)
            value = (await self.session.execute(query.where(claimed))).scalar()
            return None if value is None else timedelta(seconds=round(float(value)))
        seconds = (func.julianday(Request.claimed_at) - func.julianday(Request.created_at)) * 86400.0
        query = self._scope(select(cast(seconds, Float)), platform, workspace).where(claimed)
        values = sorted(float(v) for v in (await self.session.scalars(query)).all())
        return timedelta(seconds=round(percentile_cont(values, 0.5))) if values else None

    async def _tags(self, platform: str, workspace: str, start: datetime | None) -> list[TagDemand]:
        if self.postgres:
            each = func.json_array_elements_text(Request.tags).table_valued("value").alias("tag")
        else:
            each = func.json_each(Request.tags).table_valued("value").alias("tag")
        n = func.count().label("n")
        query = (
            select(each.c.value, n)
            .select_from(Request)
            .join(each, true())
            .where(
                Request.platform == platform,
                Request.workspace == workspace,
                true() if start is None else Request.created_at >= start,
            )
            .group_by(each.c.value)
            .order_by(n.desc(), each.c.value)
            .limit(TOP_TAGS)
        )
        rows = [(str(tag), int(count)) for tag, count in (await self.session.execute(query)).all()]
        supply = await tag_supply(self.session, platform, workspace, [tag for tag, _ in rows], self.former)
        return [TagDemand(tag, count, None if supply is None else supply.get(tag, 0)) for tag, count in rows]

    async def _mentors(self, platform: str, workspace: str, start: datetime) -> list[MentorLoad]:
        done = func.sum(case((MentorSession.status == SessionStatus.COMPLETED.value, 1), else_=0)).label(
            "done"
        )
        missed = func.sum(case((MentorSession.status == SessionStatus.NO_SHOW.value, 1), else_=0))
        query = (
            select(
                Member.external_id,
                Member.display_name,
                done,
                missed,
                func.avg(cast(MentorSession.rating, Float)),
                func.count(MentorSession.rating),
            )
            .select_from(MentorSession)
            .join(Request, Request.id == MentorSession.request_id)
            .join(Member, Member.id == MentorSession.mentor_id)
            .where(
                Request.platform == platform,
                Request.workspace == workspace,
                MentorSession.starts_at >= start,
                MentorSession.status.in_([SessionStatus.COMPLETED.value, SessionStatus.NO_SHOW.value]),
            )
            .group_by(Member.id, Member.external_id, Member.display_name)
            .order_by(done.desc(), Member.display_name)
            .limit(TOP_MENTORS)
        )
        return [
            MentorLoad(
                str(ext),
                str(name),
                int(d or 0),
                int(m or 0),
                None if avg is None else round(float(avg), 2),
                int(r),
            )
            for ext, name, d, m, avg, r in (await self.session.execute(query)).all()
        ]

    async def within_target(
        self, platform: str, workspace: str, now: datetime, targets: Mapping[str, timedelta]
    ) -> list[TargetShare]:
        """Per urgency, high → low: requests claimed within their first-claim target, of those
        whose outcome is known (see TargetShare). One GROUP BY over the workspace's requests."""
        if not targets:
            return []
        claimed = Request.claimed_at.is_not(None)
        target = case(*((Request.urgency == u, t.total_seconds()) for u, t in targets.items()))
        cutoff = case(*((Request.urgency == u, literal(now - t, UTCDateTime())) for u, t in targets.items()))
        # Half a second of slack: SQLite's julianday arithmetic is floating point.
        within = func.sum(
            case(
                (and_(claimed, self._seconds(Request.claimed_at, Request.created_at) <= target + 0.5), 1),
                else_=0,
            )
        )
        decided = func.count()
        query = self._scope(select(Request.urgency, decided, within), platform, workspace).where(
            Request.urgency.in_(list(targets)),
            or_(claimed, and_(Request.created_at <= cutoff, Request.status != Status.CANCELLED.value)),
        )
        found = {
            str(u): (int(n), int(w or 0))
            for u, n, w in (await self.session.execute(query.group_by(Request.urgency))).all()
        }
        order = [u.value for u in (Urgency.HIGH, Urgency.NORMAL, Urgency.LOW)]
        return [
            TargetShare(u, targets[u], *found.get(u, (0, 0)))
            for u in sorted(targets, key=lambda u: order.index(u) if u in order else len(order))
        ]

    async def tag_demand(self, platform: str, workspace: str) -> list[TagDemand]:
        """Demand against supply over every request of the workspace: the top tags by requests
        posted, against the mentors whose profile lists each."""
        return await self._tags(platform, workspace, None)

    async def profile_holders(self, platform: str, workspace: str) -> list[tuple[int, str]]:
        """(member id, external id) of everyone with a mentor profile in the workspace."""
        rows = await self.session.execute(
            select(Member.id, Member.external_id)
            .join(MentorProfile, MentorProfile.member_id == Member.id)
            .where(Member.platform == platform, Member.workspace == workspace)
        )
        return [(int(member_id), str(ext)) for member_id, ext in rows.all()]

    async def mentor_capacity(
        self,
        platform: str,
        workspace: str,
        *,
        default_capacity: int,
        now: datetime | None = None,
        default_timezone: str = "UTC",
    ) -> list[MentorCapacity]:
        """Every mentor with a profile or an active claim: load now against capacity (the
        profile's, else MENTOR_DEFAULT_CAPACITY), fullest first. `away_until` only while they are
        still away at `now` on their own date (the return day is the first day they are back,
        as in matching)."""
        loads = (
            self._scope(
                select(Request.claimed_by_id.label("who"), func.count().label("active")), platform, workspace
            )
            .where(Request.status.in_([Status.CLAIMED.value, Status.SCHEDULED.value]))
            .group_by(Request.claimed_by_id)
            .subquery()
        )
        active = func.coalesce(loads.c.active, 0)
        capacity = func.coalesce(MentorProfile.capacity, default_capacity)
        query = (
            select(
                Member.id,
                Member.external_id,
                Member.display_name,
                active,
                capacity,
                MentorProfile.away_until,
                MentorProfile.member_id.is_not(None),
                Member.timezone,
            )
            .select_from(Member)
            .outerjoin(MentorProfile, MentorProfile.member_id == Member.id)
            .outerjoin(loads, loads.c.who == Member.id)
            .where(
                Member.platform == platform,
                Member.workspace == workspace,
                or_(MentorProfile.member_id.is_not(None), loads.c.who.is_not(None)),
            )
            .order_by((cast(active, Float) / capacity).desc(), Member.display_name, Member.id)
        )
        return [
            MentorCapacity(
                str(ext),
                str(name),
                int(n),
                int(cap),
                away
                if away and (now is None or forms.date_in(now, zone_name, default_timezone) < away)
                else None,
                bool(has),
            )
            for member_id, ext, name, n, cap, away, has, zone_name in (
                await self.session.execute(query)
            ).all()
            # A former mentor is listed only while they still hold sessions.
            if n or member_id not in self.former
        ]

    async def stamp(self, platform: str, workspace: str) -> str:
        """A cheap fingerprint of the workspace's data: any transition bumps a request's
        version, any rating or session change its `updated_at`/`rated_at`, any saved mentor
        profile its `updated_at`."""
        requests = self._scope(
            select(func.count(), func.max(Request.id), func.coalesce(func.sum(Request.version), 0)),
            platform,
            workspace,
        )
        sessions = self._scope(
            select(
                func.count(MentorSession.id),
                func.max(MentorSession.updated_at),
                func.max(MentorSession.rated_at),
            )
            .select_from(MentorSession)
            .join(Request, Request.id == MentorSession.request_id),
            platform,
            workspace,
        )
        # Mentors' profiles: the skills they list are the tag chart's supply.
        profiles = select(func.count(), func.max(MentorProfile.updated_at)).where(
            MentorProfile.platform == platform, MentorProfile.workspace == workspace
        )
        first = (await self.session.execute(requests)).one()
        second = (await self.session.execute(sessions)).one()
        third = (await self.session.execute(profiles)).one()
        return "|".join(str(v) for v in (*first, *second, *third))


def percentile_cont(ordered: Sequence[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont on sorted values: linear between the two nearest ranks."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


__all__ = [
    "DEFAULT_WEEKS",
    "RANGES",
    "Aggregates",
    "ClaimTimes",
    "Figures",
    "MentorCapacity",
    "MentorLoad",
    "TagDemand",
    "TargetShare",
    "WeekCounts",
    "claim_targets",
    "parse_range",
    "percentile_cont",
    "tag_supply",
]
