"""The daily digest through Slack over signed HTTP, on SQLite and PostgreSQL: one message in the
mentors' channel that passes the fake Slack's Block Kit checks, with a Claim button per request
that claims like the card's; a request taken meanwhile gets the polite refusal."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.clock import ManualClock
from jobs.sweeps import Sweeps
from storage.models import Request
from tests.slack.harness import (
    MENTOR,
    MENTOR_2,
    MENTORS,
    OTHER,
    REQUEST_VALUES,
    STUDENT,
    SlackHarness,
    block_text,
)


async def _request(slack: SlackHarness, user: str, **overrides: str) -> None:
    await slack.command(user)
    await slack.settle()
    answer = await slack.submit(user, slack.latest_view("mm_request"), {**REQUEST_VALUES, **overrides})
    assert answer.status == 200 and answer.text == "", answer.text
    await slack.settle()


async def test_digest_in_the_feed_and_claim_from_it(slack: SlackHarness, clock: ManualClock) -> None:
    await _request(slack, STUDENT, title="Mock interview <!channel>")
    await _request(slack, OTHER, title="Portfolio review", urgency="low", tags="design")
    async with slack.runtime.db.transaction() as session:
        first, second = (await session.scalars(select(Request.id).order_by(Request.id))).all()
    clock.set(datetime(2030, 1, 8, 9, 0, tzinfo=UTC))
    sweeps = Sweeps(slack.runtime)
    assert await sweeps.run("digest") == 1
    await slack.settle()
    message = slack.fake.messages[MENTORS][-1]
    text = block_text(message["blocks"])
    assert message["text"].startswith("☀️ Daily digest: 2 requests waiting for a mentor")
    assert "Mock interview &lt;!channel&gt;" in text  # user text stays inert
    assert "waited 24 h · target 4 h (missed)" in text and "waited 24 h · target 72 h" in text
    claims = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in claims] == [
        ("mm_claim", str(first), f"Claim #{first}"),
        ("mm_claim.2", str(second), f"Claim #{second}"),
    ]

    answer = await slack.click_in(MENTOR, MENTORS, "mm_claim.2", str(second))
    await slack.settle()
    assert "You claimed “Portfolio review”" in slack.reply_text(answer)
    async with slack.runtime.db.transaction() as session:
        claimed = await session.get(Request, second)
    assert claimed is not None and claimed.status == "claimed"
    answer = await slack.click_in(MENTOR_2, MENTORS, "mm_claim.2", str(second))
    await slack.settle()
    assert "Already claimed by mia" in slack.reply_text(answer)
    assert await sweeps.run("digest") == 0
