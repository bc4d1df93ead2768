"""Every use case, on SQLite and PostgreSQL, asserting results and what the database holds."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Actor, Invalid, Ok, Refused, RequestView, SessionStatus, Status
from bot.runtime import Runtime
from storage import repository as repo
from storage.db import Database
from storage.models import MentorSession, Notification, Request
from tests.conftest import MENTOR, MENTOR_2, OTHER_STUDENT, STUDENT, request_form


def ok(result: Any) -> Any:
    assert isinstance(result, Ok), result
    return result.value


async def owed(runtime: Runtime, **filters: Any) -> list[Notification]:
    """Owed cards and DMs; the shared conversation's rows only when asked for by `audience`
    (tests/jobs/test_conversations.py and the platforms' own are about those)."""
    async with runtime.db.transaction() as session:
        query = select(Notification).order_by(Notification.id)
        if "audience" not in filters:
            query = query.where(Notification.audience != "shared")
        for name, value in filters.items():
            query = query.where(getattr(Notification, name) == value)
        return list((await session.scalars(query)).all())


async def create(runtime: Runtime, **form: str) -> RequestView:
    return ok(await runtime.mentorship.create_request(STUDENT, request_form(**form)))  # type: ignore[no-any-return]


async def view_of(runtime: Runtime, request_id: int) -> RequestView:
    async with runtime.db.transaction() as session:
        view = await repo.request_view(session, request_id)
    assert view is not None
    return view


async def scheduled(runtime: Runtime, when: str = "2030-01-08 15:00") -> RequestView:
    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    return ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": when}))  # type: ignore[no-any-return]


async def test_create_request_stores_it_and_owes_card_and_dm(runtime: Runtime) -> None:
    request = await create(runtime)
    assert request.status is Status.OPEN
    assert request.tags == ("python", "interviews")
    # Seven days, unless the student's dates end sooner: then at the end of their last day.
    last_day_over = datetime.combine(
        request.available_until + timedelta(days=1), time(0), ZoneInfo(STUDENT.timezone or "UTC")
    )
    assert request.expires_at == min(request.created_at + timedelta(days=7), last_day_over)
    notes = await owed(runtime, request_id=request.id)
    assert [(n.kind, n.audience, n.status) for n in notes] == [
        ("card", "feed", "pending"),
        ("request_posted", "dm", "pending"),
    ]


async def test_open_request_cap_per_student(runtime: Runtime) -> None:
    await create(runtime)
    await create(runtime)
    third = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(third, Refused) and third.code == "too_many_open"
    # Cancelling one frees a place.
    mine = (await runtime.mentorship.dashboard(STUDENT)).mine
    ok(await runtime.mentorship.cancel(STUDENT, mine[0].id))
    ok(await runtime.mentorship.create_request(STUDENT, request_form()))


async def test_invalid_form_changes_nothing(runtime: Runtime) -> None:
    result = await runtime.mentorship.create_request(STUDENT, request_form(title="hey"))
    assert isinstance(result, Invalid) and set(result.errors) == {"title"}
    async with runtime.db.transaction() as session:
        assert (await session.scalars(select(Request))).all() == []


async def test_claim_then_second_mentor_told_who_has_it(runtime: Runtime) -> None:
    request = await create(runtime)
    claimed = ok(await runtime.mentorship.claim(MENTOR, request.id))
    assert claimed.status is Status.CLAIMED and claimed.claimed_by.external_id == MENTOR.user_id
    lost = await runtime.mentorship.claim(MENTOR_2, request.id)
    assert isinstance(lost, Refused) and lost.code == "already_claimed"
    assert "Mia Mentor" in lost.message
    again = await runtime.mentorship.claim(MENTOR, request.id)
    assert isinstance(again, Refused) and again.code == "already_yours"
    kinds = [n.kind for n in await owed(runtime, request_id=request.id, status="pending")]
    assert kinds == ["request_posted", "card", "request_claimed"]  # the first card was superseded


async def test_release_puts_request_back_in_the_feed(runtime: Runtime) -> None:
    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    released = ok(await runtime.mentorship.release(MENTOR, request.id))
    assert released.status is Status.OPEN and released.claimed_by is None
    ok(await runtime.mentorship.claim(MENTOR_2, request.id))
    assert [n.kind for n in await owed(runtime, kind="claim_released")] == ["claim_released"]


async def test_schedule_creates_session_reminders_and_dms(runtime: Runtime) -> None:
    request = await scheduled(runtime)
    assert request.status is Status.SCHEDULED and request.session is not None
    # 15:00 in the mentor's zone (America/New_York, UTC-5 in January) is 20:00 UTC.
    assert request.session.starts_at.hour == 20
    assert request.session.ends_at - request.session.starts_at == timedelta(minutes=30)
    assert request.session.meeting_url.startswith("https://meet.jit.si/mini-mentorship-")
    dms = await owed(runtime, kind="session_scheduled")
    assert len(dms) == 2  # student and mentor
    reminders = await owed(runtime, kind="reminder", status="pending")
    assert sorted((r.due_at, r.member_id) for r in reminders) == sorted(
        (request.session.starts_at - offset, member)
        for offset in (timedelta(hours=24), timedelta(minutes=15))
        for member in (request.student.id, request.session.mentor.id)
    )


async def test_schedule_validation(runtime: Runtime, clock: ManualClock) -> None:
    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    m = runtime.mentorship
    outside = await m.schedule(MENTOR, request.id, {"starts_at": "2030-01-20 10:00"})
    assert isinstance(outside, Invalid) and "student's dates" in outside.errors["starts_at"]
    past = await m.schedule(MENTOR, request.id, {"starts_at": "2030-01-07 03:00"})
    assert isinstance(past, Invalid) and "passed" in past.errors["starts_at"]
    bad_url = await m.schedule(
        MENTOR, request.id, {"starts_at": "2030-01-08 10:00", "meeting_url": "javascript:alert(1)"}
    )
    assert isinstance(bad_url, Invalid) and set(bad_url.errors) == {"meeting_url"}
    nothing = await m.schedule(MENTOR, request.id, {})
    assert isinstance(nothing, Invalid) and "starts_at" in nothing.errors
    own = ok(
        await m.schedule(
            MENTOR, request.id, {"starts_at": "2030-01-08 10:00", "meeting_url": "https://zoom.us/j/1"}
        )
    )
    assert own.session.meeting_url == "https://zoom.us/j/1"


async def test_schedule_refuses_overlap_with_mentors_other_session(runtime: Runtime) -> None:
    first = await scheduled(runtime, "2030-01-08 15:00")
    other = ok(await runtime.mentorship.create_request(OTHER_STUDENT, request_form()))
    ok(await runtime.mentorship.claim(MENTOR, other.id))
    clash = await runtime.mentorship.schedule(MENTOR, other.id, {"starts_at": "2030-01-08 15:15"})
    assert isinstance(clash, Invalid) and "overlaps" in clash.errors["starts_at"]
    ok(await runtime.mentorship.schedule(MENTOR, other.id, {"starts_at": "2030-01-08 15:30"}))
    assert first.session is not None


async def test_reschedule_moves_session_and_resets_reminders(runtime: Runtime) -> None:
    request = await scheduled(runtime)
    assert request.session is not None
    moved = ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 12:00"}))
    assert moved.status is Status.SCHEDULED
    assert moved.session.id == request.session.id and moved.session.schedule_version == 2
    assert moved.session.meeting_url == request.session.meeting_url  # the link stays
    old = await owed(runtime, kind="reminder", status="superseded")
    new = await owed(runtime, kind="reminder", status="pending")
    assert len(old) == 4 and len(new) == 4
    assert all(n.payload["schedule_version"] == 2 for n in new)
    assert len(await owed(runtime, kind="session_rescheduled")) == 2


async def test_mentor_cancels_session_keeps_claim(runtime: Runtime) -> None:
    request = await scheduled(runtime)
    back = ok(await runtime.mentorship.cancel_session(MENTOR, request.id))
    assert back.status is Status.CLAIMED and back.session.status is SessionStatus.CANCELLED
    assert await owed(runtime, kind="reminder", status="pending") == []
    assert [n.kind for n in await owed(runtime, kind="session_cancelled")] == ["session_cancelled"]
    again = ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 12:00"}))
    assert again.session.id != back.session.id


async def test_student_cancel_from_each_state_tells_the_mentor(runtime: Runtime) -> None:
    open_ = await create(runtime)
    ok(await runtime.mentorship.cancel(STUDENT, open_.id))
    request = await scheduled(runtime)
    cancelled = ok(await runtime.mentorship.cancel(STUDENT, request.id))
    assert cancelled.status is Status.CANCELLED and cancelled.session.status is SessionStatus.CANCELLED
    assert await owed(runtime, kind="reminder", status="pending") == []
    assert len(await owed(runtime, kind="request_cancelled")) == 1  # only the claimed one had a mentor
    twice = await runtime.mentorship.cancel(STUDENT, request.id)
    assert isinstance(twice, Refused) and twice.code == "wrong_state"


async def test_complete_and_rate_once(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    early = await runtime.mentorship.complete(MENTOR, request.id)
    assert isinstance(early, Refused) and early.code == "too_early"
    clock.set(request.session.starts_at + timedelta(minutes=5))
    done = ok(await runtime.mentorship.complete(MENTOR, request.id))
    assert done.status is Status.COMPLETED and done.session.status is SessionStatus.COMPLETED
    assert len(await owed(runtime, kind="rating_prompt")) == 1
    rated = ok(await runtime.mentorship.rate(STUDENT, request.id, 4))
    assert rated.session.rating == 4 and rated.session.review is None
    reviewed = ok(await runtime.mentorship.rate(STUDENT, request.id, 4, "Very helpful, thanks!"))
    assert reviewed.session.review == "Very helpful, thanks!"
    again = await runtime.mentorship.rate(STUDENT, request.id, 1, "changed my mind")
    assert isinstance(again, Refused) and again.code == "already_rated"
    assert (await runtime.mentorship.rate(STUDENT, request.id, 9)) == Invalid(
        {"rating": "Please choose 1 to 5 stars."}
    )
    assert len(await owed(runtime, kind="rated")) == 2  # stars, then the review


async def test_rate_refused_before_session(runtime: Runtime) -> None:
    request = await scheduled(runtime)
    early = await runtime.mentorship.rate(STUDENT, request.id, 5)
    assert isinstance(early, Refused) and early.code == "not_rateable"


async def test_no_show(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    clock.set(request.session.starts_at + timedelta(minutes=20))
    done = ok(await runtime.mentorship.no_show(MENTOR, request.id))
    assert done.status is Status.COMPLETED and done.session.status is SessionStatus.NO_SHOW
    assert len(await owed(runtime, kind="no_show_reported")) == 1
    assert await owed(runtime, kind="rating_prompt") == []
    cannot_rate = await runtime.mentorship.rate(STUDENT, request.id, 5)
    assert isinstance(cannot_rate, Refused)
    # Nor does the student's dashboard offer stars for it.
    from bot.messages import Action
    from bot.notifications import dashboard_item

    [row] = (await runtime.mentorship.dashboard(STUDENT)).mine
    assert Action.RATE not in {b.action for b in dashboard_item(row, viewer_id=STUDENT.user_id).buttons}


async def test_expiry_sweep_at_the_boundary(runtime: Runtime, clock: ManualClock) -> None:
    request = await create(runtime)
    clock.set(request.expires_at - timedelta(seconds=1))
    assert await runtime.mentorship.expire_due() == 0
    clock.set(request.expires_at)
    assert await runtime.mentorship.expire_due() == 1
    assert await runtime.mentorship.expire_due() == 0
    expired = ok(await runtime.mentorship.get_request(STUDENT, request.id))
    assert expired.status is Status.EXPIRED
    assert len(await owed(runtime, kind="request_expired")) == 1


async def test_repost_expired_request_moves_dates(runtime: Runtime, clock: ManualClock) -> None:
    request = await create(runtime)
    clock.set(request.expires_at)
    await runtime.mentorship.expire_due()
    again = ok(await runtime.mentorship.repost(STUDENT, request.id))
    assert again.id != request.id and again.status is Status.OPEN
    assert again.title == request.title
    # The dates start on the student's today (in Berlin, where the old request's last day just ended).
    assert again.available_from == clock.now().astimezone(ZoneInfo("Europe/Berlin")).date()
    assert again.available_until >= again.available_from + timedelta(days=4)
    not_expired = await runtime.mentorship.repost(STUDENT, again.id)
    assert isinstance(not_expired, Refused)


async def _open_copies(runtime: Runtime, title: str) -> list[Request]:
    async with runtime.db.transaction() as session:
        rows = await session.scalars(select(Request).where(Request.title == title, Request.status == "open"))
        return list(rows.all())


async def test_repost_once_then_pointed_at_the_copy(runtime: Runtime, clock: ManualClock) -> None:
    request = await create(runtime)
    clock.set(request.expires_at)
    await runtime.mentorship.expire_due()
    again = ok(await runtime.mentorship.repost(STUDENT, request.id))
    before = len(await owed(runtime))
    second = await runtime.mentorship.repost(STUDENT, request.id)
    assert isinstance(second, Refused) and second.code == "already_reposted"
    pointer = f"Request #{request.id} was already posted again as request #{again.id}"
    assert second.message == f"{pointer}, so nothing new was posted."
    assert [r.id for r in await _open_copies(runtime, request.title)] == [again.id]
    assert len(await owed(runtime)) == before  # no card, no DM owed for the refused click
    async with runtime.db.transaction() as session:
        old = await session.get(Request, request.id)
        assert old is not None and old.reposted_as_id == again.id and old.reposted_at == clock.now()


async def test_concurrent_double_click_on_post_again_posts_one_copy(
    runtime: Runtime, clock: ManualClock
) -> None:
    request = await create(runtime)
    ok(await runtime.mentorship.cancel(STUDENT, request.id))
    results = await asyncio.gather(*(runtime.mentorship.repost(STUDENT, request.id) for _ in range(4)))
    won = [r for r in results if isinstance(r, Ok)]
    lost = [r for r in results if isinstance(r, Refused)]
    assert len(won) == 1 and len(lost) == 3
    copy = won[0].value.id
    assert all(r.code == "already_reposted" and f"as request #{copy}" in r.message for r in lost)
    assert [r.id for r in await _open_copies(runtime, request.title)] == [copy]
    posted = await owed(runtime, kind="request_posted")
    assert [n.request_id for n in posted] == [request.id, copy]


async def test_repost_guard_holds_when_another_replica_wins_in_between(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the insert can be passed by two replicas at once; the guarded update
    after it lets one through. Here another replica's repost commits between the two."""
    if not runtime.db.is_postgres:
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE), so nothing can commit in between")
    request = await create(runtime, title="Portfolio review please")
    ok(await runtime.mentorship.cancel(STUDENT, request.id))
    elsewhere = await create(runtime, title="The copy another replica posted")
    real_insert = runtime.mentorship._insert_request
    other = Database(runtime.db.url)

    async def insert_while_another_replica_wins(*args: Any) -> Any:
        result = await real_insert(*args)
        async with other.transaction() as session:
            await session.execute(
                update(Request).where(Request.id == request.id).values(reposted_as_id=elsewhere.id)
            )
        return result

    monkeypatch.setattr(runtime.mentorship, "_insert_request", insert_while_another_replica_wins)
    try:
        lost = await runtime.mentorship.repost(STUDENT, request.id)
    finally:
        await other.dispose()
    assert isinstance(lost, Refused) and lost.code == "already_reposted"
    assert f"as request #{elsewhere.id}" in lost.message
    # Our copy was rolled back with its card and DM.
    assert [r.id for r in await _open_copies(runtime, "Portfolio review please")] == []
    assert [n.request_id for n in await owed(runtime, kind="request_posted")] == [request.id, elsewhere.id]


async def test_escalation_once_and_sooner_for_high_urgency(runtime: Runtime, clock: ManualClock) -> None:
    """With no mentor profiles nobody matches, so both are escalated at once; each target's
    miss (4 h high, 24 h normal) is then counted once. The full ladder: tests/bot/test_escalation.py."""
    normal = await create(runtime)
    urgent = ok(await runtime.mentorship.create_request(OTHER_STUDENT, request_form(urgency="high")))
    assert await runtime.mentorship.nudge_due() == 2
    assert [n.request_id for n in await owed(runtime, kind="escalation")] == [normal.id, urgent.id]
    clock.advance(hours=4)
    assert await runtime.mentorship.nudge_due() == 1  # the high-urgency target passed
    clock.advance(hours=20)
    assert await runtime.mentorship.nudge_due() == 1  # the normal one
    clock.advance(hours=24)
    assert await runtime.mentorship.nudge_due() == 0
    assert len(await owed(runtime, kind="escalation")) == 2


async def test_claimed_request_is_not_escalated(runtime: Runtime, clock: ManualClock) -> None:
    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    clock.advance(hours=48)
    assert await runtime.mentorship.nudge_due() == 0


async def test_completion_sweep_after_end_plus_ten_minutes(runtime: Runtime, clock: ManualClock) -> None:
    request = await scheduled(runtime)
    clock.set(request.session.ends_at + timedelta(minutes=9))
    assert await runtime.mentorship.complete_due() == 0
    clock.set(request.session.ends_at + timedelta(minutes=10))
    assert await runtime.mentorship.complete_due() == 1
    assert await runtime.mentorship.complete_due() == 0
    assert len(await owed(runtime, kind="rating_prompt")) == 1
    async with runtime.db.transaction() as session:
        mentor_session = await session.get(MentorSession, request.session.id)
        assert mentor_session is not None and mentor_session.status == "completed"


async def test_availability_and_slot_suggestions(runtime: Runtime) -> None:
    windows = ok(
        await runtime.mentorship.set_availability(
            MENTOR, {"windows": "Tue 09:00-11:00\nWed 18:00-19:00", "timezone": "America/New_York"}
        )
    )
    assert [(w.weekday, w.start, w.end) for w in windows] == [(1, "09:00", "11:00"), (2, "18:00", "19:00")]
    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    slots = ok(await runtime.mentorship.suggest_slots(MENTOR, request.id))
    starts = [s.starts_at.astimezone().strftime("%a %H:%M") for s in slots]
    # Tue 09:00-11:00 New York = 14:00-16:00 UTC, 30-min steps; Wed 18:00-19:00 = 23:00-00:00 UTC.
    assert [s.starts_at.isoformat() for s in slots] == [
        "2030-01-08T14:00:00+00:00",
        "2030-01-08T14:30:00+00:00",
        "2030-01-08T15:00:00+00:00",
        "2030-01-08T15:30:00+00:00",
        "2030-01-09T23:00:00+00:00",
        "2030-01-09T23:30:00+00:00",
    ], starts
    # A session already booked removes the slots it overlaps.
    ok(await runtime.mentorship.schedule(MENTOR, request.id, {"slot": slots[1].starts_at.isoformat()}))
    other = ok(await runtime.mentorship.create_request(OTHER_STUDENT, request_form()))
    ok(await runtime.mentorship.claim(MENTOR, other.id))
    free = ok(await runtime.mentorship.suggest_slots(MENTOR, other.id))
    assert slots[1].starts_at not in [s.starts_at for s in free]
    assert len(free) == len(slots) - 1


async def test_availability_errors_and_clearing(runtime: Runtime) -> None:
    bad = await runtime.mentorship.set_availability(
        MENTOR, {"windows": "Funday 9-5", "timezone": "Mars/Base"}
    )
    assert isinstance(bad, Invalid) and set(bad.errors) == {"windows", "timezone"}
    ok(await runtime.mentorship.set_availability(MENTOR, {"windows": "", "timezone": "UTC"}))
    windows, tz = await runtime.mentorship.get_availability(MENTOR)
    assert windows == [] and tz == "America/New_York"  # the actor's platform zone wins


async def test_dashboard_sections(runtime: Runtime) -> None:
    mine = await create(runtime)
    theirs = ok(await runtime.mentorship.create_request(OTHER_STUDENT, request_form()))
    ok(await runtime.mentorship.claim(MENTOR, theirs.id))
    student_view = await runtime.mentorship.dashboard(STUDENT)
    assert [r.id for r in student_view.mine] == [mine.id]
    assert student_view.open == [] and student_view.claimed == []  # not a mentor
    mentor_view = await runtime.mentorship.dashboard(MENTOR)
    assert [r.id for r in mentor_view.claimed] == [theirs.id]
    assert [r.id for r in mentor_view.open] == [mine.id]


async def test_set_timezone(runtime: Runtime) -> None:
    assert isinstance(await runtime.mentorship.set_timezone(STUDENT, "Nowhere/Land"), Invalid)
    ok(await runtime.mentorship.set_timezone(STUDENT, "Asia/Tokyo"))


# What users hit at the edges ---------------------------------------------------------------


async def test_a_request_expires_when_the_students_dates_are_over(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Dates of two days: the request is not left claimable for seven, since no session fits."""
    request = await create(runtime, available_from="2030-01-07", available_until="2030-01-08")
    end_of_dates = datetime(2030, 1, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert request.expires_at == end_of_dates
    clock.set(end_of_dates)
    assert await runtime.mentorship.expire_due() == 1
    late = await runtime.mentorship.claim(MENTOR, request.id)
    assert isinstance(late, Refused) and late.code == "wrong_state"


async def test_a_claim_after_the_dates_is_refused_even_before_the_sweep(
    runtime: Runtime, clock: ManualClock, database: Database
) -> None:
    """A request posted before expiry was capped (its expiry still 7 days out) is not claimable
    once the student's last day is over; nothing changes and the mentor is told why."""
    request = await create(runtime, available_from="2030-01-07", available_until="2030-01-07")
    async with database.transaction() as session:
        await session.execute(
            update(Request)
            .where(Request.id == request.id)
            .values(expires_at=request.created_at + timedelta(days=7))
        )
    clock.set(datetime(2030, 1, 8, 1, tzinfo=ZoneInfo("Europe/Berlin")))
    refused = await runtime.mentorship.claim(MENTOR, request.id)
    assert isinstance(refused, Refused) and refused.code == "dates_passed"
    assert "dates" in refused.message
    assert ok(await runtime.mentorship.get_request(STUDENT, request.id)).status is Status.OPEN


async def test_release_after_the_dates_expires_the_request_and_says_so(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Released once the student's dates are over: not "back in the feed" (nobody could fit a
    session), but expired at once, the student told so once, with Post again."""
    from bot.notifications import Kind, compose

    request = await create(runtime, available_from="2030-01-07", available_until="2030-01-08")
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    clock.set(datetime(2030, 1, 10, 9, tzinfo=ZoneInfo("UTC")))
    released = ok(await runtime.mentorship.release(MENTOR, request.id))
    assert released.status is Status.EXPIRED
    assert await runtime.mentorship.expire_due() == 0  # already expired: no second DM
    [row] = await owed(runtime, kind=Kind.CLAIM_RELEASED.value)
    told = compose(Kind.CLAIM_RELEASED, row.payload, released, released.student, clock.now())
    assert told.headline == "Your request expired"
    assert [b.label for b in told.buttons] == ["Post again"]
    assert await owed(runtime, kind=Kind.REQUEST_EXPIRED.value) == []


async def test_a_request_past_its_expiry_days_but_inside_its_dates_stays_claimable(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Until the sweep expires it, a late claim on a request whose dates are ahead is welcome."""
    request = await create(runtime, available_from="2030-01-07", available_until="2030-01-30")
    clock.set(request.expires_at + timedelta(minutes=1))
    assert ok(await runtime.mentorship.claim(MENTOR, request.id)).status is Status.CLAIMED


async def test_the_request_cap_is_known_before_the_form_opens(runtime: Runtime) -> None:
    assert await runtime.mentorship.request_refusal(STUDENT) is None  # never posted: no member yet
    await create(runtime)
    assert await runtime.mentorship.request_refusal(STUDENT) is None
    await create(runtime, title="A second request for help")
    refused = await runtime.mentorship.request_refusal(STUDENT)
    assert refused is not None and refused.code == "too_many_open"
    assert "You already have 2 active requests" in refused.message


async def test_the_review_forms_stars_are_kept_after_a_star_click(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Three stars from the DM, then the review form with five: five is what the student chose last."""
    request = await scheduled(runtime)
    clock.set(request.session.starts_at + timedelta(minutes=5))
    ok(await runtime.mentorship.complete(MENTOR, request.id))
    ok(await runtime.mentorship.rate(STUDENT, request.id, 3))
    reviewed = ok(await runtime.mentorship.rate(STUDENT, request.id, 5, "Better than I first thought"))
    assert (reviewed.session.rating, reviewed.session.review) == (5, "Better than I first thought")
    told = await owed(runtime, kind="rated")
    assert [n.payload["rating"] for n in told] == [3, 5]


async def test_a_no_show_can_be_reported_after_the_sweep_marked_the_session_done(
    runtime: Runtime, clock: ManualClock
) -> None:
    """The sweep completes a session 10 minutes after its end and asks for a rating; the mentor
    who tells us the next day that nobody came can still say so, until the student rates it."""
    m = runtime.mentorship
    request = await scheduled(runtime)
    clock.set(request.session.ends_at + timedelta(hours=20))
    assert await m.complete_due() == 1
    done = await view_of(runtime, request.id)
    assert done.session.status is SessionStatus.COMPLETED and done.late_no_show_open(clock.now())
    stranger = await m.no_show(MENTOR_2, request.id)
    assert isinstance(stranger, Refused) and stranger.code == "not_claimer"
    reported = ok(await m.no_show(MENTOR, request.id))
    assert reported.status is Status.COMPLETED and reported.session.status is SessionStatus.NO_SHOW
    [told] = await owed(runtime, kind="no_show_reported")
    assert told.member_id == request.student.id
    again = await m.no_show(MENTOR, request.id)
    assert isinstance(again, Refused) and again.message == "This session is already reported as a no-show."
    stars = await m.rate(STUDENT, request.id, 5)
    assert isinstance(stars, Refused) and stars.code == "not_rateable"
    assert not reported.late_no_show_open(clock.now())
    assert len(await owed(runtime, kind="no_show_reported")) == 1


async def test_a_rated_or_long_past_session_cannot_become_a_no_show(
    runtime: Runtime, clock: ManualClock
) -> None:
    m = runtime.mentorship
    rated = await scheduled(runtime)
    old = await scheduled(runtime, "2030-01-09 15:00")
    clock.set(rated.session.ends_at + timedelta(minutes=30))
    assert await m.complete_due() == 1
    ok(await m.rate(STUDENT, rated.id, 4))
    refused = await m.no_show(MENTOR, rated.id)
    assert isinstance(refused, Refused) and refused.code == "already_rated"
    assert (await view_of(runtime, rated.id)).session.status is SessionStatus.COMPLETED

    clock.set(old.session.ends_at + timedelta(minutes=30))
    assert await m.complete_due() == 1
    clock.set(old.session.ends_at + timedelta(days=8))
    late = await m.no_show(MENTOR, old.id)
    assert isinstance(late, Refused) and late.code == "too_late"
    assert (await view_of(runtime, old.id)).session.status is SessionStatus.COMPLETED
    assert await owed(runtime, kind="no_show_reported") == []


async def test_a_rating_and_a_late_no_show_at_once_one_wins(runtime: Runtime, clock: ManualClock) -> None:
    m = runtime.mentorship
    request = await scheduled(runtime)
    clock.set(request.session.ends_at + timedelta(minutes=30))
    assert await m.complete_due() == 1
    results = await asyncio.gather(
        m.rate(STUDENT, request.id, 5), m.no_show(MENTOR, request.id), m.rate(STUDENT, request.id, 2)
    )
    assert sum(isinstance(r, Ok) for r in results) == 1
    after = await view_of(runtime, request.id)
    rated = after.session.rating is not None
    assert rated != (after.session.status is SessionStatus.NO_SHOW)  # one or the other, never both
    assert len(await owed(runtime, kind="no_show_reported")) == (0 if rated else 1)


async def test_the_claimers_stale_buttons_say_the_state_not_their_own_name(
    runtime: Runtime, clock: ManualClock
) -> None:
    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    done = await runtime.mentorship.complete(MENTOR, request.id)
    assert isinstance(done, Refused)
    assert done.message == "This request is claimed but not scheduled yet, so it can't be marked done."
    absent = await runtime.mentorship.no_show(MENTOR, request.id)
    assert isinstance(absent, Refused) and absent.message.endswith("so it can't be reported as a no-show.")
    ok(await runtime.mentorship.release(MENTOR, request.id))
    again = await runtime.mentorship.release(MENTOR, request.id)
    assert isinstance(again, Refused)
    assert again.message == "This request is open now, so there's nothing to do here."
    cancel_session = await runtime.mentorship.cancel_session(MENTOR, request.id)
    assert isinstance(cancel_session, Refused)
    assert cancel_session.message == "This request is open now, so there's nothing to do here."
    taken = ok(await runtime.mentorship.claim(MENTOR_2, request.id))
    unbooked = await runtime.mentorship.cancel_session(MENTOR_2, request.id)
    assert isinstance(unbooked, Refused)
    assert (
        unbooked.message
        == "This request is claimed but not scheduled yet, so its session can't be cancelled."
    )
    lost = await runtime.mentorship.claim(MENTOR, taken.id)
    assert isinstance(lost, Refused) and lost.message == "Already claimed by Max Mentor."


async def test_a_schedule_form_opened_before_the_students_pick_changes_nothing(runtime: Runtime) -> None:
    """The mentor opens Schedule directly, proposes times, the student picks one; the old form,
    submitted with another time, is refused instead of moving the session."""
    from bot.workflow import booking_token

    request = await create(runtime)
    claimed = ok(await runtime.mentorship.claim(MENTOR, request.id))
    opened = booking_token(claimed)
    assert opened == "0"
    proposed = ok(
        await runtime.mentorship.propose_times(
            MENTOR, request.id, {"time_1": "2030-01-08 10:00", "time_2": "2030-01-09 10:00"}
        )
    )
    picked = ok(await runtime.mentorship.pick_time(STUDENT, request.id, proposed.proposal_id, 1))
    assert picked.status is Status.SCHEDULED
    stale = await runtime.mentorship.schedule(
        MENTOR, request.id, {"starts_at": "2030-01-10 10:00"}, opened_for=opened
    )
    assert isinstance(stale, Refused) and stale.code == "booking_changed"
    now = ok(await runtime.mentorship.get_request(STUDENT, request.id))
    assert now.session is not None and now.session.starts_at == picked.session.starts_at
    # Opened for the booking as it is now, the same form moves it (a reschedule).
    moved = ok(
        await runtime.mentorship.schedule(
            MENTOR, request.id, {"starts_at": "2030-01-10 10:00"}, opened_for=booking_token(now)
        )
    )
    assert moved.session is not None and moved.session.starts_at != picked.session.starts_at


async def test_dashboards_count_what_they_do_not_list(runtime: Runtime) -> None:
    for n in range(12):
        student = STUDENT.__class__("slack", "T1", f"U_S{n}", f"Student {n}", "UTC")
        ok(await runtime.mentorship.create_request(student, request_form(title=f"Request number {n:02d}")))
    board = await runtime.mentorship.dashboard(MENTOR)
    assert len(board.open) == 10 and board.total("open") == 12
    assert board.total("mine") == 0 and board.total("claimed") == 0


async def test_a_mentor_who_claims_after_a_release_gets_no_cancel_file_for_the_old_session(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Mia's session was called off when she released; Max claims; the student cancels. Max is
    told, without a calendar file for Mia's event (he never had it)."""
    from bot.notifications import Kind, compose

    request = await scheduled(runtime)
    ok(await runtime.mentorship.release(MENTOR, request.id))
    ok(await runtime.mentorship.claim(MENTOR_2, request.id))
    cancelled = ok(await runtime.mentorship.cancel(STUDENT, request.id))
    [row] = await owed(runtime, kind=Kind.REQUEST_CANCELLED.value)
    assert cancelled.claimed_by is not None and row.member_id == cancelled.claimed_by.id
    told = compose(Kind.REQUEST_CANCELLED, row.payload, cancelled, cancelled.claimed_by, clock.now())
    assert told.attachment is None
    # The student got the file for that event when Mia released.
    released = await owed(runtime, kind=Kind.CLAIM_RELEASED.value)
    assert released and all(n.member_id == cancelled.student.id for n in released)


async def test_a_time_outside_the_dates_is_explained_in_the_mentors_own_zone(runtime: Runtime) -> None:
    """Sam's dates are Berlin days; Mia types New York times: the refusal says the window in hers."""
    request = await create(runtime, available_from="2030-01-09", available_until="2030-01-09")
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    refused = await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 20:00"})
    assert refused == Invalid(
        {
            "starts_at": "Please pick a time inside the student's dates (2030-01-09 – 2030-01-09). "
            "In your time (America/New_York) that is Tue 08 Jan 18:00 – Wed 09 Jan 18:00."
        }
    )


async def test_dates_that_end_at_another_hour_for_the_mentor_are_explained_too(
    runtime: Runtime, clock: ManualClock
) -> None:
    """London and Reykjavik share a clock in winter, but London's dates ending after the clocks
    went forward end at 23:00 in Reykjavik: a mentor typing 23:15 on the last day is told so."""
    from bot.domain import Actor

    london = Actor("slack", "T1", "U_LONDON", "Lia London", "Europe/London")
    reykjavik = Actor("slack", "T1", "U_REYK", "Rey Reykjavik", "Atlantic/Reykjavik", is_mentor=True)
    clock.set(datetime(2030, 3, 20, 9, tzinfo=ZoneInfo("UTC")))
    m = runtime.mentorship
    request = ok(
        await m.create_request(
            london, request_form(available_from="2030-03-25", available_until="2030-04-05")
        )
    )
    ok(await m.claim(reykjavik, request.id))
    refused = await m.schedule(reykjavik, request.id, {"starts_at": "2030-04-05 23:15"})
    assert refused == Invalid(
        {
            "starts_at": "Please pick a time inside the student's dates (2030-03-25 – 2030-04-05). "
            "In your time (Atlantic/Reykjavik) that is Mon 25 Mar 00:00 – Fri 05 Apr 23:00."
        }
    )


@pytest.mark.parametrize("who", ["mentor releases", "mentor cancels the session", "student cancels"])
async def test_whoever_calls_off_a_booked_session_gets_the_file_that_removes_it(
    runtime: Runtime, clock: ManualClock, who: str
) -> None:
    from bot.notifications import Kind, compose

    request = await scheduled(runtime)
    m = runtime.mentorship
    if who == "mentor releases":
        after, actor = ok(await m.release(MENTOR, request.id)), MENTOR
    elif who == "mentor cancels the session":
        after, actor = ok(await m.cancel_session(MENTOR, request.id)), MENTOR
    else:
        after, actor = ok(await m.cancel(STUDENT, request.id)), STUDENT
    [row] = await owed(runtime, kind=Kind.CALENDAR_REMOVED.value)
    acted = request.session.mentor if actor is MENTOR else request.student
    assert row.member_id == acted.id
    message = compose(Kind.CALENDAR_REMOVED, row.payload, after, acted, clock.now())
    assert message.attachment is not None and b"METHOD:CANCEL" in message.attachment.content
    # Not for a request with nothing booked: releasing a claim only.
    fresh = await create(runtime, title="Nothing booked yet here")
    ok(await m.claim(MENTOR, fresh.id))
    ok(await m.release(MENTOR, fresh.id))
    assert len(await owed(runtime, kind=Kind.CALENDAR_REMOVED.value)) == 1


async def test_the_removal_file_is_for_the_session_called_off_even_if_a_new_one_is_booked_first(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Cancel the session, then book a new time before the DM goes out: the DM still removes
    the old event (not nothing, and not the new one)."""
    from bot.notifications import Kind, compose

    request = await scheduled(runtime)
    m = runtime.mentorship
    ok(await m.cancel_session(MENTOR, request.id))
    rebooked = ok(await m.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 15:00"}))
    [row] = await owed(runtime, kind=Kind.CALENDAR_REMOVED.value)
    message = compose(Kind.CALENDAR_REMOVED, row.payload, rebooked, request.session.mentor, clock.now())
    assert message.attachment is not None
    ics = message.attachment.content.decode()
    unfolded = ics.replace("\r\n ", "")
    assert "METHOD:CANCEL" in ics and f"UID:session-{request.session.id}-request-{request.id}@" in unfolded
    assert rebooked.session is not None and rebooked.session.id != request.session.id


async def test_post_again_keeps_the_students_last_day_while_it_is_ahead(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Free 7-31 January, expired after a week: the copy runs from today to the 31st, not past it."""
    from datetime import date

    request = await create(runtime, available_from="2030-01-07", available_until="2030-01-31")
    clock.set(request.expires_at)
    assert await runtime.mentorship.expire_due() == 1
    copy = ok(await runtime.mentorship.repost(STUDENT, request.id))
    assert (copy.available_from, copy.available_until) == (date(2030, 1, 14), date(2030, 1, 31))


async def test_a_request_no_session_can_fit_in_any_more_is_refused_on_its_dates(
    runtime: Runtime, clock: ManualClock
) -> None:
    """23:50 in Kiritimati, "today only", 60 minutes: refused on the date field, not posted to expire."""
    far = Actor("slack", "T1", "U_KIRI", "Kiri", "Pacific/Kiritimati")
    clock.set(datetime(2030, 1, 7, 9, 50, tzinfo=ZoneInfo("UTC")))  # 23:50 there
    refused = await runtime.mentorship.create_request(
        far, request_form(available_from="2030-01-07", available_until="2030-01-07", duration="60")
    )
    assert refused == Invalid(
        {
            "available_until": "Your dates end in 10 minutes, too soon for a 60-minute session; "
            "please pick a later date."
        }
    )


def test_slots_on_the_night_clocks_go_forward_are_real_and_distinct() -> None:
    """Berlin, 31 March 2030, 02:00 -> 03:00: a 01:00-04:00 window holds two real hours."""
    from bot.domain import Availability
    from bot.workflow import compute_slots

    berlin = ZoneInfo("Europe/Berlin")
    window = Availability(weekday=6, start="01:00", end="04:00", timezone="Europe/Berlin")
    slots = compute_slots(
        [window],
        datetime(2030, 3, 31, tzinfo=berlin),
        datetime(2030, 4, 1, tzinfo=berlin),
        timedelta(minutes=60),
        [],
        earliest=datetime(2030, 1, 1, tzinfo=ZoneInfo("UTC")),
    )
    shown = [f"{s.starts_at.astimezone(berlin):%H:%M}-{s.ends_at.astimezone(berlin):%H:%M}" for s in slots]
    assert shown == ["01:00-03:00", "01:30-03:30", "03:00-04:00"]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=60) for s in slots)


def test_a_reminder_says_its_time_to_the_half_hour() -> None:
    """REMINDER_OFFSETS=90m says "1 hour 30 minutes", not "2 hours"."""
    from bot.notifications import _in_words

    said = {m: _in_words(timedelta(minutes=m)) for m in (15, 60, 90, 120, 150, 24 * 60, 3 * 24 * 60)}
    assert said == {
        15: "15 minutes",
        60: "1 hour",
        90: "1 hour 30 minutes",
        120: "2 hours",
        150: "2 hours 30 minutes",
        1440: "24 hours",
        4320: "3 days",
    }


async def test_a_new_link_at_the_same_time_is_not_called_a_new_time(
    runtime: Runtime, clock: ManualClock
) -> None:
    from bot.notifications import Kind, compose

    request = await scheduled(runtime)
    changed = ok(
        await runtime.mentorship.schedule(
            MENTOR, request.id, {"starts_at": "2030-01-08 15:00", "meeting_url": "https://zoom.us/j/42"}
        )
    )
    assert changed.session.starts_at == request.session.starts_at
    rows = await owed(runtime, kind=Kind.SESSION_RESCHEDULED.value)
    assert len(rows) == 2
    for row in rows:
        told = compose(Kind.SESSION_RESCHEDULED, row.payload, changed, changed.student, clock.now())
        assert told.headline == "Your mentorship session has a new link or note"


async def test_a_reschedule_form_can_empty_the_note_it_shows(runtime: Runtime) -> None:
    """The Reschedule form shows the session's note; sent back empty, the note is removed (a form
    from before the booking token keeps the old rule: empty keeps it)."""
    from bot.workflow import booking_token

    request = await create(runtime)
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    booked = ok(
        await runtime.mentorship.schedule(
            MENTOR, request.id, {"starts_at": "2030-01-08 15:00", "note": "Bring your CV"}
        )
    )
    kept = ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-08 16:00"}))
    assert kept.session.note == "Bring your CV"  # no token: an old form, empty keeps the note
    emptied = ok(
        await runtime.mentorship.schedule(
            MENTOR, request.id, {"starts_at": "2030-01-08 16:00", "note": ""}, opened_for=booking_token(kept)
        )
    )
    assert (
        emptied.session.note == "" and emptied.session.schedule_version == kept.session.schedule_version + 1
    )
    assert booked.session.note == "Bring your CV"


async def test_post_again_or_release_with_no_time_left_on_the_last_day(
    runtime: Runtime, clock: ManualClock
) -> None:
    """23:50 on the student's last day, 30 minutes needed: Post again moves the dates on (not a
    copy that expires in 10 minutes), and a release expires the request instead of reopening it."""
    request = await create(runtime, available_from="2030-01-07", available_until="2030-01-09")
    other = await create(
        runtime, title="Another request for help", available_from="2030-01-08", available_until="2030-01-10"
    )
    ok(await runtime.mentorship.cancel(STUDENT, request.id))
    ok(await runtime.mentorship.claim(MENTOR, other.id))
    clock.set(datetime(2030, 1, 9, 23, 50, tzinfo=ZoneInfo("Europe/Berlin")))
    copy = ok(await runtime.mentorship.repost(STUDENT, request.id))
    assert (copy.available_from.isoformat(), copy.available_until.isoformat()) == ("2030-01-09", "2030-01-16")
    clock.set(datetime(2030, 1, 10, 23, 50, tzinfo=ZoneInfo("Europe/Berlin")))
    released = ok(await runtime.mentorship.release(MENTOR, other.id))
    assert released.status is Status.EXPIRED


async def test_claimed_by_me_lists_the_soonest_session_first(runtime: Runtime) -> None:
    """The section is "Claimed by me · upcoming": booked sessions by their time, soonest first,
    then the claims with no time yet, not in the order the requests were posted."""
    later = await create(runtime, title="Posted first, booked for Friday")
    runtime.clock.advance(minutes=1)  # type: ignore[attr-defined]
    sooner = await create(runtime, title="Posted second, booked for Tuesday", available_until="2030-01-20")
    ok(await runtime.mentorship.claim(MENTOR, later.id))
    ok(await runtime.mentorship.claim(MENTOR, sooner.id))
    ok(await runtime.mentorship.schedule(MENTOR, later.id, {"starts_at": "2030-01-11 10:00"}))
    runtime.clock.advance(minutes=1)  # type: ignore[attr-defined]
    unbooked = ok(
        await runtime.mentorship.create_request(OTHER_STUDENT, request_form(title="Not booked yet"))
    )
    ok(await runtime.mentorship.claim(MENTOR, unbooked.id))
    ok(await runtime.mentorship.schedule(MENTOR, sooner.id, {"starts_at": "2030-01-08 10:00"}))
    board = await runtime.mentorship.dashboard(MENTOR)
    assert [r.id for r in board.claimed] == [sooner.id, later.id, unbooked.id]


async def test_a_lowered_cap_says_how_many_the_student_has(
    settings: Settings, database: Database, clock: ManualClock
) -> None:
    """Three requests posted under a cap of 3, then MAX_OPEN_REQUESTS_PER_STUDENT set to 2: the
    refusal said 'You already have 2 active requests' to someone with three."""
    roomy = Runtime(
        settings.model_copy(update={"max_open_requests_per_student": 3}), clock=clock, db=database
    )
    for n in range(3):
        ok(await roomy.mentorship.create_request(STUDENT, request_form(title=f"Request number {n}")))
    lowered = Runtime(
        settings.model_copy(update={"max_open_requests_per_student": 2}), clock=clock, db=database
    )
    refused = await lowered.mentorship.request_refusal(STUDENT)
    assert refused is not None and refused.message == (
        "You already have 3 active requests (the limit is 2). Cancel one or wait until it's done "
        "before posting another."
    )


def test_a_window_until_midnight_offers_its_last_hour() -> None:
    """'Wed 22:00-24:00' is stored as 23:59 (a clock time): the session 23:00-24:00 fits in it
    all the same."""
    from bot.workflow import compute_slots
    from modals import forms

    utc = ZoneInfo("UTC")
    windows = forms.parse_availability({"windows": "Wed 22:00-24:00", "timezone": "UTC"})
    assert isinstance(windows, list) and windows[0].end == "23:59"
    slots = compute_slots(
        windows,
        datetime(2030, 1, 9, tzinfo=utc),
        datetime(2030, 1, 10, tzinfo=utc),
        timedelta(minutes=60),
        [],
        earliest=datetime(2030, 1, 1, tzinfo=utc),
    )
    shown = [f"{s.starts_at:%H:%M}-{s.ends_at:%H:%M}" for s in slots]
    assert shown == ["22:00-23:00", "22:30-23:30", "23:00-00:00"]


def test_slots_reach_the_edges_of_dates_25_hours_apart() -> None:
    """A student in Kiritimati (UTC+14) and a mentor in Pago Pago (UTC-11): the student's first
    hour is the mentor's Tuesday 23:00, two of the student's days earlier, and a Pago Pago
    student's last hour is a Kiritimati mentor's Saturday. Both hours are offered."""
    from bot.domain import Availability
    from bot.workflow import compute_slots

    utc = ZoneInfo("UTC")
    kiritimati, pago = ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")

    def shown(window: Availability, student: ZoneInfo, first: int, last: int) -> list[str]:
        slots = compute_slots(
            [window],
            datetime(2030, 1, first, tzinfo=student),
            datetime(2030, 1, last + 1, tzinfo=student).astimezone(utc),
            timedelta(minutes=30),
            [],
            earliest=datetime(2030, 1, 1, tzinfo=utc),
        )
        return [f"{s.starts_at:%a %d %H:%M}Z" for s in slots]

    # Kiritimati Thu 10 Jan 00:00 = Wed 09 10:00Z = Pago Pago Tue 08 23:00.
    tuesday_night = Availability(weekday=1, start="23:00", end="23:59", timezone="Pacific/Pago_Pago")
    assert shown(tuesday_night, kiritimati, 10, 10) == ["Wed 09 10:00Z", "Wed 09 10:30Z"]
    # Pago Pago Thu 10 Jan ends at Fri 11 11:00Z = Kiritimati Sat 12 01:00.
    saturday_morning = Availability(weekday=5, start="00:00", end="01:00", timezone="Pacific/Kiritimati")
    assert shown(saturday_morning, pago, 10, 10) == ["Fri 11 10:00Z", "Fri 11 10:30Z"]
