"""SlackSender under Slack's failures: DMs closed, 429 with Retry-After, 5xx, timeouts, a file
upload failing after its message went out, a card that was deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.notifications import Kind, card
from bot.outbox import Delivered, Outgoing, RetryLater, Undeliverable
from handlers.slack import SlackSender
from handlers.slack_sender import api_url
from storage.models import Notification
from tests.conftest import MENTOR as CORE_MENTOR
from tests.slack.harness import MENTOR, MENTORS, STUDENT, TOKEN, SlackHarness, block_text
from tests.slack.test_flow import _availability, _claim_and_schedule, _request


async def _rows(slack: SlackHarness, kind: str) -> list[Notification]:
    async with slack.runtime.db.transaction() as session:
        return list((await session.scalars(select(Notification).where(Notification.kind == kind))).all())


async def test_dm_unavailable_is_recorded_and_the_flow_goes_on(slack: SlackHarness) -> None:
    fake = slack.fake
    fake.fail_next("conversations.open", error="cannot_dm_bot")
    await _request(slack)

    [posted] = await _rows(slack, Kind.REQUEST_POSTED.value)
    assert (posted.status, posted.failed_reason) == ("failed", "cannot_dm_bot")
    assert len(fake.messages[MENTORS]) == 1  # the card went out all the same

    # The student sees the problem on their dashboard; claiming works.
    answer = await slack.command(STUDENT, "list")
    await slack.settle()
    assert "Couldn't DM sam: cannot_dm_bot" in slack.reply_text(answer)
    fake.fail_next("conversations.open", error="cannot_dm_bot")
    answer = await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    assert "You claimed" in slack.reply_text(answer)
    [claimed] = await _rows(slack, Kind.REQUEST_CLAIMED.value)
    assert (claimed.status, claimed.failed_reason) == ("failed", "cannot_dm_bot")
    assert "Claimed" in block_text(fake.messages[MENTORS][0]["blocks"])
    # The mentor is told the student didn't get the message.
    assert "We couldn't reach the other person" in block_text(slack.dms(MENTOR)[-1]["blocks"])
    assert fake.validation_errors == []


async def test_rate_limited_card_update_waits_for_retry_after(slack_lite: SlackHarness) -> None:
    slack, fake = slack_lite, slack_lite.fake
    await _request(slack)
    fake.fail_next("chat.update", status=429, retry_after=30)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    [row] = [r for r in await _rows(slack, "card") if r.status != "sent"]
    assert row.status == "pending" and row.last_error == "ratelimited"
    assert row.next_attempt_at.replace(tzinfo=None) >= (
        slack.runtime.clock.now() + timedelta(seconds=30)
    ).replace(tzinfo=None)
    assert "Open" in block_text(fake.messages[MENTORS][0]["blocks"])

    slack.runtime.clock.advance(seconds=31)  # type: ignore[attr-defined]
    await slack.settle()
    assert "Claimed" in block_text(fake.messages[MENTORS][0]["blocks"])
    assert [c.ok for c in fake.calls_to("chat.update")] == [False, True]
    assert len(fake.messages[MENTORS]) == 1


async def test_server_error_is_retried(slack_lite: SlackHarness) -> None:
    slack, fake = slack_lite, slack_lite.fake
    await _request(slack)
    fake.fail_next("chat.update", status=503)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    [row] = [r for r in await _rows(slack, "card") if r.status != "sent"]
    assert (row.status, row.last_error) == ("pending", "http_503")
    slack.runtime.clock.advance(minutes=1)  # type: ignore[attr-defined]
    await slack.settle()
    assert "Claimed" in block_text(fake.messages[MENTORS][0]["blocks"])


async def test_failed_calendar_upload_does_not_repeat_the_message(slack_lite: SlackHarness) -> None:
    slack, fake = slack_lite, slack_lite.fake
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    fake.fail_next("files.completeUploadExternal", status=500)
    await _claim_and_schedule(slack)
    slack.runtime.clock.advance(minutes=1)  # type: ignore[attr-defined]
    await slack.settle()
    for user in (STUDENT, MENTOR):
        scheduled = [m for m in slack.dms(user) if "is scheduled" in block_text(m["blocks"])]
        assert len(scheduled) == 1, user
    assert sorted(f["channels"][0] for f in fake.files) == ["DUMENTOR", "DUSTUDENT"]
    assert {r.status for r in await _rows(slack, Kind.SESSION_SCHEDULED.value)} == {"sent"}
    assert fake.validation_errors == []


async def test_deleted_card_is_recorded_as_undeliverable(slack_lite: SlackHarness) -> None:
    slack, fake = slack_lite, slack_lite.fake
    await _request(slack)
    card_message = fake.messages[MENTORS][0]
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    fake.messages[MENTORS].remove(card_message)  # someone deleted the card meanwhile
    await slack.settle()
    [row] = [r for r in await _rows(slack, "card") if r.status != "sent"]
    assert (row.status, row.failed_reason) == ("failed", "message_not_found")


@pytest.fixture
async def outgoing(slack_lite: SlackHarness) -> Outgoing:
    await _request(slack_lite)
    found = await slack_lite.runtime.mentorship.get_request(CORE_MENTOR, 1)
    view = found.value  # type: ignore[union-attr]
    return Outgoing(1, Kind.CARD, "feed", "T1", None, view, card(view), None)


async def test_timeouts_and_connection_errors_are_retried(
    slack_lite: SlackHarness, outgoing: Outgoing
) -> None:
    settings = slack_lite.runtime.settings
    slow = AsyncWebClient(token=TOKEN, base_url=api_url(settings), timeout=0.2, retry_handlers=[])  # type: ignore[arg-type]
    slack_lite.fake.fail_next("chat.postMessage", delay=2)
    result = await SlackSender(settings, client=slow, min_interval=0).deliver(outgoing)
    assert isinstance(result, RetryLater)

    nowhere = AsyncWebClient(token=TOKEN, base_url="http://127.0.0.1:9/api/", retry_handlers=[])
    result = await SlackSender(settings, client=nowhere, min_interval=0).deliver(outgoing)
    assert isinstance(result, RetryLater)


@pytest.mark.parametrize("error", ["user_not_found", "account_inactive", "invalid_blocks"])
async def test_permanent_errors_are_undeliverable(
    slack_lite: SlackHarness, outgoing: Outgoing, error: str
) -> None:
    slack_lite.fake.fail_next("chat.postMessage", error=error)
    result = await SlackSender(slack_lite.runtime.settings, min_interval=0).deliver(outgoing)
    assert result == Undeliverable(error)


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
async def test_a_new_card_waits_until_an_admin_lets_the_app_back_in(
    slack_lite: SlackHarness, outgoing: Outgoing, error: str
) -> None:
    """The app removed from the mentors' channel (or the channel archived) while it runs: a card
    given up on would never reach the mentors, though the student was told it did. It waits,
    never given up on, and names what the admin should do."""
    slack_lite.fake.fail_next("chat.postMessage", error=error)
    result = await SlackSender(slack_lite.runtime.settings, min_interval=0).deliver(outgoing)
    assert isinstance(result, RetryLater) and result.until_fixed, result
    assert error in result.reason and "SLACK_MENTOR_CHANNEL" in result.reason


async def test_card_post_returns_its_place(slack_lite: SlackHarness, outgoing: Outgoing) -> None:
    sender = SlackSender(slack_lite.runtime.settings, min_interval=0)
    assert sender.channel_key(outgoing) == MENTORS
    result = await sender.deliver(outgoing)
    assert isinstance(result, Delivered) and result.feed_ref is not None
    assert result.feed_ref.channel == MENTORS
    slack_lite.fake.fail_next("chat.postMessage", status=429, retry_after=7)
    assert await sender.deliver(outgoing) == RetryLater("ratelimited", after_seconds=7.0)
