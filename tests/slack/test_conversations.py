"""The shared group DM over Slack, through signed HTTP against the fake Slack, on SQLite and
PostgreSQL: a claim opens it with the request summary, scheduling news lands there as well as in
the DMs, a release closes it; an old install without mpim:write carries on with DMs only and the
dashboards say why."""

from __future__ import annotations

from typing import Any

from fakes.slack_api import FakeSlack
from tests.slack.harness import MENTOR, MENTORS, REQUEST_VALUES, STUDENT, SlackHarness, block_text


def group_dms(fake: FakeSlack) -> dict[str, list[dict[str, Any]]]:
    return {cid: fake.messages.get(cid, []) for cid, info in fake.channels.items() if info.get("is_mpim")}


async def _request_and_claim(slack: SlackHarness) -> None:
    await slack.command(STUDENT)
    await slack.settle()
    answer = await slack.submit(STUDENT, slack.latest_view("mm_request"), REQUEST_VALUES)
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()


async def test_claim_schedule_release_in_the_group_dm(slack: SlackHarness) -> None:
    fake = slack.fake
    await _request_and_claim(slack)
    [(channel, messages)] = group_dms(fake).items()
    assert set(fake.channels[channel]["members"]) == {STUDENT, MENTOR, "UBOT"}
    [summary] = messages
    shown = block_text(summary["blocks"])
    assert "A place to talk about your session" in shown and "Mock interview for a backend role" in shown
    assert f"<@{STUDENT}>" in shown and f"<@{MENTOR}>" in shown  # both named, in Slack's own markup
    assert not [b for b in summary["blocks"] if b["type"] == "actions"]  # buttons stay in the DMs

    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    answer = await slack.submit(MENTOR, view, {"starts_at": "1894118400"})  # Tue 8 Jan 2030, 16:00 UTC
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()
    scheduled = block_text(fake.messages[channel][-1]["blocks"])
    assert "Session scheduled" in scheduled and "<!date^" in scheduled  # each reader's own zone
    # The DMs stay: both still get their own scheduled DM with the invite.
    for user in (STUDENT, MENTOR):
        assert any("is scheduled" in block_text(m["blocks"]) for m in slack.dms(user))

    await slack.click_in(MENTOR, MENTORS, "mm_release")
    await slack.settle()
    closing = block_text(fake.messages[channel][-1]["blocks"])
    assert "This conversation is closed: " in closing and "released the request" in closing
    assert len(fake.messages[channel]) == 3
    opens = [c for c in fake.calls_to("conversations.open") if "," in str(c.args.get("users", ""))]
    assert len(opens) == 1 and all(c.ok for c in opens)


async def test_an_install_without_mpim_write_carries_on_with_dms(slack: SlackHarness) -> None:
    fake = slack.fake
    fake.missing_scopes.add("mpim:write")
    await _request_and_claim(slack)
    assert group_dms(fake) == {}
    [failed] = [c for c in fake.calls_to("conversations.open") if "," in str(c.args.get("users", ""))]
    assert failed.error == "missing_scope"
    assert any("claimed your request" in block_text(m["blocks"]) for m in slack.dms(STUDENT))
    answer = await slack.command(STUDENT, "list")
    await slack.settle()
    listing = slack.reply_text(answer)
    assert "Couldn't open the shared conversation: missing_scope" in listing, listing
    assert "mpim:write" in listing
    await slack.settle()  # nothing left to retry
    assert len([c for c in fake.calls_to("conversations.open") if "," in str(c.args.get("users", ""))]) == 1


async def test_a_deactivated_student_means_no_group_dm(slack: SlackHarness) -> None:
    fake = slack.fake
    await slack.command(STUDENT)
    await slack.settle()
    await slack.submit(STUDENT, slack.latest_view("mm_request"), REQUEST_VALUES)
    await slack.settle()
    fake.users[STUDENT]["deleted"] = True
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    assert group_dms(fake) == {}
    answer = await slack.command(MENTOR, "list")
    await slack.settle()
    listing = slack.reply_text(answer)
    assert "Couldn't open the shared conversation: group DM not possible: user_disabled" in listing
