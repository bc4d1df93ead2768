"""Hypothesis: random sequences of actions by random people, checked against a reference model.

After every step the database must agree with the model (who won, what status), no request may
be lost, and the invariants of the status flow must hold. Runs on SQLite files (a new database
per example); the PostgreSQL engine is covered by the same use cases in test_workflow/test_race.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.domain import Actor, Invalid, Ok, Refused, Status
from bot.runtime import Runtime
from storage import migrate
from storage.db import Database
from storage.models import MentorSession, Notification, Request, RescheduleAsk
from tests.conftest import START, make_settings, request_form

STUDENTS = [Actor("slack", "T1", f"U_S{i}", f"Student {i}", "UTC") for i in range(3)]
MENTORS = [Actor("slack", "T1", f"U_M{i}", f"Mentor {i}", "UTC", is_mentor=True) for i in range(2)]
AFTER_SESSIONS = datetime(2030, 1, 13, 9, 0, tzinfo=UTC)  # every session is over
AFTER_EXPIRY = datetime(2030, 1, 20, 9, 0, tzinfo=UTC)  # every open request has expired


@dataclass
class ModelRequest:
    student: str
    status: Status = Status.OPEN
    claimer: str | None = None
    rated: bool = False
    proposed: bool = False  # times proposed, waiting for the student
    asked: bool = False  # the student's ask to reschedule, still answerable
    when: str | None = None  # the live session's time, as typed
    offered: str | None = None  # the time of the pending proposal
    reposted: bool = False


@dataclass
class Model:
    requests: dict[int, ModelRequest] = field(default_factory=dict)
    stage: int = 0  # 0: Jan 7; 1: sessions over; 2: open requests expired

    def active(self, student: str) -> int:
        live = (Status.OPEN, Status.CLAIMED, Status.SCHEDULED)
        return sum(1 for r in self.requests.values() if r.student == student and r.status in live)


mentor_action = st.tuples(
    st.sampled_from(
        [
            "claim",
            "release",
            "schedule",
            "propose",
            "cancel_session",
            "complete",
            "keep",
            "propose_ask",
            "cant_mentor",
        ]
    ),
    st.integers(0, 2),
    st.integers(0, 7),
)
student_action = st.tuples(
    st.sampled_from(["cancel", "rate", "pick", "none_work", "ask", "cant_student", "put_back"]),
    st.integers(0, 2),
    st.integers(0, 7),
)
person_action = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 2), st.just(0)), mentor_action, student_action
)
action = st.one_of(
    person_action, st.tuples(st.sampled_from(["sessions_end", "expire"]), st.just(0), st.just(0))
)


# Two requests claimed and scheduled by different mentors (who 2 is mentor 1): a start from which short random
# sequences reach the changes from either side (asks, answers, can't make it, put back).
BOOKED = [
    ("create", 0, 0),
    ("create", 1, 0),
    ("claim", 0, 0),
    ("claim", 2, 1),
    ("schedule", 0, 0),
    ("schedule", 2, 1),
]


@hsettings(max_examples=60)
@given(st.booleans(), st.lists(person_action, max_size=25), st.lists(action, max_size=10))
def test_random_action_sequences_follow_the_model(
    booked: bool, before: list[tuple[str, int, int]], then: list[tuple[str, int, int]]
) -> None:
    """People act for a while before the clock jumps (a jump ends every session), then anything."""
    asyncio.run(_run((BOOKED if booked else []) + before + then))


# The changes from either side of a booked session, and what they meet: moves, cancels, picks.
change_action = st.tuples(
    st.sampled_from(
        [
            "ask",
            "keep",
            "propose_ask",
            "propose",
            "pick",
            "none_work",
            "cant_student",
            "cant_mentor",
            "schedule",
            "cancel_session",
            "put_back",
            "claim",
        ]
    ),
    st.integers(0, 2),
    st.integers(0, 1),
)


@hsettings(max_examples=60)
@given(st.lists(change_action, min_size=4, max_size=20))
# The chains random draws reach rarely, always played: ask -> keep; ask -> new times -> pick ->
# ask again; a no-op reschedule keeps the ask; new times survive a cancelled session; can't make
# it -> put back -> claim the copy; the wrong people at every step.
@example([("ask", 0, 0), ("keep", 0, 0), ("keep", 0, 0)])
@example([("ask", 0, 0), ("propose_ask", 0, 0), ("pick", 0, 0), ("ask", 0, 0), ("keep", 0, 0)])
@example([("ask", 0, 1), ("schedule", 0, 1), ("keep", 0, 1), ("propose_ask", 0, 1)])
@example([("ask", 0, 1), ("propose_ask", 0, 1), ("cancel_session", 0, 1), ("pick", 0, 1), ("ask", 0, 1)])
@example([("propose", 0, 0), ("none_work", 0, 0), ("propose", 0, 0), ("pick", 0, 0), ("cant_student", 0, 0)])
@example([("cant_mentor", 0, 0), ("put_back", 0, 0), ("put_back", 0, 0), ("claim", 2, 2), ("schedule", 1, 2)])
@example([("cant_student", 0, 1), ("cant_mentor", 0, 1), ("put_back", 1, 1), ("put_back", 0, 1)])
@example(
    [
        ("ask", 1, 0),
        ("ask", 0, 0),
        ("keep", 2, 0),
        ("propose_ask", 2, 0),
        ("cant_mentor", 2, 0),
        ("keep", 0, 0),
    ]
)
def test_changes_from_either_side_follow_the_model(actions: list[tuple[str, int, int]]) -> None:
    asyncio.run(_run(BOOKED + actions + [("sessions_end", 0, 0)]))


async def _run(actions: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite+aiosqlite:///{Path(folder) / 'sm.db'}")
        await migrate.upgrade(db)
        clock = ManualClock(START)
        runtime = Runtime(make_settings(db.url), clock=clock, db=db)
        model = Model()
        try:
            for step in actions:
                await _step(runtime, clock, model, step)
                await _check(runtime, model)
        finally:
            await db.dispose()


async def _step(runtime: Runtime, clock: ManualClock, model: Model, step: tuple[str, int, int]) -> None:
    name, who, index = step
    m = runtime.mentorship
    ids = sorted(model.requests)
    rid = ids[index % len(ids)] if ids else 1
    target = model.requests.get(rid)

    if name == "create":
        student = STUDENTS[who]
        result = await m.create_request(student, request_form())
        if model.stage > 0:
            assert isinstance(result, Invalid)  # the dates are now in the past
        elif model.active(student.user_id) >= 2:
            assert isinstance(result, Refused) and result.code == "too_many_open"
        else:
            assert isinstance(result, Ok), result
            model.requests[result.value.id] = ModelRequest(student.user_id)
        return
    if name == "sessions_end":
        if model.stage == 0:
            clock.set(AFTER_SESSIONS)
            model.stage = 1
        await m.complete_due()
        await m.withdraw_past_proposals()  # every proposed time is past now
        for r in model.requests.values():
            r.proposed, r.asked = False, False
            if r.status is Status.SCHEDULED:
                r.status = Status.COMPLETED
        return
    if name == "expire":
        clock.set(AFTER_EXPIRY)
        model.stage = 2
        await m.complete_due()
        await m.expire_due()
        await m.withdraw_past_proposals()
        for r in model.requests.values():
            r.proposed, r.asked = False, False
            if r.status is Status.SCHEDULED:
                r.status = Status.COMPLETED
            if r.status is Status.OPEN:
                r.status = Status.EXPIRED
        return
    if target is None:
        return

    if name in ("cancel", "rate", "pick", "none_work", "ask", "cant_student", "put_back"):
        # who 0: the request's own student (the common case); 1, 2: a student by number.
        actor = next(a for a in STUDENTS if a.user_id == target.student) if who == 0 else STUDENTS[who]
        is_student = actor.user_id == target.student
        if name == "cancel":
            result = await m.cancel(actor, rid)
            allowed = is_student and not target.status.is_final
            if allowed:
                target.status, target.proposed, target.asked = Status.CANCELLED, False, False
        elif name in ("ask", "cant_student"):
            live = await _live_button(runtime, rid)  # the session and version, as its DM holds them
            if name == "ask":
                result = await m.ask_reschedule(actor, rid, *live, {"reason": "Clash at work"})
            else:
                result = await m.cant_make_it(actor, rid, *live, {})
            allowed = is_student and target.status is Status.SCHEDULED
            if allowed and name == "ask":
                target.asked = True
            elif allowed:
                target.status, target.proposed, target.asked = Status.CANCELLED, False, False
        elif name == "put_back":
            if model.stage > 0:
                return  # the copy's dates would start later than this model's calendar knows
            result = await m.repost(actor, rid)
            allowed = (
                is_student
                and target.status in (Status.CANCELLED, Status.EXPIRED)
                and not target.reposted
                and model.active(actor.user_id) < 2
            )
            if allowed:
                assert isinstance(result, Ok)
                target.reposted = True
                model.requests[result.value.id] = ModelRequest(actor.user_id)
        elif name in ("pick", "none_work"):
            async with runtime.db.transaction() as session:  # the pending proposal, as its DM holds it
                row = await session.get(Request, rid)
                pid = row.proposal_id if row is not None and row.proposal_id else 1
            if name == "pick":
                result = await m.pick_time(actor, rid, pid, 0)
            else:
                result = await m.none_work(actor, rid, pid, {"note": "evenings"})
            allowed = is_student and target.status in (Status.CLAIMED, Status.SCHEDULED) and target.proposed
            if allowed:
                target.proposed = False
                if name == "pick":  # a new session, or the live one moved: any ask is stale
                    target.status, target.asked, target.when = Status.SCHEDULED, False, target.offered
        else:
            result = await m.rate(actor, rid, 4)
            allowed = is_student and target.status is Status.COMPLETED and not target.rated
            target.rated = target.rated or allowed
        assert isinstance(result, Ok) == allowed, (name, result)
        return

    # who 0: the claimer when there is one (the common case), else mentor 0; 1, 2: a mentor by number.
    claimer = next((a for a in MENTORS if a.user_id == target.claimer), None)
    actor = claimer if who == 0 and claimer is not None else MENTORS[max(who - 1, 0)]
    is_claimer = target.claimer == actor.user_id
    # From stage 1 on the students' dates (7-11 January) are over: no claim, and a release
    # expires the request instead of reopening it.
    if name == "claim":
        result = await m.claim(actor, rid)
        allowed = target.status is Status.OPEN and model.stage == 0
        if allowed:
            target.status, target.claimer = Status.CLAIMED, actor.user_id
    elif name == "release":
        result = await m.release(actor, rid)
        allowed = is_claimer and target.status in (Status.CLAIMED, Status.SCHEDULED)
        if allowed:
            reopened = Status.OPEN if model.stage == 0 else Status.EXPIRED
            target.status, target.claimer, target.proposed, target.asked = reopened, None, False, False
    elif name == "schedule":
        # A distinct hour per request, so one mentor's sessions never overlap.
        when = (datetime(2030, 1, 8, tzinfo=UTC) + timedelta(hours=rid)).strftime("%Y-%m-%d %H:%M")
        result = await m.schedule(actor, rid, {"starts_at": when})
        allowed = is_claimer and target.status in (Status.CLAIMED, Status.SCHEDULED) and model.stage == 0
        unchanged = target.status is Status.SCHEDULED and target.when == when  # already so: a no-op
        if allowed and not unchanged:
            target.status, target.proposed, target.asked, target.when = Status.SCHEDULED, False, False, when
    elif name == "propose":
        # Another day, a distinct hour per request: never overlapping a scheduled session.
        when = (datetime(2030, 1, 10, tzinfo=UTC) + timedelta(hours=rid)).strftime("%Y-%m-%d %H:%M")
        result = await m.propose_times(actor, rid, {"time_1": when})
        booked_then = target.status is Status.SCHEDULED and target.when == when  # not a new time
        allowed = (
            is_claimer
            and target.status in (Status.CLAIMED, Status.SCHEDULED)
            and model.stage == 0
            and not booked_then
        )
        if allowed:
            target.proposed, target.offered = True, when
    elif name == "propose_ask":
        when = (datetime(2030, 1, 10, tzinfo=UTC) + timedelta(hours=rid)).strftime("%Y-%m-%d %H:%M")
        result = await m.propose_for_ask(actor, rid, await _latest_ask(runtime, rid), {"time_1": when})
        allowed = is_claimer and target.asked and model.stage == 0 and target.when != when
        if allowed:
            target.proposed, target.offered, target.asked = True, when, False
    elif name == "keep":
        result = await m.keep_time(actor, rid, await _latest_ask(runtime, rid))
        allowed = is_claimer and target.asked
        if allowed:
            target.asked = False
    elif name == "cant_mentor":
        result = await m.cant_make_it(actor, rid, *await _live_button(runtime, rid), {"reason": "ill"})
        allowed = is_claimer and target.status is Status.SCHEDULED
        if allowed:
            target.status, target.proposed, target.asked = Status.CANCELLED, False, False
    elif name == "cancel_session":
        result = await m.cancel_session(actor, rid)
        allowed = is_claimer and target.status is Status.SCHEDULED
        if allowed:
            target.status, target.asked = Status.CLAIMED, False
    else:  # complete: sessions are in the future at stage 0, and already completed after
        result = await m.complete(actor, rid)
        allowed = False
    assert isinstance(result, Ok) == allowed, (name, actor.user_id, target, result)


async def _live_button(runtime: Runtime, rid: int) -> tuple[int, int]:
    async with runtime.db.transaction() as session:
        row = (
            await session.execute(
                select(MentorSession.id, MentorSession.schedule_version)
                .where(MentorSession.request_id == rid)
                .order_by(MentorSession.id.desc())
                .limit(1)
            )
        ).first()
    return (row[0], row[1]) if row is not None else (1, 1)


async def _latest_ask(runtime: Runtime, rid: int) -> int:
    async with runtime.db.transaction() as session:
        ask = await session.scalar(select(func.max(RescheduleAsk.id)).where(RescheduleAsk.request_id == rid))
    return int(ask or 1)


async def _answerable(runtime: Runtime) -> set[int]:
    """Requests whose newest ask the mentor may still answer (pending, about the live time)."""
    async with runtime.db.transaction() as session:
        rows = (
            await session.execute(
                select(RescheduleAsk.request_id)
                .join(MentorSession, MentorSession.id == RescheduleAsk.session_id)
                .join(Request, Request.id == RescheduleAsk.request_id)
                .where(
                    RescheduleAsk.status == "pending",
                    MentorSession.status == "scheduled",
                    MentorSession.schedule_version == RescheduleAsk.schedule_version,
                    Request.status == "scheduled",
                )
            )
        ).all()
    return {r[0] for r in rows}


async def _check(runtime: Runtime, model: Model) -> None:
    async with runtime.db.transaction() as session:
        rows = {r.id: r for r in (await session.scalars(select(Request))).all()}
        live_sessions = (
            await session.execute(
                select(MentorSession.request_id, func.count())
                .where(MentorSession.status == "scheduled")
                .group_by(MentorSession.request_id)
            )
        ).all()
        stale_reminders = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .join(MentorSession, MentorSession.id == Notification.session_id)
            .where(
                Notification.kind == "reminder",
                Notification.status == "pending",
                MentorSession.status != "scheduled",
            )
        )
    assert set(rows) == set(model.requests)  # nothing lost, nothing invented
    live = dict(live_sessions)
    for rid, expected in model.requests.items():
        row = rows[rid]
        assert row.status == expected.status.value, (rid, row.status, expected)
        if expected.status in (Status.CLAIMED, Status.SCHEDULED):
            assert row.claimed_by_id is not None
        if expected.status is Status.OPEN:
            assert row.claimed_by_id is None
        assert (row.proposal_id is not None) == expected.proposed, (rid, row.proposal_id, expected)
        assert live.get(rid, 0) == (1 if expected.status is Status.SCHEDULED else 0)
    assert stale_reminders == 0
    assert await _answerable(runtime) == {rid for rid, r in model.requests.items() if r.asked}
