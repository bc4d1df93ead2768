"""Matching: which mentors a new request is offered to first, and the pure ranking rule.

Ranking: most shared tags, then weekly availability on a day inside the student's dates, then
the lowest current load, then who was suggested least recently (fairness), then the member id
(a stable last resort). Never suggested: someone away, at capacity, the student themself, or
someone the platform no longer counts as a mentor (`MentorDirectory`, implemented by each
adapter: Slack channel membership, Discord role). This module never imports a platform.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import MemberRef, RequestView, SessionStatus, Status
from bot.notifications import Kind
from bot.outbox import owe_dm
from modals.forms import date_in
from storage import mentor_profiles
from storage.db import Database
from storage.mentor_profiles import CandidateRow

log = logging.getLogger(__name__)


class MentorDirectory(Protocol):
    """The platform's word on who is a mentor right now (a stored profile alone is not proof)."""

    async def current_mentors(self, workspace: str, external_ids: Sequence[str]) -> set[str]:
        """The subset of `external_ids` who are mentors now."""
        ...


def weekdays_between(start: date, end: date) -> frozenset[int]:
    days = min((end - start).days + 1, 7)
    return frozenset((start + timedelta(days=i)).weekday() for i in range(max(days, 0)))


def eligible(row: CandidateRow, *, student_external_id: str, now: datetime, default_timezone: str) -> bool:
    # "Away until" is a date in the mentor's own zone.
    away = row.away_until is not None and date_in(now, row.timezone, default_timezone) < row.away_until
    return not away and row.load < row.capacity and row.external_id != student_external_id


def rank(
    rows: Iterable[CandidateRow],
    *,
    tags: Sequence[str],
    weekdays: frozenset[int],
    student_external_id: str,
    now: datetime,
    default_timezone: str,
) -> list[CandidateRow]:
    """The eligible rows, best first (see the module docstring for the order)."""
    wanted = set(tags)

    def key(row: CandidateRow) -> tuple[int, int, int, datetime, int]:
        shared = len(wanted.intersection(row.skills))
        fits = 1 if row.weekdays & weekdays else 0
        return (-shared, -fits, row.load, row.last_suggested_at, row.member_id)

    fit = (
        r
        for r in rows
        if eligible(r, student_external_id=student_external_id, now=now, default_timezone=default_timezone)
    )
    return sorted(fit, key=key)


POOL_READS = 2  # a second read of the pool when people who left the platform's mentors filled it


async def pick(
    db: Database,
    *,
    platform: str,
    workspace: str,
    tags: Sequence[str],
    dates: tuple[date, date],
    student_external_id: str,
    directory: MentorDirectory | None,
    default_timezone: str,
    count: int,
    now: datetime,
    exclude: frozenset[int] = frozenset(),
) -> list[CandidateRow]:
    """The top `count` mentors for a request who are still mentors, skipping `exclude`. The
    profiles are read in a transaction of their own; the platform is asked after it ended, so a
    slow platform never holds a database lock (on SQLite every transaction holds the write lock).

    Profiles outlive a mentor's membership, and someone who left is never suggested again, so
    they would stay the least recently suggested (first in the fair pool and among equals) for
    good. Whoever the platform no longer counts as a mentor is moved to the back of the rotation
    (`last_suggested_at`), and the pool is read once more without them if they filled it."""
    found: list[CandidateRow] = []
    skip = set(exclude)
    for _ in range(POOL_READS):
        async with db.transaction() as session:
            rows = await mentor_profiles.candidates(
                session, platform=platform, workspace=workspace, tags=tags, now=now, exclude=skip
            )
        ranked = [
            r
            for r in rank(
                rows,
                tags=tags,
                weekdays=weekdays_between(*dates),
                student_external_id=student_external_id,
                now=now,
                default_timezone=default_timezone,
            )
            if r.member_id not in skip
        ]
        if directory is None:
            return ranked[:count]
        current, gone = await _still_mentors(directory, workspace, ranked, count - len(found))
        found += current
        if gone:
            async with db.transaction() as session:
                await mentor_profiles.rotate_back(session, gone, now=now)
        if len(found) >= count or not gone:
            break
        skip |= gone | {r.member_id for r in current}
    return found[:count]


async def _still_mentors(
    directory: MentorDirectory, workspace: str, ranked: Sequence[CandidateRow], count: int
) -> tuple[list[CandidateRow], set[int]]:
    """The best `count` of `ranked` the platform counts as mentors, and the member ids of those
    it was asked about and does not. It is asked about a few more than needed, in case some have
    left; while fewer than `count` are still mentors, about the next few (`ranked` is bounded)."""
    found: list[CandidateRow] = []
    gone: set[int] = set()
    step = count * 4
    for start in range(0, len(ranked), step):
        window = ranked[start : start + step]
        current = await directory.current_mentors(workspace, [r.external_id for r in window])
        found += [r for r in window if r.external_id in current]
        gone |= {r.member_id for r in window if r.external_id not in current}
        if len(found) >= count:
            break
    return found[:count], gone


def match_note(rows: Sequence[CandidateRow], tags: Sequence[str]) -> dict[str, Any]:
    """What the card says about matching: who was suggested and the tags they share."""
    shared = [t for t in tags if any(t in r.skills for r in rows)]
    return {"mentors": [[r.external_id, r.display_name] for r in rows], "tags": shared}


async def left_out_of_copy(session: AsyncSession, old: RequestView) -> frozenset[int]:
    """Who a copy of `old` (Post again, Put it back in the feed) is never offered to: the mentor
    who called off its session (not when the student did), read from the cancelled session
    row; and whoever earlier copies left out, unless they claimed `old` from the feed since
    (then only calling it off again leaves them out). From stored rows, so it survives restarts."""
    out = await mentor_profiles.called_off(session, old.id)
    if old.claimed_by is not None:
        out.discard(old.claimed_by.id)
    if (
        old.status is Status.CANCELLED
        and old.cancelled_by == "mentor"
        and old.session is not None
        and old.session.status is SessionStatus.CANCELLED
    ):
        out.add(old.session.mentor.id)
    return frozenset(out)


def member_ref(view: RequestView, row: CandidateRow) -> MemberRef:
    return MemberRef(row.member_id, view.platform, view.workspace, row.external_id, row.display_name, None)


async def offer(
    session: AsyncSession, view: RequestView, rows: Sequence[CandidateRow], *, round_: int, now: datetime
) -> list[CandidateRow]:
    """Record the mentors asked and owe each a DM with the request and a Claim button."""
    fresh = set(
        await mentor_profiles.record_suggestions(
            session, view.id, [r.member_id for r in rows], round_=round_, now=now
        )
    )
    asked = [r for r in rows if r.member_id in fresh]
    for row in asked:
        await owe_dm(
            session,
            request=view,
            to=member_ref(view, row),
            kind=Kind.MATCH_SUGGESTED,
            now=now,
            key=f"request:{view.id}",
            payload={"tags": [t for t in view.tags if t in row.skills], "round": round_},
        )
    return asked


EXPECTATION_MINIMUM = 5  # claimed requests of the same urgency needed before quoting a median
EXPECTATION_WINDOW = timedelta(days=30)


async def expectations(session: AsyncSession, view: RequestView, *, now: datetime) -> dict[str, Any]:
    """What the student's confirmation can honestly say: mentors listing the tags, and the
    median time to claim of similar requests when there are enough of them."""
    listing = await mentor_profiles.mentors_listing(
        session, platform=view.platform, workspace=view.workspace, tags=view.tags, besides=view.student.id
    )
    waits = await mentor_profiles.recent_claim_waits(
        session,
        platform=view.platform,
        workspace=view.workspace,
        urgency=view.urgency.value,
        since=now - EXPECTATION_WINDOW,
    )
    out: dict[str, Any] = {"mentors_listing": listing}
    if len(waits) >= EXPECTATION_MINIMUM:
        out["median_claim_seconds"] = statistics.median(waits)
    return out
