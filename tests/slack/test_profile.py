"""The mentor profile on Slack: `/mini-session profile` and the App Home button open the form,
errors sit on their fields, only mentors save, the home shows the load, and a mentor at
capacity who clicks Claim is told why and how to change it."""

from __future__ import annotations

from datetime import timedelta

from bot.domain import Actor, Ok
from tests.slack.harness import (
    MENTOR,
    MENTOR_2,
    MENTORS,
    STUDENT,
    TEAM,
    SlackHarness,
    block_text,
    find_button,
)
from tests.slack.test_flow import _request
from tests.slack.test_refusals import _click_card, _state


async def _open_profile(slack: SlackHarness) -> dict[str, object]:
    await slack.command(MENTOR, "profile")
    await slack.settle()
    return slack.latest_view("mm_profile")


async def test_profile_form_round_trip_and_home(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    view = await _open_profile(slack)
    assert "0 of 3 active" in block_text(view["blocks"])  # type: ignore[arg-type]
    answer = await slack.submit(MENTOR, view, {"skills": "<!channel>, Python", "capacity": "1"})
    saved = block_text(answer.json()["view"]["blocks"])
    assert "0 of 1 active" in saved and "python" in saved
    assert "<!channel>" not in saved  # user text is escaped, never a mention

    await slack.home_opened(MENTOR)
    await slack.settle()
    home = slack.fake.home_tabs[MENTOR]["blocks"]
    assert "My mentor profile" in block_text(home) and "0 of 1 active" in block_text(home)
    await slack.click(MENTOR, find_button(home, "mm_open_profile"), home=True)
    await slack.settle()
    again = slack.latest_view("mm_profile")
    inputs = {b["block_id"]: b["element"] for b in again["blocks"] if b["type"] == "input"}
    assert inputs["capacity"]["initial_value"] == "1"


async def test_profile_errors_are_inline(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    view = await _open_profile(slack)
    answer = await slack.submit(MENTOR, view, {"skills": "", "capacity": "50"})
    assert list(answer.json()["errors"]) == ["capacity"]
    assert "1 to 10" in answer.json()["errors"]["capacity"]


async def test_only_mentors_open_the_profile(slack_lite: SlackHarness) -> None:
    answer = await slack_lite.command(STUDENT, "profile")
    await slack_lite.settle()
    assert "Only mentors" in slack_lite.reply_text(answer)


async def test_capacity_refusal_on_claim(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    await slack.submit(MENTOR, await _open_profile(slack), {"capacity": "1"})
    await _request(slack)
    assert "You claimed" in await _click_card(slack, MENTOR, "mm_claim")
    await _request(slack)
    before = await _state(slack)
    newest = slack.fake.messages[MENTORS][-1]
    answer = await slack.click(MENTOR, find_button(newest["blocks"], "mm_claim"), message_ts=newest["ts"])
    await slack.settle()
    told = slack.reply_text(answer)
    assert "1 of 1 active" in told and "/mini-session profile" in told
    assert await _state(slack) == before


async def test_suggested_mentors_on_the_card_and_dmd(slack_lite: SlackHarness) -> None:
    """Mia lists the request's tags: she is named on the card and gets a DM with a Claim button;
    a mentor who left the mentors' channel is not suggested."""
    slack = slack_lite
    # Max saved a profile while a mentor, then left the mentors' channel.
    max_was_mentor = Actor("slack", TEAM, MENTOR_2, "max", is_mentor=True)
    saved = await slack.runtime.mentorship.save_profile(max_was_mentor, {"skills": "python", "capacity": "3"})
    assert isinstance(saved, Ok)
    slack.fake.add_channel(MENTORS, members=[MENTOR, "UBOT"], name="mentors")
    await slack.submit(MENTOR, await _open_profile(slack), {"skills": "python", "capacity": "3"})
    await _request(slack)
    card = slack.fake.messages[MENTORS][-1]
    text = block_text(card["blocks"])
    assert "Suggested" in text and f"<@{MENTOR}>" in text and f"<@{MENTOR_2}>" not in text
    dm = slack.fake.messages["D" + MENTOR][-1]
    assert "A request that fits you" in block_text(dm["blocks"])
    answer = await slack.click(
        MENTOR, find_button(dm["blocks"], "mm_claim"), message_ts=dm["ts"], channel="D" + MENTOR
    )
    await slack.settle()
    assert "You claimed" in slack.reply_text(answer)
    assert "D" + MENTOR_2 not in slack.fake.messages or not any(
        "fits you" in block_text(m.get("blocks", [])) for m in slack.fake.messages["D" + MENTOR_2]
    )


async def test_student_told_how_many_mentors_list_the_tags(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    await slack.submit(MENTOR, await _open_profile(slack), {"skills": "python", "capacity": "3"})
    await _request(slack)
    posted = slack.fake.messages["D" + STUDENT][-1]
    text = block_text(posted["blocks"])
    assert "Your request is posted" in text and "1 mentor lists these tags." in text
    assert "usually claimed" not in text  # no history yet: no guess


async def test_a_mentor_who_left_the_channel_still_sees_the_sessions_they_hold(slack: SlackHarness) -> None:
    """Max claimed and booked a session, then left the mentors' channel (stepped down, or was
    removed). He is still its mentor (reminders, Mark done, Release are his), yet his
    dashboards listed only his own requests: the session he holds was nowhere to be seen."""
    slack.fake.add_channel(MENTORS, members=[MENTOR, "UBOT"], name="mentors")  # Max has left it
    await _request(slack)
    max_was_mentor = Actor("slack", TEAM, MENTOR_2, "max", "UTC", is_mentor=True)
    [request] = (await slack.runtime.mentorship.dashboard(max_was_mentor)).open
    assert isinstance(await slack.runtime.mentorship.claim(max_was_mentor, request.id), Ok)
    booked = await slack.runtime.mentorship.schedule(
        max_was_mentor, request.id, {"starts_at": "2030-01-08 15:00"}
    )
    assert isinstance(booked, Ok)
    await slack.settle()

    answer = await slack.command(MENTOR_2, "list")
    await slack.settle()
    await slack.home_opened(MENTOR_2)
    await slack.settle()
    for text in (slack.reply_text(answer), block_text(slack.fake.home_tabs[MENTOR_2]["blocks"])):
        assert "Mock interview for a backend role" in text, text
        assert "Mark done" in text and "Reschedule" in text
        assert "Open requests" not in text  # the feed is for mentors


async def test_capacity_refusal_on_claim_from_the_suggestion_dm(slack_lite: SlackHarness) -> None:
    """Mia (capacity 1) was DM'd two requests while free; she claims one, then clicks Claim in
    the other DM: told she is full, the request stays open, and the DM keeps its Claim."""
    slack = slack_lite
    await slack.submit(MENTOR, await _open_profile(slack), {"skills": "python", "capacity": "1"})
    await _request(slack)
    await _request(slack, title="Second question about Python")
    dm = "D" + MENTOR
    first, second = [m for m in slack.fake.messages[dm] if "fits you" in block_text(m.get("blocks", []))]
    answer = await slack.click(
        MENTOR, find_button(first["blocks"], "mm_claim"), message_ts=first["ts"], channel=dm
    )
    await slack.settle()
    assert "You claimed" in slack.reply_text(answer)
    before = await _state(slack)
    answer = await slack.click(
        MENTOR, find_button(second["blocks"], "mm_claim"), message_ts=second["ts"], channel=dm
    )
    await slack.settle()
    told = slack.reply_text(answer)
    assert "1 of 1 active" in told and "/mini-session profile" in told, told
    assert await _state(slack) == before
    now = next(m for m in slack.fake.messages[dm] if m["ts"] == second["ts"])
    assert find_button(now["blocks"], "mm_claim")


async def test_back_from_away_the_profile_saves_without_fighting_the_old_date(
    slack_lite: SlackHarness,
) -> None:
    """Mia was away until Jan 9; on the 12th she opens her profile to take more sessions. The form
    must not bring back the passed date (a Slack date picker can't be emptied), so Save works."""
    slack = slack_lite
    answer = await slack.submit(
        MENTOR, await _open_profile(slack), {"capacity": "2", "away_until": "2030-01-09"}
    )
    assert "away until 2030-01-09" in block_text(answer.json()["view"]["blocks"])
    slack.runtime.clock.advance(timedelta(days=5))  # type: ignore[attr-defined]
    view = await _open_profile(slack)
    answer = await slack.submit(MENTOR, view, {"capacity": "4"})
    body = answer.json()
    assert "errors" not in body, body
    saved = block_text(body["view"]["blocks"])
    assert "0 of 4 active" in saved and "away until" not in saved
