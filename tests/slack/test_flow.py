"""The whole story through Slack, on SQLite and PostgreSQL: request → card → claim → schedule →
session → rating, plus the dashboards, stats, reschedule and cancel from the DMs."""

from __future__ import annotations

from sqlalchemy import select

from bot.clock import ManualClock
from handlers.slack_manifest import BOT_SCOPES
from storage.models import MentorSession, Notification, Request
from tests.slack.harness import (
    ADMIN,
    MENTOR,
    MENTORS,
    REQUEST_VALUES,
    STUDENT,
    SlackHarness,
    block_text,
    buttons,
    find_button,
)


async def _request(slack: SlackHarness, **overrides: str) -> None:
    await slack.command(STUDENT)
    await slack.settle()
    view = slack.latest_view("mm_request")
    answer = await slack.submit(STUDENT, view, {**REQUEST_VALUES, **overrides})
    assert answer.status == 200 and answer.text == "", answer.text  # an empty answer closes the modal
    await slack.settle()


async def _availability(slack: SlackHarness, windows: str, timezone: str = "America/New_York") -> None:
    await slack.command(MENTOR, "availability")
    await slack.settle()
    answer = await slack.submit(
        MENTOR, slack.latest_view("mm_availability"), {"windows": windows, "timezone": timezone}
    )
    assert answer.json()["response_action"] == "update"
    assert "Saved" in block_text(answer.json()["view"]["blocks"])


async def _claim_and_schedule(slack: SlackHarness) -> str:
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    slot_block = next(b for b in view["blocks"] if b.get("block_id") == "slot")
    slot = str(slot_block["element"]["options"][0]["value"])
    answer = await slack.submit(MENTOR, view, {"slot": slot})
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()
    return slot


async def test_happy_path(slack: SlackHarness, clock: ManualClock) -> None:
    fake = slack.fake

    # The student opens the form: dates default to today and today + 7 in their zone.
    answer = await slack.command(STUDENT)
    assert answer.status == 200
    await slack.settle()
    view = slack.latest_view("mm_request")
    assert view["title"]["text"] == "Request a mini session"
    initial = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert initial["available_from"]["initial_date"] == "2030-01-07"
    assert initial["available_until"]["initial_date"] == "2030-01-14"
    assert initial["urgency"]["initial_option"]["value"] == "normal"
    assert initial["duration"]["type"] == "static_select"
    assert [o["value"] for o in initial["duration"]["options"]] == ["30", "45", "60"]

    answer = await slack.submit(STUDENT, view, REQUEST_VALUES)
    assert answer.status == 200 and answer.text == ""
    await slack.settle()

    # The card in the mentors' channel, and the student's DM.
    [card] = fake.messages[MENTORS]
    text = block_text(card["blocks"])
    for expected in (
        "Mock interview for a backend role",
        "Interview preparation",
        "30 min",
        "Mon 07 Jan – Fri 11 Jan 2030",
        "High urgency",
        "python, interviews",
        "<@USTUDENT>",
        "Open",
    ):
        assert expected in text, expected
    find_button(card["blocks"], "mm_claim")
    [posted] = slack.dms(STUDENT)
    assert "Your request is posted" in block_text(posted["blocks"])
    find_button(posted["blocks"], "mm_cancel")

    await _availability(slack, "Mon 10:00-17:00, Tue 10:00-17:00, Wed 10:00-17:00")

    # Claim: the card shows the claimer with Schedule and Release; the student is told.
    answer = await slack.click_in(MENTOR, MENTORS, "mm_claim")
    assert answer.status == 200
    await slack.settle()
    assert "You claimed" in slack.reply_text(answer)
    [card] = fake.messages[MENTORS]
    assert "Claimed" in block_text(card["blocks"]) and "<@UMENTOR>" in block_text(card["blocks"])
    find_button(card["blocks"], "mm_schedule")
    find_button(card["blocks"], "mm_release")
    assert "A mentor claimed your request" in block_text(slack.dms(STUDENT)[-1]["blocks"])

    # Schedule from a suggested slot (Mon 10:00 New York = 15:00 UTC).
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    slot_block = next(b for b in view["blocks"] if b.get("block_id") == "slot")
    first = slot_block["element"]["options"][0]
    assert first["value"] == "2030-01-07T15:00:00+00:00"
    assert first["text"]["text"].startswith("Mon 07 Jan 10:00–10:30")
    assert {b.get("block_id") for b in view["blocks"]} >= {"slot", "starts_at", "meeting_url", "note"}
    answer = await slack.submit(MENTOR, view, {"slot": first["value"], "note": "Bring a CV"})
    assert answer.status == 200 and answer.text == ""
    await slack.settle()

    epoch = "1894028400"  # 2030-01-07 15:00 UTC
    for user in (STUDENT, MENTOR):
        dm = slack.dms(user)[-1]
        text = block_text(dm["blocks"])
        assert "is scheduled" in text
        assert f"<!date^{epoch}^" in text
        assert "https://meet.jit.si/mini-mentorship-" in text
        assert "<https://calendar.google.com/calendar/render?action=TEMPLATE&amp;" in text
    assert "Europe/Berlin" not in text  # the fallback is the reader's: CET for Sam, EST for Mia
    assert "CET" in block_text(slack.dms(STUDENT)[-1]["blocks"])
    assert "EST" in block_text(slack.dms(MENTOR)[-1]["blocks"])
    find_button(slack.dms(MENTOR)[-1]["blocks"], "mm_reschedule")
    find_button(slack.dms(MENTOR)[-1]["blocks"], "mm_cancel_session")
    ics = [f for f in fake.files if f["filename"].endswith(".ics")]
    assert sorted(f["channels"][0] for f in ics) == ["DUMENTOR", "DUSTUDENT"]
    assert all(
        b"BEGIN:VCALENDAR" in f["content"] and b"DTSTART:20300107T150000Z" in f["content"] for f in ics
    )
    assert "Scheduled" in block_text(fake.messages[MENTORS][0]["blocks"])

    # After the session: the student is asked for a rating, rates, and reviews.
    clock.advance(hours=7)
    assert await slack.runtime.mentorship.complete_due() == 1
    await slack.settle()
    prompt = slack.dms(STUDENT)[-1]
    assert "How was your session?" in block_text(prompt["blocks"])
    five = find_button(prompt["blocks"], "mm_rate.5")
    answer = await slack.click(STUDENT, five, channel="DUSTUDENT", message_ts=prompt["ts"])
    await slack.settle()
    assert "Thanks for your rating" in slack.reply_text(answer)
    assert "rated your session ★★★★★" in block_text(slack.dms(MENTOR)[-1]["blocks"])
    await slack.click(STUDENT, find_button(prompt["blocks"], "mm_review"), channel="DUSTUDENT")
    await slack.settle()
    review_view = slack.latest_view("mm_review")
    answer = await slack.submit(STUDENT, review_view, {"review": "Very helpful, thanks!"})
    assert answer.json()["response_action"] == "update"
    assert "will see your rating and review" in block_text(answer.json()["view"]["blocks"])
    await slack.settle()
    # The second DM to the mentor is about the review, not a copy of the rating's.
    review_dm = block_text(slack.dms(MENTOR)[-1]["blocks"])
    assert "You got a review" in review_dm and "Very helpful, thanks!" in review_dm
    completed_card = block_text(slack.fake.messages[MENTORS][0]["blocks"])
    assert "Mentor" in completed_card and "When" in completed_card  # kept on the completed card

    async with slack.runtime.db.transaction() as session:
        request = (await session.scalars(select(Request))).one()
        mentor_session = (await session.scalars(select(MentorSession))).one()
    assert request.status == "completed"
    assert (mentor_session.rating, mentor_session.review) == (5, "Very helpful, thanks!")

    # Dashboards and stats.
    answer = await slack.command(STUDENT, "list")
    await slack.settle()
    listing = slack.reply_text(answer)
    assert "My requests" in listing and "Completed" in listing and "Claimed by me" not in listing
    await slack.home_opened(MENTOR)
    await slack.settle()
    home = block_text(fake.home_tabs[MENTOR]["blocks"])
    assert "Claimed by me" in home and "Open requests" in home and "Mon 10:00-17:00" in home
    answer = await slack.command(ADMIN, "stats")
    await slack.settle()
    stats = slack.reply_text(answer)
    assert "Mentorship stats" in stats and "100%" in stats and "5.00" in stats and "mia" in stats.lower()
    [csv_file] = [f for f in fake.files if f["filename"].startswith("mentorship-stats-")]
    assert csv_file["channels"] == ["DUADMIN"]
    assert b"Mock interview for a backend role" in csv_file["content"]
    [summary] = [f for f in fake.files if f["filename"].startswith("mentorship-summary-")]
    assert summary["channels"] == ["DUADMIN"] and summary["content"].startswith(b"urgency,claim_target_hours")
    assert "Claimed within target" in stats and "1 of 1 within target (100%)" in stats

    async with slack.runtime.db.transaction() as session:
        statuses = set((await session.scalars(select(Notification.status))).all())
    assert statuses <= {"sent", "superseded"}
    # The manifest asks for exactly the scopes these calls need.
    needs = {
        "chat.postMessage": "chat:write",
        "chat.update": "chat:write",
        "chat.postEphemeral": "chat:write",
        "conversations.open": "im:write",
        "conversations.members": "channels:read",
        "conversations.history": "im:history",
        "users.info": "users:read",
        "files.getUploadURLExternal": "files:write",
        "files.completeUploadExternal": "files:write",
        "views.open": None,
        "views.publish": None,
        "auth.test": None,
        "upload": None,
        "response_url": None,
    }
    called = {c.method for c in fake.calls}
    assert called <= set(needs), called - set(needs)
    assert {needs[m] for m in called} - {None} <= set(BOT_SCOPES)
    assert fake.validation_errors == []


async def test_reschedule_and_cancel_from_the_dms(slack: SlackHarness) -> None:
    fake = slack.fake
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00, Tue 10:00-17:00")
    await _claim_and_schedule(slack)

    # The mentor moves the session from their DM.
    mentor_dm = slack.dms(MENTOR)[-1]
    await slack.click(MENTOR, find_button(mentor_dm["blocks"], "mm_reschedule"), channel="DUMENTOR")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    assert view["title"]["text"] == "Reschedule session"
    answer = await slack.submit(MENTOR, view, {"starts_at": "1894118400"})  # 11:00 in New York
    assert answer.text == "", answer.text
    await slack.settle()
    moved = "1894118400"  # 2030-01-08 16:00 UTC
    for user in (STUDENT, MENTOR):
        text = block_text(slack.dms(user)[-1]["blocks"])
        assert "has a new time" in text and f"<!date^{moved}^" in text
    assert len([f for f in fake.files if f["filename"].endswith(".ics")]) == 4

    # The mentor cancels the session (the request stays claimed), then the student cancels it all.
    mentor_dm = slack.dms(MENTOR)[-1]
    answer = await slack.click(
        MENTOR, find_button(mentor_dm["blocks"], "mm_cancel_session"), channel="DUMENTOR"
    )
    await slack.settle()
    assert "is cancelled" in slack.reply_text(answer)
    assert "Session cancelled" in block_text(slack.dms(STUDENT)[-1]["blocks"])
    assert "Claimed" in block_text(fake.messages[MENTORS][0]["blocks"])
    student_dm = slack.dms(STUDENT)[-1]
    answer = await slack.click(STUDENT, find_button(student_dm["blocks"], "mm_cancel"), channel="DUSTUDENT")
    await slack.settle()
    assert "is cancelled" in slack.reply_text(answer)
    assert "Request cancelled" in block_text(slack.dms(MENTOR)[-1]["blocks"])
    card = fake.messages[MENTORS][0]
    assert "Cancelled" in block_text(card["blocks"]) and not any(
        b["type"] == "actions" for b in card["blocks"]
    )
    async with slack.runtime.db.transaction() as session:
        assert (await session.scalars(select(Request.status))).one() == "cancelled"
    assert fake.validation_errors == []


async def test_the_reschedule_form_shows_the_note_and_can_empty_it(slack: SlackHarness) -> None:
    from storage.models import MentorSession

    await _request(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    await slack.submit(
        MENTOR, slack.latest_view("mm_schedule"), {"starts_at": "1894114800", "note": "Bring your CV"}
    )
    await slack.settle()
    await slack.click(
        MENTOR, find_button(slack.dms(MENTOR)[-1]["blocks"], "mm_reschedule"), channel="DUMENTOR"
    )
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    note = next(b for b in view["blocks"] if b.get("block_id") == "note")
    assert note["element"]["initial_value"] == "Bring your CV"
    answer = await slack.submit(MENTOR, view, {"starts_at": "1894114800", "note": ""})
    assert answer.text == "", answer.text
    await slack.settle()
    async with slack.runtime.db.transaction() as session:
        assert (await session.scalars(select(MentorSession.note))).one() == ""


async def test_a_no_show_reported_the_day_after_the_sweep_marked_it_done(
    slack: SlackHarness, clock: ManualClock
) -> None:
    """The sweep marks the session done and asks the student for stars; the next day the mentor
    reports that nobody came, from the card's No-show button: the student is told, and the
    rating prompt they got no longer rates a session that didn't happen."""
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    await _claim_and_schedule(slack)
    clock.advance(hours=7)
    assert await slack.runtime.mentorship.complete_due() == 1
    await slack.settle()
    prompt = slack.dms(STUDENT)[-1]
    assert "How was your session?" in block_text(prompt["blocks"])
    card = slack.fake.messages[MENTORS][0]
    assert "Completed" in block_text(card["blocks"])
    assert [e["action_id"] for _, e in buttons(card["blocks"])] == ["mm_no_show"]

    clock.advance(hours=20)
    answer = await slack.click_in(MENTOR, MENTORS, "mm_no_show")
    await slack.settle()
    assert "as a no-show; the student has been told" in slack.reply_text(answer)
    assert "Session marked as a no-show" in block_text(slack.dms(STUDENT)[-1]["blocks"])
    card = slack.fake.messages[MENTORS][0]
    assert "No-show" in block_text(card["blocks"]) and list(buttons(card["blocks"])) == []
    stars = await slack.click(
        STUDENT, find_button(prompt["blocks"], "mm_rate.5"), channel="DUSTUDENT", message_ts=prompt["ts"]
    )
    await slack.settle()
    assert "once it has taken place" in slack.reply_text(stars)
    async with slack.runtime.db.transaction() as session:
        [meeting] = list(await session.scalars(select(MentorSession)))
    assert meeting.status == "no_show" and meeting.rating is None
