"""Changes from either side through Slack (signed HTTP, fake Slack), on SQLite and PostgreSQL:
the student's Ask to reschedule from the scheduled DM, the mentor's new times or Keep the time,
"Can't make it" from the 24-hour reminder for both people, Put it back in the feed, and every
refusal (a forwarded button, another mentor, a second click, a stale button)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.domain import Actor, Ok
from storage.models import MentorSession, Request, RescheduleAsk
from tests.slack.harness import (
    MENTOR,
    MENTOR_2,
    MENTORS,
    OTHER,
    STUDENT,
    TEAM,
    SlackHarness,
    block_text,
    find_button,
)
from tests.slack.test_flow import _request

# Wed 09 Jan 2030 15:00 UTC (10:00 in the mentor's New York): more than a day after START.
SESSION_AT = 1894201200
NEW_TIME = SESSION_AT + 86400  # Thu 10 Jan, same hour


async def _scheduled(slack: SlackHarness) -> None:
    await _request(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    answer = await slack.submit(MENTOR, slack.latest_view("mm_schedule"), {"starts_at": str(SESSION_AT)})
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()


def _newest(slack: SlackHarness, user: str, text: str) -> dict[str, object]:
    return next(m for m in reversed(slack.dms(user)) if text in block_text(m["blocks"]))


async def _count(slack: SlackHarness, model: type) -> int:
    async with slack.runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _calendars(slack: SlackHarness) -> list[Calendar]:
    return [Calendar.from_ical(f["content"]) for f in slack.fake.files if f["filename"].endswith(".ics")]


async def test_ask_then_new_times_then_the_pick_moves_the_session(slack: SlackHarness) -> None:
    await _scheduled(slack)
    dm = _newest(slack, STUDENT, "is scheduled")
    ask = find_button(dm["blocks"], "mm_ask_reschedule")  # type: ignore[arg-type]
    # A forwarded button: refused, no form.
    forwarded = await slack.click(OTHER, ask, channel="DUSTUDENT")
    await slack.settle()
    assert "Only the student" in slack.reply_text(forwarded)
    assert not [v for v in slack.fake.views.values() if v.get("callback_id") == "mm_reschedule_ask"]

    await slack.click(STUDENT, ask, channel="DUSTUDENT")
    await slack.settle()
    form = slack.latest_view("mm_reschedule_ask")
    empty = await slack.submit(STUDENT, form, {"reason": ""})
    assert set(empty.json()["errors"]) == {"reason"}
    long = await slack.submit(STUDENT, form, {"reason": "x" * 301})
    assert "300" in long.json()["errors"]["reason"]
    sent = await slack.submit(STUDENT, form, {"reason": "My interview <!channel> moved"})
    assert sent.json()["response_action"] == "update"
    assert "stays" in block_text(sent.json()["view"]["blocks"])
    replay = await slack.submit(STUDENT, form, {"reason": "My interview <!channel> moved"})
    assert replay.json()["response_action"] == "update"  # the same submission: one ask
    await slack.settle()
    assert await _count(slack, RescheduleAsk) == 1

    told = _newest(slack, MENTOR, "asks to reschedule")
    text = block_text(told["blocks"])  # type: ignore[arg-type]
    assert "My interview &lt;!channel&gt; moved" in text and "<!channel>" not in text
    propose = find_button(told["blocks"], "mm_ask_propose")  # type: ignore[arg-type]
    keep = find_button(told["blocks"], "mm_keep_time")  # type: ignore[arg-type]
    stranger = await slack.click(MENTOR_2, keep, channel="DUMENTOR2")
    await slack.settle()
    assert "who claimed this request" in slack.reply_text(stranger)

    await slack.click(MENTOR, propose, channel="DUMENTOR")
    await slack.settle()
    answer = await slack.submit(MENTOR, slack.latest_view("mm_propose"), {"time_1": str(NEW_TIME)})
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()
    # The ask is answered: Keep the time now is refused.
    late = await slack.click(MENTOR, keep, channel="DUMENTOR")
    await slack.settle()
    assert "already been answered" in slack.reply_text(late)

    offer = _newest(slack, STUDENT, "proposed times")
    assert "stays booked" in block_text(offer["blocks"])  # type: ignore[arg-type]
    assert "Scheduled" in block_text(slack.card()["blocks"])
    picked = await slack.click(
        STUDENT,
        find_button(offer["blocks"], "mm_pick_time"),  # type: ignore[arg-type]
        channel="DUSTUDENT",
    )
    await slack.settle()
    assert "Booked" in slack.reply_text(picked)
    for user in (STUDENT, MENTOR):
        moved = _newest(slack, user, "has a new time")
        assert f"<!date^{NEW_TIME}^" in block_text(moved["blocks"])  # type: ignore[arg-type]
    events = [c.walk("VEVENT")[0] for c in _calendars(slack)]
    assert len({str(e["UID"]) for e in events}) == 1
    assert sorted(int(e["SEQUENCE"]) for e in events) == [1, 1, 2, 2]
    assert max(e.decoded("DTSTART") for e in events) == datetime(2030, 1, 10, 15, 0, tzinfo=UTC)
    assert await _count(slack, MentorSession) == 1
    # The old scheduled DM's Ask button speaks of the old time now.
    stale = await slack.click(STUDENT, ask, channel="DUSTUDENT")
    await slack.settle()
    assert "has moved" in slack.reply_text(stale)


async def test_keep_the_time_once(slack: SlackHarness) -> None:
    await _scheduled(slack)
    dm = _newest(slack, STUDENT, "is scheduled")
    await slack.click(STUDENT, find_button(dm["blocks"], "mm_ask_reschedule"), channel="DUSTUDENT")  # type: ignore[arg-type]
    await slack.settle()
    await slack.submit(STUDENT, slack.latest_view("mm_reschedule_ask"), {"reason": "Clash at work"})
    await slack.settle()
    keep = find_button(_newest(slack, MENTOR, "asks to reschedule")["blocks"], "mm_keep_time")  # type: ignore[arg-type]
    first = await slack.click(MENTOR, keep, channel="DUMENTOR")
    second = await slack.click(MENTOR, keep, channel="DUMENTOR")
    await slack.settle()
    assert "Kept the time" in slack.reply_text(first)
    assert "already been answered" in slack.reply_text(second)
    kept = [m for m in slack.dms(STUDENT) if "keeps its time" in block_text(m["blocks"])]
    assert len(kept) == 1 and "the time stands" in block_text(kept[0]["blocks"])
    # Propose new times on the answered ask: refused, no form opens.
    asked = _newest(slack, MENTOR, "asks to reschedule")
    late = await slack.click(MENTOR, find_button(asked["blocks"], "mm_ask_propose"), channel="DUMENTOR")  # type: ignore[arg-type]
    await slack.settle()
    assert "already been answered" in slack.reply_text(late)
    assert not [v for v in slack.fake.views.values() if v.get("callback_id") == "mm_propose"]
    # The time stands, but the student is not stuck: they can ask again from the same DM.
    again = find_button(kept[0]["blocks"], "mm_ask_reschedule")
    assert again is not None and find_button(kept[0]["blocks"], "mm_cancel") is not None
    await slack.click(STUDENT, again, channel="DUSTUDENT")
    await slack.settle()
    await slack.submit(STUDENT, slack.latest_view("mm_reschedule_ask"), {"reason": "Still clashes, sorry"})
    await slack.settle()
    assert "Still clashes, sorry" in block_text(_newest(slack, MENTOR, "asks to reschedule")["blocks"])


async def _reminders(slack: SlackHarness, clock: ManualClock) -> None:
    clock.set(datetime.fromtimestamp(SESSION_AT, UTC) - timedelta(hours=24))
    await slack.settle()


async def test_the_student_cant_make_it_and_puts_it_back(slack: SlackHarness, clock: ManualClock) -> None:
    await _scheduled(slack)
    await _reminders(slack, clock)
    reminder = _newest(slack, STUDENT, "Reminder")
    find_button(reminder["blocks"], "mm_ask_reschedule")  # type: ignore[arg-type]
    cant = find_button(reminder["blocks"], "mm_cant_make_it")  # type: ignore[arg-type]
    find_button(_newest(slack, MENTOR, "Reminder")["blocks"], "mm_cant_make_it")  # type: ignore[arg-type]
    forwarded = await slack.click(OTHER, cant, channel="DUSTUDENT")
    await slack.settle()
    assert "Only the student and the mentor" in slack.reply_text(forwarded)

    await slack.click(STUDENT, cant, channel="DUSTUDENT")
    await slack.settle()
    done = await slack.submit(STUDENT, slack.latest_view("mm_cant_make_it"), {"reason": "Ill, sorry <!here>"})
    assert done.json()["response_action"] == "update"
    await slack.settle()
    told = _newest(slack, MENTOR, "can't make the session")
    text = block_text(told["blocks"])  # type: ignore[arg-type]
    assert "Ill, sorry &lt;!here&gt;" in text and "<!here>" not in text
    cancels = [c for c in _calendars(slack) if str(c["METHOD"]) == "CANCEL"]
    assert len(cancels) == 2  # both calendars drop the event
    assert "Cancelled by the student" in block_text(slack.card()["blocks"])

    mine = _newest(slack, STUDENT, "called off")
    put_back = find_button(mine["blocks"], "mm_repost")  # type: ignore[arg-type]
    assert put_back["text"]["text"] == "Put it back in the feed"
    again = await slack.click(STUDENT, cant, channel="DUSTUDENT")
    await slack.settle()
    assert "no longer scheduled" in slack.reply_text(again)
    first = await slack.click(STUDENT, put_back, channel="DUSTUDENT")
    second = await slack.click(STUDENT, put_back, channel="DUSTUDENT")
    await slack.settle()
    # Two clicks at once: one posts the copy, the other is told where it is (either order).
    replies = sorted([slack.reply_text(first), slack.reply_text(second)], key=lambda text: "already" in text)
    assert "Posted again" in replies[0] and "already posted again" in replies[1]
    assert await _count(slack, Request) == 2
    assert "Open" in block_text(slack.card()["blocks"])


async def test_the_mentor_cant_make_it(slack: SlackHarness, clock: ManualClock) -> None:
    await _scheduled(slack)
    await _reminders(slack, clock)
    cant = find_button(_newest(slack, MENTOR, "Reminder")["blocks"], "mm_cant_make_it")  # type: ignore[arg-type]
    other_mentor = await slack.click(MENTOR_2, cant, channel="DUMENTOR")
    await slack.settle()
    assert "Only the student and the mentor" in slack.reply_text(other_mentor)
    await slack.click(MENTOR, cant, channel="DUMENTOR")
    await slack.settle()
    await slack.submit(MENTOR, slack.latest_view("mm_cant_make_it"), {"reason": "Flight delayed"})
    await slack.settle()
    told = _newest(slack, STUDENT, "can't make the session")
    assert "Flight delayed" in block_text(told["blocks"])  # type: ignore[arg-type]
    find_button(told["blocks"], "mm_repost")  # type: ignore[arg-type]
    assert "mentor couldn't make it" in block_text(slack.card(0)["blocks"])


def _texts(slack: SlackHarness, user: str) -> list[str]:
    return [str(m.get("text", "")) for m in slack.fake.messages.get("D" + user, [])]


def _fits_you(slack: SlackHarness, user: str) -> list[str]:
    return [text for text in _texts(slack, user) if "fits you" in text]


async def test_the_mentor_who_cant_make_it_gets_no_suggestion_dm_for_the_copy(
    slack: SlackHarness, clock: ManualClock
) -> None:
    """Mia, the best fit, was DM'd the request, claimed, booked and called it off; the student's
    Put it back posts a copy that Max is DM'd about and Mia is not, and the copy's card does not
    suggest her. She can still claim it from the card."""
    for user, name, skills in ((MENTOR, "mia", "python, interviews"), (MENTOR_2, "max", "python")):
        saved = await slack.runtime.mentorship.save_profile(
            Actor("slack", TEAM, user, name, is_mentor=True), {"skills": skills, "capacity": "3"}
        )
        assert isinstance(saved, Ok)
    await _scheduled(slack)
    # Both were DM'd the first request; once Mia claimed it, those DMs were edited to say so.
    assert _texts(slack, MENTOR)[0] == "You claimed this: Mock interview for a backend role"
    assert _texts(slack, MENTOR_2) == ["Claimed by mia: Mock interview for a backend role"]
    await _reminders(slack, clock)
    cant = find_button(_newest(slack, MENTOR, "Reminder")["blocks"], "mm_cant_make_it")  # type: ignore[arg-type]
    await slack.click(MENTOR, cant, channel="DUMENTOR")
    await slack.settle()
    await slack.submit(MENTOR, slack.latest_view("mm_cant_make_it"), {"reason": "Flight delayed"})
    await slack.settle()
    before = _texts(slack, MENTOR)
    put_back = find_button(_newest(slack, STUDENT, "can't make the session")["blocks"], "mm_repost")  # type: ignore[arg-type]
    answer = await slack.click(STUDENT, put_back, channel="DUSTUDENT")
    await slack.settle()
    assert "Posted again" in slack.reply_text(answer)

    assert len(_fits_you(slack, MENTOR_2)) == 1  # the copy was offered to Max
    assert _texts(slack, MENTOR) == before and _fits_you(slack, MENTOR) == []  # and Mia got nothing
    copy_card = block_text(slack.card()["blocks"])
    assert "Open" in copy_card and f"<@{MENTOR_2}>" in copy_card and f"<@{MENTOR}>" not in copy_card
    claimed = await slack.click_in(MENTOR, MENTORS, "mm_claim")
    assert claimed.status == 200
    await slack.settle()
    async with slack.runtime.db.transaction() as session:
        statuses = (await session.scalars(select(Request.status).order_by(Request.id))).all()
    assert statuses == ["cancelled", "claimed"]
    assert _texts(slack, MENTOR_2)[-1] == "Claimed by mia: Mock interview for a backend role"
