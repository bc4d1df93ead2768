"""The escalation ladder on Slack, over signed HTTP against the fake Slack: the circle widens at
half the target (a DM to the next matching mentor), the feed's escalation mentions the
configured user group at the target, the student is told, and once a mentor claims, every
Claim message is edited (chat.update) to say who has it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.domain import Actor, Ok, Status
from jobs.sweeps import Sweeps
from storage.models import Notification
from tests.slack.conftest import MakeSlack
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

GROUP = "S0MENTORS"


def fits_you(slack: SlackHarness, user: str) -> list[dict[str, Any]]:
    return [m for m in slack.fake.messages.get("D" + user, []) if "fits you" in str(m.get("text", ""))]


async def _profiles(slack: SlackHarness) -> None:
    for user, name in ((MENTOR, "mia"), (MENTOR_2, "max")):
        saved = await slack.runtime.mentorship.save_profile(
            Actor("slack", TEAM, user, name, is_mentor=True), {"skills": "python", "capacity": "3"}
        )
        assert isinstance(saved, Ok)


async def _open_request(slack: SlackHarness) -> Any:
    [request] = (await slack.runtime.mentorship.dashboard(Actor("slack", TEAM, STUDENT, "sam"))).mine
    assert request.status is Status.OPEN
    return request


async def test_ladder_widens_escalates_and_retires_claim_buttons(make_slack: MakeSlack) -> None:
    slack = await make_slack(slack_escalation_usergroup=GROUP, match_notify_count=1)
    sweeps = Sweeps(slack.runtime)
    clock: Any = slack.runtime.clock
    await _profiles(slack)
    await _request(slack)  # high urgency: the target is 4 hours
    request = await _open_request(slack)
    first = [u for u in (MENTOR, MENTOR_2) if fits_you(slack, u)]
    assert len(first) == 1
    [second] = [u for u in (MENTOR, MENTOR_2) if u not in first]

    clock.set(request.created_at + timedelta(hours=2))
    assert await sweeps.run("nudge") == 1
    await slack.settle()
    assert len(fits_you(slack, second)) == 1  # the circle widened to the next mentor
    assert len(fits_you(slack, first[0])) == 1  # nobody is asked twice
    assert f"<!subteam^{GROUP}>" not in slack.fake.raw_mentions()

    clock.set(request.created_at + timedelta(hours=4))
    assert await sweeps.run("nudge") == 1
    await slack.settle()
    [escalation] = [m for m in slack.fake.messages[MENTORS] if str(m.get("text", "")).startswith("<!subteam")]
    assert escalation["text"].startswith(f"<!subteam^{GROUP}> 🚨 Still unclaimed after 4 h")
    assert f"<!subteam^{GROUP}>" in block_text(escalation["blocks"])
    assert set(slack.fake.raw_mentions()) >= {f"<!subteam^{GROUP}>"}
    assert not [m for m in slack.fake.raw_mentions() if m.startswith("<!") and "subteam" not in m]
    told = [m for m in slack.fake.messages["D" + STUDENT] if "More people have been asked" in str(m["text"])]
    assert len(told) == 1 and "escalation group" in block_text(told[0]["blocks"])
    card = slack.card(0)
    assert "4 h · target 4 h (missed)" in block_text(card["blocks"])
    assert await sweeps.run("nudge") == 0  # each step once

    # Max claims from the escalation itself; every other Claim message is edited in place.
    answer = await slack.click(
        MENTOR_2, find_button(escalation["blocks"], "mm_claim"), message_ts=escalation["ts"]
    )
    await slack.settle()
    assert "You claimed" in slack.reply_text(answer)
    updates = slack.fake.calls_to("chat.update")
    # Max's own DM says he has it; Mia's and the feed's say who took it.
    retirement = ("Claimed by max", "You claimed this")
    edited = {
        (c.args["channel"], c.args["ts"])
        for c in updates
        if any(says in str(c.args.get("text")) for says in retirement)
    }
    dms = {
        (m_channel, m["ts"])
        for m_channel in ("D" + MENTOR, "D" + MENTOR_2)
        for m in slack.fake.messages[m_channel]
        if any(says in str(m.get("text", "")) for says in ("fits you", *retirement))
    }
    assert edited == dms | {(MENTORS, escalation["ts"])}
    for channel, ts in edited:
        [message] = [m for m in slack.fake.messages[channel] if m["ts"] == ts]
        says = "You claimed this" if channel == "D" + MENTOR_2 else "Claimed by max"
        assert "mm_claim" not in str(message["blocks"]) and says in message["text"]
    retired_calls = len([c for c in updates if any(says in str(c.args.get("text")) for says in retirement)])
    await slack.settle()
    clock.advance(hours=1)
    await sweeps.run_all_once()
    later = slack.fake.calls_to("chat.update")
    assert (
        len([c for c in later if any(says in str(c.args.get("text")) for says in retirement)])
        == retired_calls
    )


async def test_a_deleted_suggestion_dm_is_not_retried(make_slack: MakeSlack) -> None:
    """The mentor deleted the DM: Slack answers message_not_found; the edit is given up at once."""
    slack = await make_slack(match_notify_count=1)
    await _profiles(slack)
    await _request(slack)
    request = await _open_request(slack)
    [user] = [u for u in (MENTOR, MENTOR_2) if fits_you(slack, u)]
    [dm] = fits_you(slack, user)
    slack.fake.messages["D" + user].remove(dm)
    taker = Actor("slack", TEAM, MENTOR_2 if user == MENTOR else MENTOR, "x", is_mentor=True)
    assert isinstance(await slack.runtime.mentorship.claim(taker, request.id), Ok)
    await slack.settle()
    failed = [c for c in slack.fake.calls_to("chat.update") if c.args.get("ts") == dm["ts"]]
    assert len(failed) == 1 and failed[0].ok is False
    async with slack.runtime.db.transaction() as session:
        [retired] = (
            await session.scalars(select(Notification).where(Notification.kind == "claim_retired"))
        ).all()
    assert retired.status == "failed" and retired.failed_reason == "message_not_found"
    await slack.runtime.delivery.run_once()
    assert len([c for c in slack.fake.calls_to("chat.update") if c.args.get("ts") == dm["ts"]]) == 1
