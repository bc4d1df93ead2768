"""Post again, on Slack over signed HTTP: one expired request is posted again once, even when the
student clicks twice, one click after the other or both at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from storage.models import Request
from tests.slack.harness import MENTORS, STUDENT, SlackHarness, block_text, find_button
from tests.slack.test_flow import _request


async def _open_titles(slack: SlackHarness) -> list[str]:
    async with slack.runtime.db.transaction() as session:
        rows = await session.scalars(
            select(Request.title).where(Request.status == "open").order_by(Request.id)
        )
        return list(rows.all())


def _cards(slack: SlackHarness, title: str) -> int:
    return sum(title in block_text(m.get("blocks", [])) for m in slack.fake.messages[MENTORS])


async def test_post_again_twice_posts_one_copy(slack: SlackHarness) -> None:
    await _request(slack, title="Help with my resume please")
    slack.runtime.clock.advance(days=8)  # type: ignore[attr-defined]
    assert await slack.runtime.mentorship.expire_due() == 1
    await slack.settle()
    expired = slack.dms(STUDENT)[-1]
    button = find_button(expired["blocks"], "mm_repost")

    first = await slack.click(STUDENT, button, channel="DUSTUDENT")
    await slack.settle()
    assert "Posted again as request #2" in slack.reply_text(first)
    second = await slack.click(STUDENT, button, channel="DUSTUDENT")
    await slack.settle()
    assert (
        slack.reply_text(second).strip()
        == "Request #1 was already posted again as request #2, so nothing new was posted."
    )
    assert await _open_titles(slack) == ["Help with my resume please"]
    assert _cards(slack, "Help with my resume please") == 2  # the expired card and its one copy


async def test_concurrent_double_click_on_post_again(slack: SlackHarness) -> None:
    await _request(slack, title="Mock interview for a backend role")
    slack.runtime.clock.advance(days=8)  # type: ignore[attr-defined]
    assert await slack.runtime.mentorship.expire_due() == 1
    await slack.settle()
    button = find_button(slack.dms(STUDENT)[-1]["blocks"], "mm_repost")

    answers = await asyncio.gather(*(slack.click(STUDENT, button, channel="DUSTUDENT") for _ in range(2)))
    await slack.settle()
    told = sorted(slack.reply_text(a).strip() for a in answers)
    assert told[0].startswith("Posted again as request #2")
    assert told[1] == "Request #1 was already posted again as request #2, so nothing new was posted."
    assert await _open_titles(slack) == ["Mock interview for a backend role"]
    assert _cards(slack, "Mock interview for a backend role") == 2
    posted = [m for m in slack.dms(STUDENT) if "is posted" in block_text(m["blocks"])]
    assert len(posted) == 2, [block_text(m["blocks"]) for m in slack.dms(STUDENT)]  # the first, and one copy


async def test_the_dashboards_drop_post_again_once_it_was_used(slack: SlackHarness) -> None:
    """After Post again, the expired request's row on `/mini-session list` and the App Home no
    longer offers Post again (a click could only be refused) and says where the copy is."""
    await _request(slack, title="Help with my resume please")
    slack.runtime.clock.advance(days=8)  # type: ignore[attr-defined]
    assert await slack.runtime.mentorship.expire_due() == 1
    await slack.settle()
    button = find_button(slack.dms(STUDENT)[-1]["blocks"], "mm_repost")
    await slack.click(STUDENT, button, channel="DUSTUDENT")
    await slack.settle()

    answer = await slack.command(STUDENT, "list")
    await slack.settle()
    await slack.home_opened(STUDENT)
    await slack.settle()
    for blocks in (
        [b for r in slack.replies(answer) for b in r.get("blocks", [])],
        slack.fake.home_tabs[STUDENT]["blocks"],
    ):
        values = [
            e["value"]
            for b in blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "mm_repost"
        ]
        assert values == [], block_text(blocks)
        assert "Posted again as request #2" in block_text(blocks)
