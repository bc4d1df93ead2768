"""Proposed times through Slack (signed HTTP, fake Slack), on SQLite and PostgreSQL: the mentor
proposes from a pre-filled form, the student picks a time shown in their own zone, and every
refusal (another user, a second click, an old proposal) changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import MentorSession
from tests.slack.harness import MENTOR, MENTORS, OTHER, STUDENT, SlackHarness, block_text, find_button
from tests.slack.test_flow import _availability, _request


async def _propose(slack: SlackHarness, values: dict[str, str | None] | None = None) -> dict[str, object]:
    await slack.click_in(MENTOR, MENTORS, "mm_propose")
    await slack.settle()
    view = slack.latest_view("mm_propose")
    filled = {
        b["block_id"]: b["element"].get("initial_date_time")
        for b in view["blocks"]
        if b.get("type") == "input" and b["block_id"].startswith("time_")
    }
    answer = await slack.submit(
        MENTOR, view, values if values is not None else {k: str(v) for k, v in filled.items() if v}
    )
    await slack.settle()
    return {"answer": answer, "filled": filled}


async def _sessions(slack: SlackHarness) -> int:
    async with slack.runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(MentorSession)) or 0)


async def test_propose_pick_in_the_students_zone(slack: SlackHarness) -> None:
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00, Tue 10:00-17:00")
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    find_button(slack.card()["blocks"], "mm_schedule")  # Schedule directly stays
    done = await _propose(slack)
    # Pre-filled from the availability: Mon 10:00, 10:30, 11:00 New York (15:00 UTC = 1894028400).
    assert done["filled"] == {"time_1": 1894028400, "time_2": 1894030200, "time_3": 1894032000}
    answer = done["answer"]
    assert answer.status == 200 and answer.text == "", answer.text  # type: ignore[attr-defined]
    assert "times proposed, waiting for the student" in block_text(slack.card()["blocks"])

    offer = slack.dms(STUDENT)[-1]
    text = block_text(offer["blocks"])
    assert "Your mentor proposed times" in text and "<!date^1894028400^" in text
    # Button labels can't localize: they are drawn in Sam's zone (Berlin).
    labels = [b["text"]["text"] for b in offer["blocks"][-1]["elements"]]
    assert labels == [
        "Mon 07 Jan 16:00 CET",
        "Mon 07 Jan 16:30 CET",
        "Mon 07 Jan 17:00 CET",
        "None of these work",
    ]

    # Someone else clicking a forwarded button is refused; nothing changes.
    second_time = offer["blocks"][-1]["elements"][1]
    refused = await slack.click(OTHER, second_time, channel="DUSTUDENT", message_ts=offer["ts"])
    await slack.settle()
    assert "Only the student" in slack.reply_text(refused)
    assert await _sessions(slack) == 0

    picked = await slack.click(STUDENT, second_time, channel="DUSTUDENT", message_ts=offer["ts"])
    await slack.settle()
    assert "Booked" in slack.reply_text(picked)
    for user in (STUDENT, MENTOR):
        dm = slack.dms(user)[-1]
        assert "is scheduled" in block_text(dm["blocks"]) and "<!date^1894030200^" in block_text(dm["blocks"])
    assert len([f for f in slack.fake.files if f["filename"].endswith(".ics")]) == 2
    assert "Scheduled" in block_text(slack.card()["blocks"])

    # A second click, on another time: polite, nothing changes.
    first_time = offer["blocks"][-1]["elements"][0]
    again = await slack.click(STUDENT, first_time, channel="DUSTUDENT", message_ts=offer["ts"])
    await slack.settle()
    assert "already scheduled" in slack.reply_text(again)
    assert await _sessions(slack) == 1


async def test_none_work_then_propose_other_times_and_old_buttons(slack: SlackHarness) -> None:
    await _request(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    # Typed times in the mentor's zone; a bad one is refused on its field.
    bad = await _propose(slack, {"time_1": "1894028400", "time_2": "1894028400"})
    assert bad["answer"].json()["errors"] == {"time_2": bad["answer"].json()["errors"]["time_2"]}  # type: ignore[attr-defined]
    await _propose(slack, {"time_1": "1894028400"})
    offer = slack.dms(STUDENT)[-1]
    await slack.click(STUDENT, find_button(offer["blocks"], "mm_none_work"), channel="DUSTUDENT")
    await slack.settle()
    answer = await slack.submit(
        STUDENT, slack.latest_view("mm_none_work"), {"note": "evenings <!channel> after 18:00"}
    )
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()
    told = slack.dms(MENTOR)[-1]
    text = block_text(told["blocks"])
    assert "None of the proposed times work" in text and "evenings &lt;!channel&gt; after 18:00" in text
    find_button(told["blocks"], "mm_propose")
    # The old offer's buttons are refused now.
    old = await slack.click(STUDENT, find_button(offer["blocks"], "mm_pick_time"), channel="DUSTUDENT")
    await slack.settle()
    assert "no longer on offer" in slack.reply_text(old)
    # Propose other times from the mentor's DM.
    await slack.click(MENTOR, find_button(told["blocks"], "mm_propose"), channel="DUMENTOR")
    await slack.settle()
    answer = await slack.submit(MENTOR, slack.latest_view("mm_propose"), {"time_1": "1894118400"})
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()
    newer = slack.dms(STUDENT)[-1]
    await slack.click(STUDENT, find_button(newer["blocks"], "mm_pick_time"), channel="DUSTUDENT")
    await slack.settle()
    assert await _sessions(slack) == 1


async def test_none_work_on_times_no_longer_on_offer_says_so_before_the_form(slack: SlackHarness) -> None:
    """After a pick (or once the times are withdrawn or re-proposed), None of these work on the
    old offer answers at once, as a time button of it would, instead of opening a form whose
    note is then refused on submit."""
    await _request(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await _propose(slack, {"time_1": "1894028400"})
    offer = slack.dms(STUDENT)[-1]
    picked = await slack.click(STUDENT, find_button(offer["blocks"], "mm_pick_time"), channel="DUSTUDENT")
    await slack.settle()
    assert "Booked" in slack.reply_text(picked)
    views = len(slack.fake.views)
    late = await slack.click(STUDENT, find_button(offer["blocks"], "mm_none_work"), channel="DUSTUDENT")
    await slack.settle()
    assert "already scheduled" in slack.reply_text(late)
    assert len(slack.fake.views) == views  # no form opened
