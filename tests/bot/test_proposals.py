"""Proposed times, on SQLite and PostgreSQL: propose, pick (first pick wins), none work,
re-propose, withdrawal of past proposals, direct scheduling, and every refusal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.clock import ManualClock
from bot.domain import Actor, Invalid, Refused, RequestView, Status
from bot.notifications import Kind, card, compose
from bot.runtime import Runtime
from jobs.sweeps import Sweeps
from storage.models import MentorSession, Notification, Proposal
from tests.bot.test_workflow import create, ok, owed
from tests.conftest import MENTOR, MENTOR_2, OTHER_STUDENT, STUDENT, request_form

# MENTOR types times in New York; STUDENT reads them in Berlin.
TIMES = {"time_1": "2030-01-08 09:00", "time_2": "2030-01-09 12:00", "time_3": "2030-01-10 15:30"}


async def claimed(runtime: Runtime) -> RequestView:
    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    return request


async def proposed(runtime: Runtime, **extra: str) -> tuple[RequestView, int]:
    request = await claimed(runtime)
    after = ok(await runtime.mentorship.propose_times(MENTOR, request.id, {**TIMES, **extra}))
    assert after.times_proposed and after.proposal_id is not None
    return after, after.proposal_id


async def test_propose_owes_the_student_buttons_in_their_own_zone(
    runtime: Runtime, clock: ManualClock
) -> None:
    request, pid = await proposed(runtime, note="Bring your CV")
    [row] = await owed(runtime, request_id=request.id, kind=Kind.TIMES_PROPOSED.value)
    message = compose(Kind.TIMES_PROPOSED, row.payload, request, request.student, clock.now())
    labels = [b.label for b in message.buttons]
    # 09:00 New York = 15:00 Berlin; 12:00 -> 18:00; 15:30 -> 21:30.
    assert labels == [
        "Tue 08 Jan 15:00 CET",
        "Wed 09 Jan 18:00 CET",
        "Thu 10 Jan 21:30 CET",
        "None of these work",
    ]
    assert message.buttons[0].value == f"{request.id}:{pid}:0"
    assert len(await owed(runtime, request_id=request.id, kind="card", status="pending")) == 1
    assert any("times proposed, waiting for the student" in str(v) for _, v in card(request).fields)


async def test_pick_schedules_like_a_direct_schedule(runtime: Runtime) -> None:
    request, pid = await proposed(runtime)
    after = ok(await runtime.mentorship.pick_time(STUDENT, request.id, pid, 1))
    assert after.status is Status.SCHEDULED and after.proposal_id is None
    assert after.session.starts_at == datetime(2030, 1, 9, 17, 0, tzinfo=UTC)
    kinds = sorted(n.kind for n in await owed(runtime, request_id=request.id, status="pending"))
    assert kinds.count("session_scheduled") == 2 and kinds.count("reminder") == 4
    # A second click, another time of the same proposal: polite, nothing changes.
    again = await runtime.mentorship.pick_time(STUDENT, request.id, pid, 0)
    assert isinstance(again, Refused) and again.code == "already_picked"
    async with runtime.db.transaction() as session:
        assert len((await session.scalars(select(MentorSession))).all()) == 1
        assert (await session.get(Proposal, pid)).status == "picked"  # type: ignore[union-attr]


async def test_twenty_concurrent_picks_make_one_session(runtime: Runtime) -> None:
    request, pid = await proposed(runtime)
    results = await asyncio.gather(
        *(runtime.mentorship.pick_time(STUDENT, request.id, pid, n % 3) for n in range(20))
    )
    assert sum(1 for r in results if not isinstance(r, Refused)) == 1
    assert {r.code for r in results if isinstance(r, Refused)} <= {"already_picked", "old_proposal"}
    async with runtime.db.transaction() as session:
        assert len((await session.scalars(select(MentorSession))).all()) == 1
        rows = (
            await session.scalars(select(Notification).where(Notification.kind == "session_scheduled"))
        ).all()
    # Both DMs, and one post in the shared conversation.
    assert sorted(row.audience for row in rows) == ["dm", "dm", "shared"]


async def test_only_the_requests_student_may_pick_or_refuse(runtime: Runtime) -> None:
    request, pid = await proposed(runtime)
    for actor in (OTHER_STUDENT, MENTOR, MENTOR_2):
        picked = await runtime.mentorship.pick_time(actor, request.id, pid, 0)
        assert isinstance(picked, Refused) and picked.code in ("not_student", "not_found")
        refused = await runtime.mentorship.none_work(actor, request.id, pid, {"note": "x"})
        assert isinstance(refused, Refused)
    elsewhere = Actor("slack", "T2", STUDENT.user_id, "Sam", "UTC")  # a replayed button, other workspace
    assert isinstance(await runtime.mentorship.pick_time(elsewhere, request.id, pid, 0), Refused)
    # Made-up proposal ids and indexes change nothing.
    assert isinstance(await runtime.mentorship.pick_time(STUDENT, request.id, pid + 99, 0), Refused)
    assert isinstance(await runtime.mentorship.pick_time(STUDENT, request.id, pid, 7), Refused)
    view = ok(await runtime.mentorship.get_request(STUDENT, request.id))
    assert view.status is Status.CLAIMED and view.proposal_id == pid


async def test_none_work_tells_the_mentor_then_re_propose_and_old_buttons_are_refused(
    runtime: Runtime, clock: ManualClock
) -> None:
    request, pid = await proposed(runtime)
    after = ok(
        await runtime.mentorship.none_work(STUDENT, request.id, pid, {"note": "evenings after 18:00 work"})
    )
    assert after.status is Status.CLAIMED and after.proposal_id is None
    [row] = await owed(runtime, request_id=request.id, kind=Kind.TIMES_DECLINED.value)
    message = compose(Kind.TIMES_DECLINED, row.payload, after, after.claimed_by, clock.now())
    assert "evenings after 18:00 work" in str(message.lines)
    assert [b.label for b in message.buttons] == ["Propose other times", "Schedule directly"]
    second = ok(await runtime.mentorship.propose_times(MENTOR, request.id, {"time_1": "2030-01-08 13:00"}))
    assert second.proposal_id != pid
    old = await runtime.mentorship.pick_time(STUDENT, request.id, pid, 0)
    assert isinstance(old, Refused) and old.code == "old_proposal"
    too_long = await runtime.mentorship.none_work(
        STUDENT, request.id, second.proposal_id, {"note": "x" * 600}
    )
    assert isinstance(too_long, Invalid) and set(too_long.errors) == {"note"}
    ok(await runtime.mentorship.pick_time(STUDENT, request.id, second.proposal_id, 0))


async def test_re_propose_supersedes_and_direct_schedule_retires_times(runtime: Runtime) -> None:
    request, pid = await proposed(runtime)
    ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-08 11:00"}))
    stale = await runtime.mentorship.pick_time(STUDENT, request.id, pid, 0)
    assert isinstance(stale, Refused) and stale.code == "already_picked"
    async with runtime.db.transaction() as session:
        assert (await session.get(Proposal, pid)).status == "superseded"  # type: ignore[union-attr]


async def test_refusals_field_by_field(runtime: Runtime, clock: ManualClock) -> None:
    request = await claimed(runtime)
    bad = await runtime.mentorship.propose_times(
        MENTOR,
        request.id,
        {"time_1": "2030-01-12 10:00", "time_2": "2030-01-06 10:00", "time_3": "soon"},
    )
    assert isinstance(bad, Invalid) and set(bad.errors) == {"time_2", "time_3"}
    assert "passed" in bad.errors["time_2"]
    outside = await runtime.mentorship.propose_times(
        MENTOR, request.id, {"time_1": "2030-01-20 10:00", "time_2": "2030-01-08 10:00"}
    )
    assert isinstance(outside, Invalid) and set(outside.errors) == {"time_1"}
    assert "student's dates" in outside.errors["time_1"]
    dup = await runtime.mentorship.propose_times(
        MENTOR, request.id, {"time_1": "2030-01-08 10:00", "time_2": "2030-01-08 10:00"}
    )
    assert isinstance(dup, Invalid) and set(dup.errors) == {"time_2"}
    assert isinstance(await runtime.mentorship.propose_times(MENTOR, request.id, {}), Invalid)
    # Overlap with the mentor's other session.
    other = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, other.id))
    ok(await runtime.mentorship.schedule(MENTOR, other.id, {"starts_at": "2030-01-08 10:00"}))
    clash = await runtime.mentorship.propose_times(
        MENTOR, request.id, {"time_1": "2030-01-08 10:15", "time_2": "2030-01-08 12:00"}
    )
    assert isinstance(clash, Invalid) and set(clash.errors) == {"time_1"}
    # Only the claimer proposes.
    stranger = await runtime.mentorship.propose_times(MENTOR_2, request.id, TIMES)
    assert isinstance(stranger, Refused) and stranger.code == "not_claimer"
    async with runtime.db.transaction() as session:
        assert (await session.scalars(select(Proposal))).all() == []


async def test_proposals_all_in_the_past_are_withdrawn_and_the_mentor_told(
    runtime: Runtime, clock: ManualClock
) -> None:
    request, pid = await proposed(runtime)
    clock.set(datetime(2030, 1, 10, 20, 0, tzinfo=UTC))  # before the last time (20:30 UTC)
    assert await runtime.mentorship.withdraw_past_proposals() == 0
    clock.advance(timedelta(minutes=31))
    assert (await Sweeps(runtime).run_all_once())["withdraw_proposals"] == 1  # the jobs run it
    assert await runtime.mentorship.withdraw_past_proposals() == 0  # once
    view = ok(await runtime.mentorship.get_request(MENTOR, request.id))
    assert view.status is Status.CLAIMED and view.proposal_id is None
    [row] = await owed(runtime, request_id=request.id, kind=Kind.PROPOSAL_WITHDRAWN.value)
    assert row.member_id == view.claimed_by.id
    late = await runtime.mentorship.pick_time(STUDENT, request.id, pid, 2)
    # No "latest message has the current ones": there are none.
    assert isinstance(late, Refused) and late.message == (
        "Those times are no longer on offer; nothing changed. Your mentor can propose new ones."
    )


async def test_release_retires_the_times(runtime: Runtime) -> None:
    request, pid = await proposed(runtime)
    ok(await runtime.mentorship.release(MENTOR, request.id))
    ok(await runtime.mentorship.claim(MENTOR_2, request.id))
    view = ok(await runtime.mentorship.get_request(STUDENT, request.id))
    assert not view.times_proposed
    assert isinstance(await runtime.mentorship.pick_time(STUDENT, request.id, pid, 0), Refused)


async def test_one_mentors_time_is_booked_once_when_two_picks_land_together(runtime: Runtime) -> None:
    """The mentor offered the same time to two students (their availability suggests the same
    first slots for both) and both pick it at once, or one picks it while the mentor books it
    directly for another request: one booking wins, the other is told the mentor is no longer
    free then. Before, on PostgreSQL both were booked: the mentor double-booked."""
    m = runtime.mentorship
    same = {"time_1": TIMES["time_1"]}
    picks, ids = [], []
    for student in (STUDENT, OTHER_STUDENT):
        request = ok(await m.create_request(student, request_form()))
        ok(await m.claim(MENTOR, request.id))
        after = ok(await m.propose_times(MENTOR, request.id, same))
        ids.append(request.id)
        picks.append(m.pick_time(student, request.id, after.proposal_id, 0))
    results = await asyncio.gather(*picks)
    assert sorted(type(r).__name__ for r in results) == ["Ok", "Refused"], results
    assert {r.code for r in results if isinstance(r, Refused)} == {"time_taken"}
    async with runtime.db.transaction() as session:
        assert len((await session.scalars(select(MentorSession))).all()) == 1

    # A pick racing the mentor's direct booking of another request at that time (the first
    # two released, to stay within the mentor's capacity).
    for request_id in ids:
        ok(await m.release(MENTOR, request_id))
    later = {"time_1": TIMES["time_2"]}
    first = ok(await m.create_request(STUDENT, request_form()))
    ok(await m.claim(MENTOR, first.id))
    offered = ok(await m.propose_times(MENTOR, first.id, later))
    other = ok(await m.create_request(OTHER_STUDENT, request_form()))
    ok(await m.claim(MENTOR, other.id))
    raced = await asyncio.gather(
        m.pick_time(STUDENT, first.id, offered.proposal_id, 0),
        m.schedule(MENTOR, other.id, {"starts_at": TIMES["time_2"]}),
    )
    assert sum(1 for r in raced if isinstance(r, Refused | Invalid)) == 1, raced
    async with runtime.db.transaction() as session:
        booked = (
            await session.scalars(select(MentorSession).where(MentorSession.status == "scheduled"))
        ).all()
    assert len(booked) == 1
