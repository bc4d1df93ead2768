"""Post again, through real discord.py on SimCord: one expired request is posted again once, even
when the student clicks twice, one click after the other or both at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.models import Request
from tests.discord.conftest import World, click_at_once


async def _open_ids(world: World) -> list[int]:
    async with world.runtime.db.transaction() as session:
        return list((await session.scalars(select(Request.id).where(Request.status == "open"))).all())


def _cards_titled(world: World, title: str) -> int:
    return sum(title in (m.embeds[0].description or "") for m in world.feed.history() if m.embeds)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_post_again_twice_posts_one_copy(world: World) -> None:
    rid, _ = await world.post_request(world.ola, title="Portfolio review please")
    world.clock.advance(days=8)
    assert await world.runtime.mentorship.expire_due() == 1
    await world.deliver()
    expired = world.last_dm(world.ola)
    assert expired.content == "Your request expired"

    first = await world.ola.user.click(expired, label="Post again")
    assert first.response.content == f"Posted again as request #{rid + 1}. Mentors have been told."
    second = await world.ola.user.click(expired, label="Post again")
    assert second.response.ephemeral
    assert second.response.content == (
        f"Request #{rid} was already posted again as request #{rid + 1}, so nothing new was posted."
    )
    await world.deliver()
    assert await _open_ids(world) == [rid + 1]
    assert _cards_titled(world, "Portfolio review please") == 2  # the expired card and one copy


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_concurrent_double_click_on_post_again(world: World) -> None:
    rid, _ = await world.post_request(world.ola, title="Portfolio review please")
    world.clock.advance(days=8)
    assert await world.runtime.mentorship.expire_due() == 1
    await world.deliver()
    expired = world.last_dm(world.ola)

    [custom_id] = [b.custom_id for row in expired.components for b in row.children if b.label == "Post again"]
    assert custom_id is not None
    # Both clicks reach the bot before it runs either (a double click on a slow connection).
    clicks = await click_at_once(world.env, [world.ola.user, world.ola.user], expired, custom_id)
    told = sorted(c.response.content for c in clicks)
    assert told == [
        f"Posted again as request #{rid + 1}. Mentors have been told.",
        f"Request #{rid} was already posted again as request #{rid + 1}, so nothing new was posted.",
    ]
    await world.deliver()
    assert await _open_ids(world) == [rid + 1]
    assert _cards_titled(world, "Portfolio review please") == 2


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_dashboard_drops_post_again_once_it_was_used(world: World) -> None:
    """After Post again, `/mini-session list` no longer offers Post again on the expired request
    (a click could only be refused) and says where the copy is."""
    rid, _ = await world.post_request(world.ola, title="Portfolio review please")
    world.clock.advance(days=8)
    assert await world.runtime.mentorship.expire_due() == 1
    await world.deliver()
    await world.ola.user.click(world.last_dm(world.ola), label="Post again")
    await world.deliver()

    listed = await world.ola.slash(world.lobby, "mini-session list")
    labels = [b.label for row in listed.response.message.components for b in row.children]
    assert f"#{rid} Post again" not in labels, labels
    assert f"#{rid + 1} Cancel request" in labels
    text = "\n".join(e.description or "" for e in listed.response.embeds)
    assert f"Posted again as request #{rid + 1}." in text
