"""Changes from either side, on SQLite and PostgreSQL: the student's ask to reschedule, the
mentor's answers (new times, keep the time), "can't make it" from the 24-hour reminder, the
one-click repost after it, and every refusal and race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from icalendar import Calendar
from sqlalchemy import select

from bot.authz import Act
from bot.clock import ManualClock
from bot.domain import Actor, Invalid, Ok, Refused, RequestView, SessionStatus, Status
from bot.messages import Action
from bot.notifications import Kind, card, compose
from bot.runtime import Runtime
from bot.workflow import day_before_offset
from storage import repository as repo
from storage.models import MentorSession, Notification, RescheduleAsk
from tests.bot.test_escalation import Directory
from tests.bot.test_workflow import ok, owed, scheduled
from tests.conftest import MENTOR, MENTOR_2, OTHER_STUDENT, STUDENT

REASON = {"reason": "My interview moved to <!channel> Thursday"}
NEW_TIMES = {"time_1": "2030-01-09 10:00", "time_2": "2030-01-10 10:00"}  # New York, the mentor's zone


def button(request: RequestView) -> tuple[int, int, int]:
    assert request.session is not None
    return request.id, request.session.id, request.session.schedule_version


async def asked(runtime: Runtime, **kwargs: Any) -> tuple[RequestView, int]:
    request = await scheduled(runtime)
    ok(await runtime.mentorship.ask_reschedule(STUDENT, *button(request), REASON, **kwargs))
    [row] = await owed(runtime, request_id=request.id, kind=Kind.RESCHEDULE_ASKED.value)
    return request, int(row.payload["ask_id"])


async def view_of(runtime: Runtime, request_id: int) -> RequestView:
    async with runtime.db.transaction() as session:
        view = await repo.request_view(session, request_id)
    assert view is not None
    return view


async def test_the_ask_reaches_the_mentor_with_the_reason_and_two_answers(
    runtime: Runtime, clock: ManualClock
) -> None:
    request, ask_id = await asked(runtime)
    [row] = await owed(runtime, request_id=request.id, kind=Kind.RESCHEDULE_ASKED.value)
    view = await view_of(runtime, request.id)
    assert row.member_id == view.claimed_by.id and row.payload["reason"] == REASON["reason"]
    message = compose(Kind.RESCHEDULE_ASKED, row.payload, view, view.claimed_by, clock.now())
    assert "<!channel>" in str(message.lines)  # kept as plain text; each renderer escapes it
    assert [(b.label, b.action, b.value) for b in message.buttons] == [
        ("Propose new times", Action.ASK_PROPOSE, f"{request.id}:{ask_id}"),
        ("Keep the time", Action.KEEP_TIME, f"{request.id}:{ask_id}"),
    ]
    assert view.status is Status.SCHEDULED and view.session.starts_at == request.session.starts_at


async def test_the_scheduled_dm_and_reminders_carry_the_buttons(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    value = ":".join(map(str, button(request)))
    dm = next(n for n in await owed(runtime, kind="session_scheduled") if n.member_id == request.student.id)
    student_dm = compose(Kind.SESSION_SCHEDULED, dm.payload, request, request.student, clock.now())
    assert (student_dm.buttons[0].label, student_dm.buttons[0].value) == ("Ask to reschedule", value)
    mentor_dm = compose(Kind.SESSION_SCHEDULED, dm.payload, request, request.session.mentor, clock.now())
    assert Action.ASK_RESCHEDULE not in {b.action for b in mentor_dm.buttons}
    for row in await owed(runtime, kind="reminder"):
        reader = request.student if row.member_id == request.student.id else request.session.mentor
        labels = [b.label for b in compose(Kind.REMINDER, row.payload, request, reader, clock.now()).buttons]
        expected = ["Ask to reschedule"] if reader is request.student else []
        if row.payload["offset"] == "1d":
            expected.append("Can't make it")
        assert labels == expected, (row.payload, reader)


def test_the_cant_make_it_reminder_is_the_24_hour_one_or_the_largest_below() -> None:
    hours = [timedelta(hours=h) for h in (48, 24, 1)]
    assert day_before_offset(hours) == timedelta(hours=24)
    assert day_before_offset([timedelta(days=2), timedelta(hours=2), timedelta(minutes=15)]) == timedelta(
        hours=2
    )
    assert day_before_offset([timedelta(days=2)]) is None


async def test_only_the_student_asks_and_bad_reasons_are_refused_by_field(runtime: Runtime) -> None:
    request = await scheduled(runtime)
    m = runtime.mentorship
    for actor in (OTHER_STUDENT, MENTOR, MENTOR_2, Actor("slack", "T2", STUDENT.user_id, "Sam", "UTC")):
        refused = await m.ask_reschedule(actor, *button(request), REASON)
        assert isinstance(refused, Refused) and refused.code in ("not_student", "not_found"), actor
        checked = await m.check_session_button(actor, *button(request), Act.ASK_RESCHEDULE)
        assert isinstance(checked, Refused)
    empty = await m.ask_reschedule(STUDENT, *button(request), {"reason": "  "})
    assert isinstance(empty, Invalid) and set(empty.errors) == {"reason"}
    long = await m.ask_reschedule(STUDENT, *button(request), {"reason": "x" * 301})
    assert isinstance(long, Invalid) and "300" in long.errors["reason"]
    assert await owed(runtime, kind=Kind.RESCHEDULE_ASKED.value) == []
    assert isinstance(await m.check_session_button(STUDENT, *button(request), Act.ASK_RESCHEDULE), Ok)


async def test_new_times_keep_the_session_until_the_pick_moves_it(
    runtime: Runtime, clock: ManualClock
) -> None:
    request, ask_id = await asked(runtime)
    m = runtime.mentorship
    assert isinstance(await m.check_ask(MENTOR, request.id, ask_id), Ok)
    proposed = ok(await m.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES))
    # The current time stays valid until a pick.
    assert proposed.status is Status.SCHEDULED and proposed.times_proposed
    assert proposed.session.starts_at == request.session.starts_at
    [offer] = await owed(runtime, request_id=request.id, kind=Kind.TIMES_PROPOSED.value)
    text = compose(Kind.TIMES_PROPOSED, offer.payload, proposed, proposed.student, clock.now())
    assert "stays booked" in str(text.lines)
    assert any("times proposed" in str(v) for _, v in card(proposed).fields)
    # The ask is answered: Keep the time (or another proposal for it) is refused.
    kept = await m.keep_time(MENTOR, request.id, ask_id)
    assert isinstance(kept, Refused) and kept.code == "ask_answered"
    again = await m.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES)
    assert isinstance(again, Refused) and again.code == "ask_answered"
    moved = ok(await m.pick_time(STUDENT, request.id, offer.payload["proposal_id"], 1))
    # The same session, moved: version 2, 10:00 New York = 15:00 UTC.
    assert moved.session.id == request.session.id and moved.session.schedule_version == 2
    assert moved.session.starts_at == datetime(2030, 1, 10, 15, 0, tzinfo=UTC)
    assert moved.status is Status.SCHEDULED and moved.proposal_id is None
    assert len(await owed(runtime, request_id=request.id, kind="session_rescheduled")) == 2
    assert len(await owed(runtime, kind="reminder", status="superseded")) == 4
    assert {n.due_at for n in await owed(runtime, kind="reminder", status="pending")} == {
        moved.session.starts_at - timedelta(hours=24),
        moved.session.starts_at - timedelta(minutes=15),
    }
    [update] = [
        n
        for n in await owed(runtime, request_id=request.id, kind="session_rescheduled")
        if n.member_id == moved.student.id
    ]
    ics = compose(Kind.SESSION_RESCHEDULED, update.payload, moved, moved.student, clock.now()).attachment
    assert ics is not None
    event = Calendar.from_ical(ics.content).walk("VEVENT")[0]
    assert str(event["UID"]) == f"session-{request.session.id}-request-{request.id}@mini-mentorship"
    assert int(event["SEQUENCE"]) == 2
    assert event.decoded("DTSTART") == datetime(2030, 1, 10, 15, 0, tzinfo=UTC)
    second = await m.pick_time(STUDENT, request.id, offer.payload["proposal_id"], 0)
    assert isinstance(second, Refused) and second.code == "already_picked"
    async with runtime.db.transaction() as session:
        assert len((await session.scalars(select(MentorSession))).all()) == 1


async def test_the_student_refusing_new_times_keeps_the_booked_one(runtime: Runtime) -> None:
    request, ask_id = await asked(runtime)
    proposed = ok(await runtime.mentorship.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES))
    after = ok(await runtime.mentorship.none_work(STUDENT, request.id, proposed.proposal_id, {"note": "no"}))
    assert after.status is Status.SCHEDULED and after.proposal_id is None
    assert after.session.starts_at == request.session.starts_at
    assert len(await owed(runtime, request_id=request.id, kind=Kind.TIMES_DECLINED.value)) == 1


async def test_an_ask_cannot_be_answered_once_the_session_has_started(
    runtime: Runtime, clock: ManualClock
) -> None:
    """The mentor comes to the ask late: Keep the time would tell the student a time already
    past "stands", and new times would move a session in progress. Both are refused, and the
    student is told nothing."""
    request, ask_id = await asked(runtime)
    m = runtime.mentorship
    clock.set(request.session.starts_at + timedelta(minutes=5))
    for answer in (
        await m.check_ask(MENTOR, request.id, ask_id),
        await m.keep_time(MENTOR, request.id, ask_id),
        await m.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES),
    ):
        assert isinstance(answer, Refused) and answer.code == "started", answer
    assert await owed(runtime, request_id=request.id, kind=Kind.TIME_KEPT.value) == []


async def test_keep_the_time_tells_the_student_once_even_under_twenty_clicks(
    runtime: Runtime, clock: ManualClock
) -> None:
    request, ask_id = await asked(runtime)
    m = runtime.mentorship
    stranger = await m.keep_time(MENTOR_2, request.id, ask_id)
    assert isinstance(stranger, Refused) and stranger.code == "not_claimer"
    student = await m.keep_time(STUDENT, request.id, ask_id)
    assert isinstance(student, Refused) and student.code == "not_claimer"
    assert isinstance(await m.check_ask(MENTOR_2, request.id, ask_id), Refused)
    results = await asyncio.gather(*(m.keep_time(MENTOR, request.id, ask_id) for _ in range(20)))
    assert sum(isinstance(r, Ok) for r in results) == 1
    assert {r.code for r in results if isinstance(r, Refused)} == {"ask_answered"}
    [row] = await owed(runtime, request_id=request.id, kind=Kind.TIME_KEPT.value)
    view = await view_of(runtime, request.id)
    assert row.member_id == view.student.id
    message = compose(Kind.TIME_KEPT, row.payload, view, view.student, clock.now())
    assert "the time stands" in str(message.lines)
    assert view.status is Status.SCHEDULED and view.session.schedule_version == 1


async def test_stale_buttons_change_nothing(runtime: Runtime) -> None:
    m = runtime.mentorship
    request, first = await asked(runtime)
    # A newer ask makes the first one stale.
    ok(await m.ask_reschedule(STUDENT, *button(request), {"reason": "Actually, Friday please"}))
    newer = await m.keep_time(MENTOR, request.id, first)
    assert isinstance(newer, Refused) and newer.code == "newer_ask"
    [_, second] = [int(n.payload["ask_id"]) for n in await owed(runtime, kind=Kind.RESCHEDULE_ASKED.value)]
    # The mentor moves the session directly: the ask and the old Ask button are stale.
    ok(await m.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 11:00"}))
    for refused in (
        await m.keep_time(MENTOR, request.id, second),
        await m.propose_for_ask(MENTOR, request.id, second, NEW_TIMES),
        await m.check_ask(MENTOR, request.id, second),
    ):
        assert isinstance(refused, Refused) and refused.code == "stale_ask", refused
    old_button = await m.ask_reschedule(STUDENT, *button(request), REASON)
    assert isinstance(old_button, Refused) and old_button.code == "stale_session"
    old_cmi = await m.cant_make_it(STUDENT, *button(request), {})
    assert isinstance(old_cmi, Refused) and old_cmi.code == "stale_session"
    # A made-up ask id.
    assert isinstance(await m.keep_time(MENTOR, request.id, 9999), Refused)
    # The session cancelled: nothing to ask about.
    moved = await view_of(runtime, request.id)
    ok(await m.cancel_session(MENTOR, request.id))
    gone = await m.ask_reschedule(STUDENT, *button(moved), REASON)
    assert isinstance(gone, Refused) and gone.code == "not_scheduled"
    assert len(await owed(runtime, kind=Kind.TIME_KEPT.value)) == 0
    assert len(await owed(runtime, kind=Kind.TIMES_PROPOSED.value)) == 0


async def test_a_double_submitted_ask_takes_effect_once(runtime: Runtime) -> None:
    request = await scheduled(runtime)
    m = runtime.mentorship
    results = await asyncio.gather(
        *(m.ask_reschedule(STUDENT, *button(request), REASON, once="slack:view:V1:h1") for _ in range(10))
    )
    assert all(isinstance(r, Ok) for r in results)  # each copy gets what the first got
    async with runtime.db.transaction() as session:
        assert len((await session.scalars(select(RescheduleAsk))).all()) == 1
    assert len(await owed(runtime, kind=Kind.RESCHEDULE_ASKED.value)) == 1


async def test_a_direct_reschedule_retires_new_times_on_offer(runtime: Runtime) -> None:
    request, ask_id = await asked(runtime)
    proposed = ok(await runtime.mentorship.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES))
    ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 11:00"}))
    stale = await runtime.mentorship.pick_time(STUDENT, request.id, proposed.proposal_id, 0)
    assert isinstance(stale, Refused)
    assert (await view_of(runtime, request.id)).session.schedule_version == 2


async def test_the_student_cant_make_it(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    m = runtime.mentorship
    after = ok(await m.cant_make_it(STUDENT, *button(request), {"reason": "I'm ill, sorry"}))
    assert after.status is Status.CANCELLED and after.cancelled_by == "student"
    assert after.session.status is SessionStatus.CANCELLED
    assert await owed(runtime, kind="reminder", status="pending") == []
    rows = await owed(runtime, request_id=request.id, kind=Kind.CANT_MAKE_IT.value)
    assert sorted(r.member_id for r in rows) == sorted([after.student.id, after.session.mentor.id])
    to_mentor = next(r for r in rows if r.member_id == after.session.mentor.id)
    told = compose(Kind.CANT_MAKE_IT, to_mentor.payload, after, after.session.mentor, clock.now())
    assert "I'm ill, sorry" in str(told.lines) and told.buttons == ()
    assert told.attachment is not None
    cancel = Calendar.from_ical(told.attachment.content)
    assert str(cancel["METHOD"]) == "CANCEL" and int(cancel.walk("VEVENT")[0]["SEQUENCE"]) == 2
    mine = compose(Kind.CANT_MAKE_IT, to_mentor.payload, after, after.student, clock.now())
    assert [(b.label, b.action) for b in mine.buttons] == [("Put it back in the feed", Action.REPOST)]
    assert "by the student" in card(after).headline
    # Put it back: once only, as Post again.
    copy = ok(await m.repost(STUDENT, request.id))
    assert copy.status is Status.OPEN and copy.id != request.id
    twice = await m.repost(STUDENT, request.id)
    assert isinstance(twice, Refused) and twice.code == "already_reposted"
    again = await m.cant_make_it(STUDENT, *button(request), {})
    assert isinstance(again, Refused) and again.code == "not_scheduled"


async def test_the_mentor_cant_make_it(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    after = ok(await runtime.mentorship.cant_make_it(MENTOR, *button(request), {"reason": ""}))
    assert after.status is Status.CANCELLED and after.cancelled_by == "mentor"
    assert "mentor couldn't make it" in card(after).headline
    rows = await owed(runtime, request_id=request.id, kind=Kind.CANT_MAKE_IT.value)
    to_student = next(r for r in rows if r.member_id == after.student.id)
    told = compose(Kind.CANT_MAKE_IT, to_student.payload, after, after.student, clock.now())
    assert "Mia Mentor" in str(told.lines) and "can't make" in str(told.lines)
    assert [b.label for b in told.buttons] == ["Put it back in the feed"]
    ok(await runtime.mentorship.repost(STUDENT, request.id))


async def fits(runtime: Runtime) -> None:
    """Mia fits best (both tags), Max fits too; the platform counts both as mentors."""
    runtime.mentorship.use_directory("slack", Directory())
    for who, skills in ((MENTOR, "python, interviews"), (MENTOR_2, "python")):
        ok(await runtime.mentorship.save_profile(who, {"skills": skills, "capacity": "3", "away_until": ""}))


async def member_id(runtime: Runtime, who: Actor) -> int:
    async with runtime.db.transaction() as session:
        member = await repo.find_member(session, who.platform, who.workspace, who.user_id)
    assert member is not None
    return member.id


async def suggestion_dms(runtime: Runtime, request_id: int) -> list[int]:
    return sorted(n.member_id for n in await owed(runtime, request_id=request_id, kind="match_suggested"))


async def test_the_copy_is_not_offered_to_the_mentor_who_couldnt_make_it(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Mia was suggested, claimed, scheduled and called it off; the student puts it back: the
    copy is suggested and DM'd to Max only, yet Mia may still claim it from the feed."""
    await fits(runtime)
    request = await scheduled(runtime)
    assert [name for _, name in request.suggested] == ["Mia Mentor", "Max Mentor"]
    mia, max_ = request.session.mentor.id, await member_id(runtime, MENTOR_2)
    ok(await runtime.mentorship.cant_make_it(MENTOR, *button(request), {"reason": "Flight delayed"}))
    copy = ok(await runtime.mentorship.repost(STUDENT, request.id))
    assert [name for _, name in copy.suggested] == ["Max Mentor"]
    assert await suggestion_dms(runtime, copy.id) == [max_]
    assert "Mia Mentor" not in str(card(copy).fields)
    claimed = ok(await runtime.mentorship.claim(MENTOR, copy.id))
    assert claimed.claimed_by.id == mia


async def test_the_copy_after_the_student_cant_make_it_is_offered_to_the_mentor_again(
    runtime: Runtime, clock: ManualClock
) -> None:
    await fits(runtime)
    request = await scheduled(runtime)
    mia = request.session.mentor.id
    ok(await runtime.mentorship.cant_make_it(STUDENT, *button(request), {"reason": "I'm ill"}))
    copy = ok(await runtime.mentorship.repost(STUDENT, request.id))
    assert [name for _, name in copy.suggested] == ["Mia Mentor", "Max Mentor"]
    assert mia in await suggestion_dms(runtime, copy.id)


async def test_cant_make_it_refusals_and_the_race_of_both_people(
    runtime: Runtime, clock: ManualClock
) -> None:
    request = await scheduled(runtime)
    m = runtime.mentorship
    for actor in (OTHER_STUDENT, MENTOR_2):
        refused = await m.cant_make_it(actor, *button(request), {})
        assert isinstance(refused, Refused) and refused.code == "not_participant"
    long = await m.cant_make_it(STUDENT, *button(request), {"reason": "x" * 301})
    assert isinstance(long, Invalid) and set(long.errors) == {"reason"}
    results = await asyncio.gather(
        *(m.cant_make_it(STUDENT if n % 2 else MENTOR, *button(request), {}) for n in range(20))
    )
    assert sum(isinstance(r, Ok) for r in results) == 1
    assert len(await owed(runtime, request_id=request.id, kind=Kind.CANT_MAKE_IT.value)) == 2
    async with runtime.db.transaction() as session:
        dms = (
            await session.scalars(select(Notification).where(Notification.kind == "request_cancelled"))
        ).all()
    assert dms == []


async def test_a_started_session_cant_be_called_off_or_moved(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    clock.set(request.session.starts_at + timedelta(minutes=1))
    for result in (
        await runtime.mentorship.cant_make_it(STUDENT, *button(request), {}),
        await runtime.mentorship.ask_reschedule(STUDENT, *button(request), REASON),
    ):
        assert isinstance(result, Refused) and result.code == "started"
    assert (await view_of(runtime, request.id)).status is Status.SCHEDULED


async def test_completion_retires_times_still_on_offer(runtime: Runtime, clock: ManualClock) -> None:
    request, ask_id = await asked(runtime)
    ok(await runtime.mentorship.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES))
    clock.set(request.session.ends_at + timedelta(minutes=11))
    assert await runtime.mentorship.complete_due() == 1
    view = await view_of(runtime, request.id)
    assert view.status is Status.COMPLETED and view.proposal_id is None


async def test_twenty_picks_of_new_times_move_the_session_once(runtime: Runtime) -> None:
    request, ask_id = await asked(runtime)
    m = runtime.mentorship
    proposed = ok(await m.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES))
    results = await asyncio.gather(
        *(m.pick_time(STUDENT, request.id, proposed.proposal_id, n % 2) for n in range(20))
    )
    assert sum(isinstance(r, Ok) for r in results) == 1
    view = await view_of(runtime, request.id)
    assert view.session.schedule_version == 2 and view.session.id == request.session.id
    assert len(await owed(runtime, request_id=request.id, kind="session_rescheduled")) == 2


async def test_two_answers_to_one_ask_at_once_make_one_proposal(runtime: Runtime) -> None:
    request, ask_id = await asked(runtime)
    m = runtime.mentorship
    results = await asyncio.gather(
        *(m.propose_for_ask(MENTOR, request.id, ask_id, NEW_TIMES, once=f"form:{n}") for n in range(10)),
        m.keep_time(MENTOR, request.id, ask_id),
    )
    assert sum(isinstance(r, Ok) for r in results) == 1
    proposals = await owed(runtime, request_id=request.id, kind=Kind.TIMES_PROPOSED.value)
    kept = await owed(runtime, request_id=request.id, kind=Kind.TIME_KEPT.value)
    assert len(proposals) + len(kept) == 1


async def test_the_booked_time_is_not_proposed_as_a_new_one(runtime: Runtime) -> None:
    """Picked, it would tell both people of a "new time" that is the old one."""
    request, ask_id = await asked(runtime)
    same = await runtime.mentorship.propose_for_ask(
        MENTOR, request.id, ask_id, {"time_1": "2030-01-08 15:00", "time_2": "2030-01-09 10:00"}
    )
    assert same == Invalid(
        {"time_1": "That is the session's current time; to keep it, use Keep the time instead."}
    )
    assert (await view_of(runtime, request.id)).proposal_id is None


async def test_the_forms_suggestions_for_new_times_leave_out_the_booked_one(runtime: Runtime) -> None:
    """The booked time was most likely the first suggestion from the mentor's availability; the
    form for new times (filled in with the first three suggestions) must not offer it again,
    or submitting it as it came is refused on its first field."""
    m = runtime.mentorship
    ok(await m.set_availability(MENTOR, {"windows": "Tue 15:00-17:00", "timezone": "America/New_York"}))
    request, ask_id = await asked(runtime)  # booked at Tue 15:00 New York: the first slot
    slots = ok(await m.suggest_slots(MENTOR, request.id))
    assert request.session is not None and request.session.starts_at not in {s.starts_at for s in slots}
    prefilled = {f"time_{n + 1}": str(int(s.starts_at.timestamp())) for n, s in enumerate(slots[:3])}
    assert len(prefilled) == 3  # 15:30, 16:00, 16:30
    moved = ok(await m.propose_for_ask(MENTOR, request.id, ask_id, prefilled))
    assert moved.times_proposed


async def test_a_students_change_racing_the_mentors_never_deadlocks(runtime: Runtime) -> None:
    """Both people act on one booked session at the same moment: the student calls it off, asks
    to reschedule or cancels the request while the mentor moves it, or the student picks a new
    time while the mentor can't make it. One takes effect and the other is answered; before, on
    PostgreSQL the two waited for each other (the mentor's member row, the request row) until
    the server killed one with a deadlock error, shown to that person as a failure."""
    m = runtime.mentorship
    for n, race in enumerate(("cant_make_it", "ask", "cancel", "pick") * 2):
        day = f"2030-01-{8 + n % 3:02d}"
        request = await scheduled(runtime, f"{day} {10 + n}:00")
        if race == "pick":
            ok(await m.ask_reschedule(STUDENT, *button(request), REASON))
            ask = (await owed(runtime, request_id=request.id, kind=Kind.RESCHEDULE_ASKED.value))[-1]
            offer = ok(
                await m.propose_for_ask(
                    MENTOR, request.id, ask.payload["ask_id"], {"time_1": f"{day} {10 + n}:30"}
                )
            )
            calls = [
                m.pick_time(STUDENT, request.id, offer.proposal_id, 0),
                m.cant_make_it(MENTOR, *button(request), {"reason": ""}),
            ]
        else:
            if race == "cant_make_it":
                student = m.cant_make_it(STUDENT, *button(request), {"reason": ""})
            elif race == "ask":
                student = m.ask_reschedule(STUDENT, *button(request), REASON)
            else:
                student = m.cancel(STUDENT, request.id)
            calls = [student, m.schedule(MENTOR, request.id, {"starts_at": f"{day} {10 + n}:30"})]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], (race, results)
        if (await view_of(runtime, request.id)).status is not Status.CANCELLED:
            ok(await m.cancel(STUDENT, request.id))  # room under the request cap for the next one


async def test_new_times_that_all_passed_leave_the_booked_time_and_the_mentor_is_told_so(
    runtime: Runtime, clock: ManualClock
) -> None:
    """New times for a booked session lapse unpicked: the mentor is told they are withdrawn and
    that the booked time still stands (not left to think the session is off)."""
    request, ask_id = await asked(runtime)  # booked Tue 08 Jan 15:00 New York
    m = runtime.mentorship
    ok(await m.propose_for_ask(MENTOR, request.id, ask_id, {"time_1": "2030-01-07 12:00"}))
    clock.set(datetime(2030, 1, 7, 17, 1, tzinfo=UTC))
    assert await m.withdraw_past_proposals() == 1
    view = await view_of(runtime, request.id)
    assert view.status is Status.SCHEDULED and view.session.starts_at == request.session.starts_at
    [row] = await owed(runtime, request_id=request.id, kind=Kind.PROPOSAL_WITHDRAWN.value)
    told = compose(Kind.PROPOSAL_WITHDRAWN, row.payload, view, view.claimed_by, clock.now())
    assert "The booked time still stands." in str(told.lines)
