"""Matching on Discord (SimCord): the suggested mentors are named on the card and DM'd with a
Claim button; losing the mentor role takes a mentor out of the suggestions at once."""

from __future__ import annotations

import pytest
import simcord

from tests.discord.conftest import World
from tests.discord.test_delivery import close_dms


async def save_profile(world: World, who: simcord.MemberActor, skills: str) -> None:
    shown = await who.slash(world.lobby, "mini-session profile")
    saved = await who.submit_modal(shown, {"skills": skills, "capacity": "3", "away_until": ""})
    assert saved.response.content.startswith("Saved:"), saved.response.content


async def test_suggested_mentors_on_the_card_and_in_dms(world: World) -> None:
    await save_profile(world, world.mia, "python")
    await save_profile(world, world.max, "python, interviews")
    request_id, _ = await world.post_request()
    card = await world.card(request_id)
    suggested = next(f for f in card.embeds[0].fields if f.name == "Suggested")
    assert suggested.value.startswith(f"<@{world.max.id}>, <@{world.mia.id}>")  # two shared tags first
    assert "python, interviews" in suggested.value
    dm = world.last_dm(world.mia)
    assert dm.content.startswith("A request that fits you")
    claimed = await world.mia.user.click(dm, label="Claim")
    assert claimed.response.content.startswith(f"You claimed request #{request_id}.")


async def test_a_mentor_without_the_role_is_not_suggested(world: World) -> None:
    await save_profile(world, world.mia, "python")
    await save_profile(world, world.max, "python")
    world.env.backend.remove_member_role(world.guild.id, world.max.id, world.mentor_role.id)
    request_id, _ = await world.post_request()
    card = await world.card(request_id)
    suggested = next(f for f in card.embeds[0].fields if f.name == "Suggested")
    assert str(world.mia.id) in suggested.value and str(world.max.id) not in suggested.value
    assert world.dms(world.max) == []


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_suggested_mentor_with_dms_closed_is_no_concern_of_the_student(world: World) -> None:
    """Max was only offered the request; the student has nobody to contact about it."""
    await save_profile(world, world.max, "python, interviews")
    close_dms(world, world.max)
    request_id, _ = await world.post_request()
    await world.deliver()
    [offer] = await world.outbox(request_id=request_id, kind="match_suggested")
    assert (offer.status, offer.failed_reason) == ("failed", "DMs closed (50007)")  # still recorded
    assert [m.content for m in world.dms(world.sam)] == ["Your request is posted"]
    mine = await world.sam.slash(world.lobby, "mini-session list")
    assert "Couldn't DM" not in (mine.response.embeds[0].description or "")
