"""The daily digest on SimCord: one message in the mentors' channel listing the open requests,
each with a Claim button that claims like the card's; a request taken meanwhile is refused."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.sweeps import Sweeps
from tests.discord.conftest import World


async def test_digest_lists_open_requests_and_claims_from_it(world: World) -> None:
    first, _ = await world.post_request(title="Mock interview")
    second, _ = await world.post_request(world.ola, title="Portfolio review")
    sweeps = Sweeps(world.runtime)
    world.clock.set(datetime(2030, 1, 8, 8, 59, tzinfo=UTC))
    assert await sweeps.run("digest") == 0
    world.clock.set(datetime(2030, 1, 8, 9, 0, tzinfo=UTC))
    assert await sweeps.run("digest") == 1
    await world.deliver()
    [digest] = [m for m in world.feed.history() if m.embeds and "Daily digest" in (m.embeds[0].title or "")]
    embed = digest.embeds[0]
    assert embed.title == "☀️ Daily digest: 2 requests waiting for a mentor"
    description = embed.description or ""
    assert f"#{first}" in description and "Mock interview" in description and "python" in description
    assert "Portfolio review" in description and "waited 24 h · target 24 h" in description
    labels = [c.label for row in digest.components for c in row.children]
    assert labels == [f"Claim #{first}", f"Claim #{second}"]
    assert digest.mentions == [] and not digest.mention_everyone

    claimed = await world.mia.click(digest, label=f"Claim #{second}")
    assert claimed.response.content.startswith(f"You claimed request #{second}.")
    await world.deliver()
    assert world.last_dm(world.ola).content == "A mentor claimed your request"
    late = await world.max.click(digest, label=f"Claim #{second}")
    assert late.response.content == "Already claimed by Mia Mentor."
    assert await sweeps.run("digest") == 0  # once a day
