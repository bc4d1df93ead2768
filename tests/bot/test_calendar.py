"""Calendar files as calendar apps read them: parsed back with icalendar after each change of a
real session (schedule, reschedule, cancel), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar

from bot.clock import ManualClock
from bot.domain import RequestView
from bot.notifications import Kind, compose
from bot.runtime import Runtime
from storage import repository as repo
from tests.bot.test_workflow import ok, owed, scheduled
from tests.conftest import MENTOR, MENTOR_2, STUDENT, request_form


async def _ics(runtime: Runtime, request_id: int, kind: Kind, clock: ManualClock) -> Calendar:
    """The .ics of the newest owed `kind` DM to the student, composed as delivery would."""
    async with runtime.db.transaction() as session:
        view = await repo.request_view(session, request_id)
    assert view is not None
    row = [n for n in await owed(runtime, request_id=request_id, kind=kind.value)][-1]
    message = compose(kind, row.payload, view, view.student, clock.now())
    assert message.attachment is not None and message.attachment.mime == "text/calendar"
    return Calendar.from_ical(message.attachment.content)


def _event(calendar: Calendar) -> tuple[str, int, datetime, datetime, str]:
    [event] = calendar.walk("VEVENT")
    return (
        str(event["UID"]),
        int(event["SEQUENCE"]),
        event.decoded("DTSTART"),
        event.decoded("DTEND"),
        str(event["STATUS"]),
    )


async def test_updates_keep_the_uid_raise_the_sequence_and_cancel_removes(
    runtime: Runtime, clock: ManualClock
) -> None:
    request: RequestView = await scheduled(runtime, "2030-01-08 15:00")  # the mentor's zone: New York
    first = await _ics(runtime, request.id, Kind.SESSION_SCHEDULED, clock)
    assert str(first["METHOD"]) == "REQUEST"
    uid, seq1, start, end, status = _event(first)
    assert (start, end) == (datetime(2030, 1, 8, 20, 0, tzinfo=UTC), datetime(2030, 1, 8, 20, 30, tzinfo=UTC))
    assert status == "CONFIRMED"

    ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 10:00"}))
    moved = await _ics(runtime, request.id, Kind.SESSION_RESCHEDULED, clock)
    assert str(moved["METHOD"]) == "REQUEST"
    uid2, seq2, start2, end2, _ = _event(moved)
    assert uid2 == uid and seq2 > seq1
    assert (start2, end2) == (
        datetime(2030, 1, 9, 15, 0, tzinfo=UTC),
        datetime(2030, 1, 9, 15, 30, tzinfo=UTC),
    )

    ok(await runtime.mentorship.cancel_session(MENTOR, request.id))
    cancelled = await _ics(runtime, request.id, Kind.SESSION_CANCELLED, clock)
    assert str(cancelled["METHOD"]) == "CANCEL"
    uid3, seq3, start3, _, status3 = _event(cancelled)
    assert uid3 == uid and seq3 > seq2 and start3 == start2 and status3 == "CANCELLED"


async def test_student_cancel_sends_the_mentor_a_cancel_file(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    ok(await runtime.mentorship.cancel(STUDENT, request.id))
    async with runtime.db.transaction() as session:
        view = await repo.request_view(session, request.id)
    assert view is not None and view.claimed_by is not None
    [row] = await owed(runtime, request_id=request.id, kind=Kind.REQUEST_CANCELLED.value)
    message = compose(Kind.REQUEST_CANCELLED, row.payload, view, view.claimed_by, clock.now())
    assert message.attachment is not None
    calendar = Calendar.from_ical(message.attachment.content)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert _event(calendar)[4] == "CANCELLED"


async def test_release_before_any_time_sends_no_calendar_file(runtime: Runtime, clock: ManualClock) -> None:
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form()))
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    ok(await runtime.mentorship.release(MENTOR, request.id))
    async with runtime.db.transaction() as session:
        view = await repo.request_view(session, request.id)
    assert view is not None
    [row] = await owed(runtime, request_id=request.id, kind=Kind.CLAIM_RELEASED.value)
    assert compose(Kind.CLAIM_RELEASED, row.payload, view, view.student, clock.now()).attachment is None


async def test_the_students_removal_file_survives_a_new_booking_before_delivery(
    runtime: Runtime, clock: ManualClock
) -> None:
    """The mentor cancels the session (or releases it and another mentor books it) and a new time
    is booked before the student's DM goes out: that DM still removes the old event, so the
    student's calendar does not keep a session that is not happening."""
    m = runtime.mentorship
    for call_off, when in (("cancel_session", "2030-01-08 15:00"), ("release", "2030-01-10 15:00")):
        request = await scheduled(runtime, when)
        assert request.session is not None
        old_uid = f"session-{request.session.id}-request-{request.id}@mini-mentorship"
        if call_off == "cancel_session":
            ok(await m.cancel_session(MENTOR, request.id))
            ok(await m.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 15:00"}))
            kind = Kind.SESSION_CANCELLED
        else:
            ok(await m.release(MENTOR, request.id))
            ok(await m.claim(MENTOR_2, request.id))
            ok(await m.schedule(MENTOR_2, request.id, {"starts_at": "2030-01-10 09:00"}))
            kind = Kind.CLAIM_RELEASED
        async with runtime.db.transaction() as session:
            view = await repo.request_view(session, request.id)
        assert view is not None and view.session is not None and view.session.id != request.session.id
        [row] = await owed(runtime, request_id=request.id, kind=kind.value)
        message = compose(kind, row.payload, view, view.student, clock.now())
        assert message.attachment is not None, call_off
        calendar = Calendar.from_ical(message.attachment.content)
        assert str(calendar["METHOD"]) == "CANCEL"
        uid, _, start, _, status = _event(calendar)
        assert (uid, start, status) == (old_uid, request.session.starts_at, "CANCELLED"), call_off
