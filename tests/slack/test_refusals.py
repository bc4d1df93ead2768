"""Each refusal: the person is told why, ephemerally, and nothing changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from storage.models import MentorSession, Request
from tests.slack.conftest import MakeSlack
from tests.slack.harness import (
    ADMIN,
    GENERAL,
    MENTOR,
    MENTOR_2,
    MENTORS,
    OTHER,
    REQUEST_VALUES,
    STUDENT,
    SlackHarness,
    block_text,
    find_button,
)
from tests.slack.test_flow import _availability, _claim_and_schedule, _request


async def _state(slack: SlackHarness) -> list[tuple[Any, ...]]:
    async with slack.runtime.db.transaction() as session:
        rows = await session.execute(
            select(Request.id, Request.status, Request.claimed_by_id, Request.version)
        )
        sessions = await session.scalar(select(func.count()).select_from(MentorSession))
        return [*map(tuple, rows.all()), ("sessions", sessions)]


async def _click_card(slack: SlackHarness, user: str, action_id: str) -> str:
    """Click a button of the current card as `user`; return what they were told."""
    card = slack.fake.messages[MENTORS][0]
    button = find_button(card["blocks"], action_id)
    answer = await slack.click(user, button, message_ts=card["ts"])
    assert answer.status == 200
    await slack.settle()
    return slack.reply_text(answer)


async def test_claim_refusals(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    await _request(slack)
    before = await _state(slack)

    # Not a mentor (not in the mentors' channel), checked server-side.
    assert "Only mentors can do that" in await _click_card(slack, OTHER, "mm_claim")
    # A click on a request that doesn't exist.
    answer = await slack.click(
        MENTOR, {"action_id": "mm_claim", "text": {"type": "plain_text", "text": "x"}, "value": "999"}
    )
    await slack.settle()
    assert "couldn't find that request" in slack.reply_text(answer)
    assert await _state(slack) == before

    # The winner, then a loser who clicks the (now stale) Claim button.
    stale = find_button(slack.fake.messages[MENTORS][0]["blocks"], "mm_claim")
    assert "You claimed" in await _click_card(slack, MENTOR, "mm_claim")
    after_claim = await _state(slack)
    answer = await slack.click(MENTOR_2, stale)
    await slack.settle()
    assert "Already claimed by mia" in slack.reply_text(answer)
    answer = await slack.click(MENTOR, stale)
    await slack.settle()
    assert "already claimed this request" in slack.reply_text(answer)

    # Only the claiming mentor may schedule or release; no modal opens for anyone else.
    assert "Only mia, who claimed this request, can do that" in await _click_card(
        slack, MENTOR_2, "mm_schedule"
    )
    assert "Only mia, who claimed this request, can do that" in await _click_card(
        slack, MENTOR_2, "mm_release"
    )
    assert not [v for v in slack.fake.views.values() if v.get("callback_id") == "mm_schedule"]
    # Only the student may cancel (a forged click on the student's Cancel button).
    cancel = find_button(slack.dms(STUDENT)[0]["blocks"], "mm_cancel")
    answer = await slack.click(OTHER, cancel, channel=GENERAL)
    await slack.settle()
    assert "Only the student who made this request can do that" in slack.reply_text(answer)
    assert await _state(slack) == after_claim
    assert slack.fake.validation_errors == []


async def test_own_request_and_cap(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    # A mentor asking for help can't claim their own request.
    await slack.command(MENTOR_2)
    await slack.settle()
    await slack.submit(MENTOR_2, slack.latest_view("mm_request"), REQUEST_VALUES)
    await slack.settle()
    assert "can't claim your own request" in await _click_card(slack, MENTOR_2, "mm_claim")

    # The cap on active requests (2): the third form does not open at all (nothing typed is lost);
    # the student is told why.
    await _request(slack)
    await _request(slack, title="Second request for help")
    forms_before = len(slack.fake.views)
    answer = await slack.command(STUDENT)
    await slack.settle()
    assert len(slack.fake.views) == forms_before
    assert "You already have 2 active requests" in slack.reply_text(answer)
    async with slack.runtime.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 3
    assert slack.fake.validation_errors == []


async def test_role_refusals_for_commands(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    answer = await slack.command(STUDENT, "stats")
    await slack.settle()
    assert "Only admins can see stats" in slack.reply_text(answer)
    answer = await slack.command(STUDENT, "availability")
    await slack.settle()
    assert "Only mentors can do that" in slack.reply_text(answer)
    assert not slack.fake.views
    # A workspace admin (users.info is_admin) sees stats, even with nothing to count.
    answer = await slack.command(ADMIN, "stats")
    await slack.settle()
    assert "Mentorship stats" in slack.reply_text(answer) and "No CSV" in slack.reply_text(answer)
    assert not slack.fake.files
    assert slack.fake.validation_errors == []


async def test_admin_user_ids_setting(make_slack: MakeSlack) -> None:
    slack = await make_slack(admin_user_ids=f"{MENTOR_2}, {OTHER}")
    answer = await slack.command(OTHER, "stats")
    await slack.settle()
    assert "Mentorship stats" in slack.reply_text(answer)


async def test_session_refusals(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    await _claim_and_schedule(slack)
    before = await _state(slack)

    # Too early to mark done or report a no-show; a mentor can't rate; nor can anyone early.
    assert "hasn't started yet" in await _click_card(slack, MENTOR, "mm_complete")
    assert "hasn't started yet" in await _click_card(slack, MENTOR, "mm_no_show")
    rate = {"action_id": "mm_rate", "text": {"type": "plain_text", "text": "★"}, "value": "1:5"}
    answer = await slack.click(MENTOR, rate, channel="DUMENTOR")
    await slack.settle()
    assert "Only the student who made this request can do that" in slack.reply_text(answer)
    answer = await slack.click(STUDENT, rate, channel="DUSTUDENT")
    await slack.settle()
    assert "once it has taken place" in slack.reply_text(answer)
    bad = {**rate, "value": "1:9"}
    answer = await slack.click(STUDENT, bad, channel="DUSTUDENT")
    await slack.settle()
    assert "1 to 5 stars" in slack.reply_text(answer)
    assert await _state(slack) == before
    assert slack.fake.validation_errors == []


async def test_release_no_show_and_repost(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    fake = slack.fake
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")

    # Release: back to Claim, the student is told.
    await _click_card(slack, MENTOR, "mm_claim")
    assert "back in the mentors' feed" in await _click_card(slack, MENTOR, "mm_release")
    find_button(fake.messages[MENTORS][0]["blocks"], "mm_claim")
    assert "open again" in block_text(slack.dms(STUDENT)[-1]["blocks"])

    # No-show once the session has started.
    await _claim_and_schedule(slack)
    slack.runtime.clock.advance(hours=6, minutes=10)  # type: ignore[attr-defined]
    assert "no-show" in await _click_card(slack, MENTOR, "mm_no_show")
    assert "no-show" in block_text(slack.dms(STUDENT)[-1]["blocks"])

    # An unclaimed request expires; the student posts it again with one click.
    await _request(slack, title="Another topic entirely")
    slack.runtime.clock.advance(days=8)  # type: ignore[attr-defined]
    assert await slack.runtime.mentorship.expire_due() == 1
    await slack.settle()
    expired = slack.dms(STUDENT)[-1]
    assert "expired" in block_text(expired["blocks"])
    answer = await slack.click(STUDENT, find_button(expired["blocks"], "mm_repost"), channel="DUSTUDENT")
    await slack.settle()
    assert "Posted again as request #3" in slack.reply_text(answer)
    assert "Another topic entirely" in block_text(fake.messages[MENTORS][-1]["blocks"])
    assert fake.validation_errors == []


async def test_a_no_show_says_so_on_the_card_and_the_dashboards(slack: SlackHarness) -> None:
    """A no-show kept the request's 'Completed' status with nothing else: the card (the
    organisers' record) and the student's dashboards read as if the session had taken place."""
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    await _claim_and_schedule(slack)
    slack.runtime.clock.advance(hours=6, minutes=10)  # type: ignore[attr-defined]
    assert "no-show" in await _click_card(slack, MENTOR, "mm_no_show")
    assert "No-show" in block_text(slack.fake.messages[MENTORS][0]["blocks"])
    answer = await slack.command(STUDENT, "list")
    await slack.settle()
    await slack.home_opened(STUDENT)
    await slack.settle()
    assert "No-show" in slack.reply_text(answer)
    assert "No-show" in block_text(slack.fake.home_tabs[STUDENT]["blocks"])
