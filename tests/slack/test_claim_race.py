"""50 mentors click Claim on one card at the same moment: one winner, 49 told who has it."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from storage.models import Member, Request
from tests.slack.harness import MENTORS, SlackHarness, find_button
from tests.slack.test_flow import _request

CLICKERS = [f"UM{n:02d}" for n in range(50)]


async def test_fifty_concurrent_claims(slack: SlackHarness) -> None:
    fake = slack.fake
    for user in CLICKERS:
        fake.add_user(user, name=f"mentor{user[2:]}")
    fake.channels[MENTORS]["members"].extend(CLICKERS)
    await _request(slack)
    card = fake.messages[MENTORS][0]
    claim = find_button(card["blocks"], "mm_claim")
    members_calls = len(fake.calls_to("conversations.members"))

    payloads = [slack.click_payload(user, claim, channel=MENTORS, message_ts=card["ts"]) for user in CLICKERS]
    answers = await asyncio.gather(*(slack.interact(p) for p in payloads))
    assert [a.status for a in answers] == [200] * 50
    await slack.settle()

    texts = [slack.reply_text(answer) for answer in answers]
    winners = [user for user, text in zip(CLICKERS, texts, strict=True) if "You claimed" in text]
    assert len(winners) == 1, texts
    losers = [text for text in texts if f"Already claimed by mentor{winners[0][2:]}" in text]
    assert len(losers) == 49, texts
    assert all(len(slack.replies(a)) == 1 for a in answers)  # everyone told exactly once

    async with slack.runtime.db.transaction() as session:
        request = (await session.scalars(select(Request))).one()
        claimer = await session.get(Member, request.claimed_by_id)
    assert request.status == "claimed" and claimer is not None and claimer.external_id == winners[0]
    # One card, updated once for the winner; the membership list was fetched once for all 50.
    assert len(fake.messages[MENTORS]) == 1
    assert f"<@{winners[0]}>" in str(fake.messages[MENTORS][0]["blocks"])
    assert len(fake.calls_to("conversations.members")) - members_calls <= 1
    assert fake.validation_errors == []
