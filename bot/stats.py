"""Admin figures for one workspace: volume, time to claim, completion, ratings, per mentor, CSV,
and the charts (figures from bot/insight.py, drawn by bot/charts.py, cached here)."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot import charts, insight
from bot.authz import Act, authorize
from bot.charts import ChartSet
from bot.clock import Clock
from bot.config import Settings
from bot.domain import Actor, Ok, Result, SessionStatus, Status
from bot.matching import MentorDirectory
from storage.db import Database
from storage.models import Member, MentorSession, Request

log = logging.getLogger(__name__)

# Charts are redrawn when the data changes (the stamp) and at least this often (an admin clicking
# around the App Home reuses them in between).
CHART_TTL = timedelta(minutes=5)
CHART_CACHE_SIZE = 64
REPORT_WORK_MEM = "64MB"


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
    # Sessions that happened / requests that are over (completed, cancelled, expired): a no-show
    # ends its request as completed, but it is not a completed session.
    completion_rate: float | None
    average_rating: float | None
    ratings: int
    mentors: list[MentorFigures]
    csv: bytes
    # Against the first-claim targets, per urgency; demand against supply per tag (top tags over
    # every request); each mentor's load against capacity. Also in `summary_csv`.
    within_target: list[insight.TargetShare] = field(default_factory=list)
    tags: list[insight.TagDemand] = field(default_factory=list)
    capacity: list[insight.MentorCapacity] = field(default_factory=list)
    summary_csv: bytes = b""
    no_shows: int = 0  # of the completed requests, those whose session was a no-show


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


# Who of the profile holders is still a mentor is asked for at most this many people, waiting at
# most this long; otherwise (or if it fails) every profile counts as supply.
DIRECTORY_ASKS = 50
DIRECTORY_WAIT = 3.0


class Stats:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        directories: Mapping[str, MentorDirectory] | None = None,
    ) -> None:
        """`directories`: per platform, who is a mentor now (the same the matching asks), so
        supply figures leave out people who left; shared with the caller, filled as adapters start."""
        self.db = db
        self.settings = settings
        self.clock = clock
        self.directories: Mapping[str, MentorDirectory] = directories if directories is not None else {}
        self._charts: OrderedDict[tuple[str, str, int], tuple[str, datetime, ChartSet]] = OrderedDict()
        self.drawn = 0  # how many chart sets were drawn (not served from the cache)

    async def _former_mentors(self, actor: Actor) -> frozenset[int]:
        """Profile holders the platform no longer counts as mentors; asked outside any
        transaction (a platform call holds no database lock). Unknown (no directory here, or it
        failed): nobody is left out, as before."""
        directory = self.directories.get(actor.platform)
        if directory is None:
            return frozenset()
        async with self.db.transaction() as session:
            holders = await insight.Aggregates(session).profile_holders(actor.platform, actor.workspace)
        if not holders or len(holders) > DIRECTORY_ASKS:
            # Discord checks each person apart: past a small program, the reply would wait on it.
            return frozenset()
        try:
            async with asyncio.timeout(DIRECTORY_WAIT):
                current = await directory.current_mentors(actor.workspace, [ext for _, ext in holders])
        except Exception:
            log.warning("could not ask %s who the mentors are; stats count every profile", actor.platform)
            return frozenset()
        if not current:
            # Directories answer "nobody" when they cannot tell (no role set, the server not
            # reachable): that is not proof everyone left, so nobody is left out.
            return frozenset()
        return frozenset(member_id for member_id, ext in holders if ext not in current)

    async def figures(self, actor: Actor, weeks: int = insight.DEFAULT_WEEKS) -> Result[insight.Figures]:
        if refused := authorize(Act.STATS, actor):
            return refused
        former = await self._former_mentors(actor)
        async with self.db.transaction() as session:
            figures = await insight.Aggregates(session, insight.claim_targets(self.settings), former).figures(
                actor.platform, actor.workspace, self.clock.now(), weeks
            )
        return Ok(figures)

    async def charts(self, actor: Actor, weeks: int = insight.DEFAULT_WEEKS) -> Result[ChartSet]:
        """The workspace's charts over `weeks`, from the cache while its data is unchanged."""
        if refused := authorize(Act.STATS, actor):
            return refused
        key = (actor.platform, actor.workspace, weeks)
        now = self.clock.now()
        former = await self._former_mentors(actor)
        async with self.db.transaction() as session:
            aggregates = insight.Aggregates(session, insight.claim_targets(self.settings), former)
            # The current week is part of the stamp: a new week moves every bar; so does a mentor
            # leaving (the supply of their tags).
            data = await aggregates.stamp(actor.platform, actor.workspace)
            stamp = f"{insight.week_start(now)}|{data}|{sorted(former)}"
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

    def forget_charts(self) -> None:
        """Drop every cached drawing (benchmarks time cold replies)."""
        self._charts.clear()

    async def reply(
        self, actor: Actor, weeks: int = insight.DEFAULT_WEEKS
    ) -> Result[tuple[Report, ChartSet]]:
        """The whole `/mini-session stats` answer: the report (summary and CSVs) and the charts,
        computed at once on PostgreSQL (the database writes the CSV while the charts are drawn)."""
        if refused := authorize(Act.STATS, actor):
            return refused
        if self.db.is_postgres:
            report, drawn = await asyncio.gather(self.report(actor), self.charts(actor, weeks))
        else:  # one writer at a time: concurrent transactions would only wait on each other
            report, drawn = await self.report(actor), await self.charts(actor, weeks)
        if not isinstance(report, Ok):
            return report
        if not isinstance(drawn, Ok):
            return drawn
        return Ok((report.value, drawn.value))

    async def report(self, actor: Actor) -> Result[Report]:
        """The summary as aggregates in SQL, and the CSV of every request (see `_export`): a
        request's last session is the one that counts."""
        if refused := authorize(Act.STATS, actor):
            return refused
        # On PostgreSQL the export runs meanwhile, on a connection of its own; SQLite has one
        # writer at a time, so there it follows the summary.
        export = asyncio.create_task(self._export(actor)) if self.db.is_postgres else None
        try:
            summary = await self._summary(actor)
        except BaseException:
            if export is not None:
                export.cancel()
            raise
        csv_bytes = await export if export is not None else await self._export(actor)
        return Ok(replace(summary, csv=csv_bytes))

    async def _summary(self, actor: Actor) -> Report:
        scope = (Request.platform == actor.platform, Request.workspace == actor.workspace)
        last = _last_sessions(self.db.is_postgres)
        mentor = aliased(Member)
        former = await self._former_mentors(actor)
        async with self.db.transaction() as session:
            aggregates = insight.Aggregates(session, insight.claim_targets(self.settings), former)
            by_status = dict.fromkeys(Status, 0)
            for status, n in await session.execute(
                select(Request.status, func.count()).where(*scope).group_by(Request.status)
            ):
                by_status[Status(status)] = int(n)
            median = await aggregates.claim_median(actor.platform, actor.workspace)
            within_target = await aggregates.within_target(
                actor.platform, actor.workspace, self.clock.now(), self.settings.claim_targets
            )
            tags = await aggregates.tag_demand(actor.platform, actor.workspace)
            capacity = await aggregates.mentor_capacity(
                actor.platform,
                actor.workspace,
                default_capacity=self.settings.mentor_default_capacity,
                now=self.clock.now(),
                default_timezone=self.settings.default_timezone,
            )
            # Per mentor: whoever holds the claim (kept once the request is done). A released
            # request counts for nobody, even when the releaser's cancelled session is its last.
            who = Request.claimed_by_id
            done = func.sum(case((MentorSession.status == SessionStatus.COMPLETED.value, 1), else_=0))
            missed = func.sum(case((MentorSession.status == SessionStatus.NO_SHOW.value, 1), else_=0))
            per_mentor = (
                select(
                    who.label("who"),
                    func.count().label("claimed"),
                    done.label("done"),
                    missed.label("missed"),
                    func.avg(cast(MentorSession.rating, Float)).label("average"),
                    func.count(MentorSession.rating).label("rated"),
                )
                .select_from(Request)
                .outerjoin(last, last.c.request_id == Request.id)
                .outerjoin(MentorSession, MentorSession.id == last.c.session_id)
                .where(*scope, who.is_not(None))
                .group_by(who)
                .subquery()
            )
            rows = await session.execute(
                select(
                    mentor.external_id,
                    mentor.display_name,
                    per_mentor.c.claimed,
                    per_mentor.c.done,
                    per_mentor.c.missed,
                    per_mentor.c.average,
                    per_mentor.c.rated,
                ).join(per_mentor, per_mentor.c.who == mentor.id)
            )
            mentors: list[MentorFigures] = []
            rating_sum, ratings = 0.0, 0
            for external_id, name, claimed, completed, no_shows, average, rated in rows:
                if average is not None:
                    rating_sum += float(average) * int(rated)
                    ratings += int(rated)
                mentors.append(
                    MentorFigures(
                        str(external_id),
                        str(name),
                        int(claimed),
                        int(completed or 0),
                        int(no_shows or 0),
                        None if average is None else round(float(average), 2),
                    )
                )
        mentors.sort(key=lambda m: (-m.completed, -m.claimed, m.name))
        finished = by_status[Status.COMPLETED] + by_status[Status.CANCELLED] + by_status[Status.EXPIRED]
        missed_total = sum(m.no_shows for m in mentors)
        held = by_status[Status.COMPLETED] - missed_total
        return Report(
            total=sum(by_status.values()),
            by_status=by_status,
            median_time_to_claim=median,
            completion_rate=round(held / finished, 3) if finished else None,
            average_rating=round(rating_sum / ratings, 2) if ratings else None,
            ratings=ratings,
            mentors=mentors,
            csv=b"",  # written apart, by _export
            within_target=within_target,
            tags=tags,
            capacity=capacity,
            summary_csv=summary_csv(within_target, tags, capacity),
            no_shows=missed_total,
        )

    async def _export(self, actor: Actor) -> bytes:
        """The CSV of every request, from one narrow query (tuples, not model objects)."""
        scope = (Request.platform == actor.platform, Request.workspace == actor.workspace)
        last = _last_sessions(self.db.is_postgres)
        student, claimer = aliased(Member), aliased(Member)
        async with self.db.transaction() as session:
            aggregates = insight.Aggregates(session)
            if aggregates.postgres:
                # The export sorts and hashes every request: in memory, not in temporary files.
                await session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
                # One pass over every request: compiling it to machine code costs more than it saves.
                await session.execute(text("SET LOCAL jit = off"))
            # Instants and tags come as text made by the database: parsing 100,000 rows of them
            # in Python only to format them again would be most of the export's time.
            iso = aggregates.iso_text
            # PostgreSQL writes the whole CSV itself (formula guard and quoting in SQL); SQLite
            # streams narrow Core rows that Python's csv module writes.
            columns = (
                Request.id,
                Request.status,
                iso(Request.created_at),
                student.display_name,
                Request.title,
                Request.session_type,
                Request.duration_minutes,
                Request.urgency,
                aggregates.joined_tags(),
                claimer.display_name,
                iso(Request.claimed_at),
                iso(MentorSession.starts_at),
                MentorSession.status,
                MentorSession.rating,
            )
            query: Select[*tuple[Any, ...]] = (
                select(*(column.label(name) for column, name in zip(columns, CSV_COLUMNS, strict=True)))
                .join(student, student.id == Request.student_id)
                .outerjoin(claimer, claimer.id == Request.claimed_by_id)
                .outerjoin(last, last.c.request_id == Request.id)
                .outerjoin(MentorSession, and_(MentorSession.id == last.c.session_id, _session_counts()))
                .where(*scope)
                .order_by(Request.id)
            )
            if aggregates.postgres:
                return await _csv_by_postgres(session, query)
            # Core rows (the connection, not the ORM session): no per-row entity machinery.
            csv_rows = await (await session.connection()).stream(query.execution_options(yield_per=5_000))
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            async for part in csv_rows.partitions():
                writer.writerows(_csv_row(row) for row in part)
            return buffer.getvalue().encode()


def _session_counts() -> ColumnElement[bool]:
    """Whether a request's last session is its own now: a scheduled or completed request's always
    is; a cancelled one's when it was its claimer's. An open or claimed request (released, perhaps
    claimed again) has none yet: the last one was an earlier mentor's, cancelled by the release."""
    return or_(
        Request.status.in_([Status.SCHEDULED.value, Status.COMPLETED.value]),
        and_(Request.status == Status.CANCELLED.value, MentorSession.mentor_id == Request.claimed_by_id),
    )


def _last_sessions(postgres: bool) -> Any:
    """Each request's last session (the one that counts), as a subquery. PostgreSQL: the
    sessions with no later one for the same request, an anti-join about twice as fast there as
    grouping every session by request; SQLite keeps the grouping."""
    if not postgres:
        return (
            select(MentorSession.request_id, func.max(MentorSession.id).label("session_id"))
            .group_by(MentorSession.request_id)
            .subquery()
        )
    later = aliased(MentorSession)
    newer = exists().where(later.request_id == MentorSession.request_id, later.id > MentorSession.id)
    return select(MentorSession.request_id, MentorSession.id.label("session_id")).where(~newer).subquery()


def summary_csv(
    within_target: list[insight.TargetShare],
    tags: list[insight.TagDemand],
    capacity: list[insight.MentorCapacity],
) -> bytes:
    """The summary figures as three small tables, one after another, each with its header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("urgency", "claim_target_hours", "requests_decided", "claimed_within_target", "share"))
    for row in within_target:
        hours = row.target.total_seconds() / 3600
        share = "" if row.share is None else f"{row.share:.3f}"
        writer.writerow((row.urgency, f"{hours:g}", row.decided, row.within, share))
    writer.writerow(())
    writer.writerow(("tag", "requests_posted", "mentors_listing"))
    for tag in tags:
        writer.writerow((_csv_safe(tag.tag), tag.requests, "" if tag.mentors is None else tag.mentors))
    writer.writerow(())
    writer.writerow(("mentor", "active", "capacity", "away_until", "profile"))
    for mentor in capacity:
        away = mentor.away_until.isoformat() if mentor.away_until else ""
        writer.writerow(
            (
                _csv_safe(mentor.name),
                mentor.active,
                mentor.capacity,
                away,
                "yes" if mentor.has_profile else "no",
            )
        )
    return buffer.getvalue().encode()


GUARDED_COLUMNS = frozenset({"student", "title", "tags", "claimed_by"})  # text people typed


async def _csv_by_postgres(session: AsyncSession, query: Select[*tuple[Any, ...]]) -> bytes:
    """The export written by PostgreSQL: each row made into one CSV line in SQL (the formula
    guard, then Python's csv quoting rules: a field holding a comma, a quote or a line break is
    quoted, its quotes doubled), the lines joined by `string_agg`, so 100,000 rows cost Python
    one string instead of 100,000 rows. The bytes equal what `csv.writer` makes of the rows.

    Each step reads the one before through OFFSET 0, which keeps PostgreSQL from folding it in
    and computing a request's tags (or a guarded cell) once per reference instead of once."""
    rows = query.offset(0).subquery("csv_rows")
    guarded = (
        select(
            *(
                (_guarded(rows.c[name]) if name in GUARDED_COLUMNS else rows.c[name]).label(name)
                for name in CSV_COLUMNS
            )
        )
        .offset(0)
        .subquery("csv_cells")
    )
    line: Any = None
    for name in CSV_COLUMNS:
        field = _quoted(guarded.c[name]) if name in GUARDED_COLUMNS else _cell(guarded.c[name])
        line = field if line is None else line + "," + field
    body = await session.scalar(
        select(func.string_agg(line, aggregate_order_by(literal("\r\n"), guarded.c.request_id)))
    )
    header = ",".join(CSV_COLUMNS) + "\r\n"
    return (header + (f"{body}\r\n" if body else "")).encode()


def _cell(column: Any) -> Any:
    """A value as CSV text; NULL as an empty field (what `_csv_row` writes for None)."""
    return func.coalesce(cast(column, Text), "")


def _quoted(column: Any) -> Any:
    value = _cell(column)
    special = or_(*(func.strpos(value, char) > 0 for char in (",", '"', "\n", "\r")))
    return case((special, '"' + func.replace(value, '"', '""') + '"'), else_=value)


def _guarded(column: Any) -> Any:
    """_csv_safe in SQL: look through leading spaces and invisible characters (ltrim with a
    character set, cheaper than a regular expression per cell), then check the first one."""
    first = func.left(func.ltrim(column, " " + _INVISIBLE), 1)
    return case((first.in_(sorted(_FORMULA_STARTS)), literal("'") + column), else_=column)


def _csv_row(row: Any) -> list[Any]:
    (
        rid,
        status,
        created,
        student,
        title,
        kind,
        minutes,
        urgency,
        tags,
        claimer,
        claimed,
        starts,
        state,
        rating,
    ) = row
    return [
        rid,
        status,
        created,
        _csv_safe(student),
        _csv_safe(title),
        kind,
        minutes,
        urgency,
        _csv_safe(tags or ""),
        _csv_safe(claimer) if claimer is not None else "",
        claimed or "",
        starts or "",
        state or "",
        rating or "",
    ]


_FORMULA_STARTS = frozenset("=+-@\t\r＝＋－＠")  # with the full-width forms some spreadsheets fold
# Invisible characters a spreadsheet may skip before reading the first one: zero-width spaces and
# joiners, the word joiner, the byte-order mark, soft hyphen.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"


def _csv_safe(text: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas; user text must stay text.
    Leading whitespace and invisible characters are looked through, and full-width signs count."""
    first = text.lstrip(_INVISIBLE + " ")[:1]
    return "'" + text if first in _FORMULA_STARTS or text[:1] in ("\t", "\r") else text


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
