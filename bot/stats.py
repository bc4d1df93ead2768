"""Admin figures for one workspace: volume, time to claim, completion, ratings, per mentor, CSV,
and the charts (figures from bot/insight.py, drawn by bot/charts.py, cached here)."""

from __future__ import annotations

import asyncio
import csv
import io
import statistics
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import aliased

from bot import charts, insight
from bot.authz import Act, authorize
from bot.charts import ChartSet
from bot.clock import Clock
from bot.config import Settings
from bot.domain import Actor, Ok, Result, SessionStatus, Status
from storage.db import Database
from storage.models import Member, MentorSession, Request

# Charts are redrawn when the data changes (the stamp) and at least this often (an admin clicking
# around the App Home reuses them in between).
CHART_TTL = timedelta(minutes=5)
CHART_CACHE_SIZE = 64


@dataclass(frozen=True)
class MentorFigures:
    external_id: str
    name: str
    claimed: int
    completed: int
    no_shows: int
    average_rating: float | None


@dataclass(frozen=True)
class Report:
    total: int
    by_status: dict[Status, int]
    median_time_to_claim: timedelta | None
    completion_rate: float | None  # completed / (completed + cancelled + expired)
    average_rating: float | None
    ratings: int
    mentors: list[MentorFigures]
    csv: bytes


CSV_COLUMNS = (
    "request_id",
    "status",
    "created_at",
    "student",
    "title",
    "session_type",
    "duration_minutes",
    "urgency",
    "tags",
    "claimed_by",
    "claimed_at",
    "session_starts_at",
    "session_status",
    "rating",
)


class Stats:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._charts: OrderedDict[tuple[str, str, int], tuple[str, datetime, ChartSet]] = OrderedDict()
        self.drawn = 0  # how many chart sets were drawn (not served from the cache)

    async def figures(self, actor: Actor, weeks: int = insight.DEFAULT_WEEKS) -> Result[insight.Figures]:
        if refused := authorize(Act.STATS, actor):
            return refused
        async with self.db.transaction() as session:
            figures = await insight.Aggregates(session).figures(
                actor.platform, actor.workspace, self.clock.now(), weeks
            )
        return Ok(figures)

    async def charts(self, actor: Actor, weeks: int = insight.DEFAULT_WEEKS) -> Result[ChartSet]:
        """The workspace's charts over `weeks`, from the cache while its data is unchanged."""
        if refused := authorize(Act.STATS, actor):
            return refused
        key = (actor.platform, actor.workspace, weeks)
        now = self.clock.now()
        async with self.db.transaction() as session:
            aggregates = insight.Aggregates(session)
            # The current week is part of the stamp: a new week moves every bar.
            stamp = f"{insight.week_start(now)}|{await aggregates.stamp(actor.platform, actor.workspace)}"
            cached = self._charts.get(key)
            if cached is not None and cached[0] == stamp and now - cached[1] < CHART_TTL:
                self._charts.move_to_end(key)
                return Ok(cached[2])
            figures = await aggregates.figures(actor.platform, actor.workspace, now, weeks)
        # Drawing is CPU work of a few hundred ms: off the event loop, so acks stay quick.
        drawn = await asyncio.to_thread(charts.draw, figures)
        self.drawn += 1
        self._charts[key] = (stamp, now, drawn)
        self._charts.move_to_end(key)
        while len(self._charts) > CHART_CACHE_SIZE:
            self._charts.popitem(last=False)
        return Ok(drawn)

    async def report(self, actor: Actor) -> Result[Report]:
        if refused := authorize(Act.STATS, actor):
            return refused
        student, claimer, mentor = aliased(Member), aliased(Member), aliased(Member)
        query = (
            select(Request, student, claimer, MentorSession, mentor)
            .join(student, student.id == Request.student_id)
            .outerjoin(claimer, claimer.id == Request.claimed_by_id)
            .outerjoin(MentorSession, MentorSession.request_id == Request.id)
            .outerjoin(mentor, mentor.id == MentorSession.mentor_id)
            .where(Request.platform == actor.platform, Request.workspace == actor.workspace)
            .order_by(Request.id, MentorSession.id)
        )
        async with self.db.transaction() as session:
            rows = (await session.execute(query)).all()
        return Ok(_build([(r[0], r[1], r[2], r[3], r[4]) for r in rows]))


@dataclass
class _Tally:
    external_id: str
    name: str
    claimed: int = 0
    completed: int = 0
    no_shows: int = 0
    ratings: list[int] = field(default_factory=list)

    def figures(self) -> MentorFigures:
        average = round(statistics.fmean(self.ratings), 2) if self.ratings else None
        return MentorFigures(
            self.external_id, self.name, self.claimed, self.completed, self.no_shows, average
        )


Row = tuple[Request, Member, Member | None, MentorSession | None, Member | None]


def _build(rows: list[Row]) -> Report:
    # One row per (request, session); the last session of a request is the one that counts.
    requests: dict[int, Row] = {}
    for row in rows:
        requests[row[0].id] = row
    by_status = dict.fromkeys(Status, 0)
    claim_times: list[timedelta] = []
    ratings: list[int] = []
    tallies: dict[int, _Tally] = {}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)

    for request, student, claimer, mentor_session, mentor in requests.values():
        by_status[Status(request.status)] += 1
        if request.claimed_at is not None:
            claim_times.append(request.claimed_at - request.created_at)
        who = mentor if mentor_session is not None and mentor is not None else claimer
        if who is not None:
            tally = tallies.setdefault(who.id, _Tally(who.external_id, who.display_name))
            tally.claimed += 1
            if mentor_session is not None:
                tally.completed += mentor_session.status == SessionStatus.COMPLETED.value
                tally.no_shows += mentor_session.status == SessionStatus.NO_SHOW.value
                if mentor_session.rating is not None:
                    tally.ratings.append(mentor_session.rating)
                    ratings.append(mentor_session.rating)
        writer.writerow(
            [
                request.id,
                request.status,
                request.created_at.isoformat(),
                _csv_safe(student.display_name),
                _csv_safe(request.title),
                request.session_type,
                request.duration_minutes,
                request.urgency,
                _csv_safe(";".join(request.tags or [])),
                _csv_safe(claimer.display_name) if claimer else "",
                request.claimed_at.isoformat() if request.claimed_at else "",
                mentor_session.starts_at.isoformat() if mentor_session else "",
                mentor_session.status if mentor_session else "",
                mentor_session.rating if mentor_session and mentor_session.rating else "",
            ]
        )

    finished = by_status[Status.COMPLETED] + by_status[Status.CANCELLED] + by_status[Status.EXPIRED]
    mentors = sorted(
        (t.figures() for t in tallies.values()), key=lambda m: (-m.completed, -m.claimed, m.name)
    )
    return Report(
        total=len(requests),
        by_status=by_status,
        median_time_to_claim=_median(claim_times),
        completion_rate=round(by_status[Status.COMPLETED] / finished, 3) if finished else None,
        average_rating=round(statistics.fmean(ratings), 2) if ratings else None,
        ratings=len(ratings),
        mentors=mentors,
        csv=buffer.getvalue().encode(),
    )


def _median(values: list[timedelta]) -> timedelta | None:
    if not values:
        return None
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values))


def _csv_safe(text: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas; user text must stay text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"
