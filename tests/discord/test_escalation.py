"""The escalation ladder on Discord (SimCord): the circle widens at half the target, the feed's
escalation pings exactly the DISCORD_ESCALATION_ROLE_ID role (in the content, where mentions
ping), the student is told, and a claim edits every Claim message so it offers Claim no more."""

from __future__ import annotations

import discord

from bot.domain import Status
from storage import repository as repo
from tests.discord.conftest import World
from tests.discord.test_matching import save_profile


def fits_you(world: World, who: object) -> list[discord.Message]:
    return [m for m in world.dms(who) if (m.content or "").startswith("A request that fits you")]  # type: ignore[arg-type]


async def test_ladder_pings_the_role_and_retires_claim_buttons(world: World) -> None:
    leads = world.guild.create_role("Mentor leads")
    world.settings.discord_escalation_role_id = str(leads.id)
    world.settings.match_notify_count = 1
    await save_profile(world, world.mia, "python")
    await save_profile(world, world.max, "python")
    rid, _ = await world.post_request()
    async with world.runtime.db.transaction() as session:
        request = await repo.request_view(session, rid)
    assert request is not None and request.claim_target_at is not None
    first = [who for who in (world.mia, world.max) if fits_you(world, who)]
    assert len(first) == 1
    [second] = [who for who in (world.mia, world.max) if who not in first]

    world.clock.set(request.created_at + (request.claim_target_at - request.created_at) / 2)
    assert await world.runtime.mentorship.nudge_due() == 1
    await world.deliver()
    assert len(fits_you(world, second)) == 1  # widened to the next mentor

    world.clock.set(request.claim_target_at)
    assert await world.runtime.mentorship.nudge_due() == 1
    await world.deliver()
    escalation = world.feed.history()[-1]
    assert escalation.content == f"<@&{leads.id}>"
    assert escalation.embeds[0].title == "🚨 Still unclaimed after 24 h"
    stored = world.env.backend.get_message(world.feed.id, escalation.id)
    assert stored.ping_role_ids == [leads.id] and stored.ping_user_ids == []
    assert escalation.mention_everyone is False
    assert [c.label for row in escalation.components for c in row.children] == ["Claim"]
    assert world.last_dm(world.sam).content == "More people have been asked"
    assert await world.runtime.mentorship.nudge_due() == 0
    waiting = next(f for f in (await world.card(rid)).embeds[0].fields if f.name == "Waiting")
    assert waiting.value == "24 h · target 24 h (missed)"

    claimed = await world.mia.click(escalation, label="Claim")
    assert claimed.response.content.startswith(f"You claimed request #{rid}.")
    await world.deliver()
    [retired] = [m for m in world.feed.history() if m.id == escalation.id]
    assert retired.embeds[0].title == "Claimed by Mia Mentor" and retired.components == []
    # Each suggestion DM, edited in place: Mia's own says she has it, not "claimed by Mia".
    for who, says in ((world.mia, "You claimed this"), (world.max, "Claimed by Mia Mentor")):
        assert fits_you(world, who) == []
        [dm] = [m for m in world.dms(who) if (m.content or "").startswith(says)]
        assert dm.components == []
    assert not [m for m in world.dms(world.mia) if (m.content or "").startswith("Claimed by")]
    card = await world.card(rid)
    assert any(f.name == "Status" and f.value == Status.CLAIMED.badge for f in card.embeds[0].fields)


async def test_without_a_role_the_admins_are_pinged(world: World) -> None:
    world.settings.admin_user_ids = str(world.ada.id)
    await world.post_request()  # nobody has a profile: escalated at once
    assert await world.runtime.mentorship.nudge_due() == 1
    await world.deliver()
    escalation = world.feed.history()[-1]
    assert escalation.content == f"<@{world.ada.id}>"
    assert escalation.embeds[0].title == "🚨 No mentor's profile fits this request"
    stored = world.env.backend.get_message(world.feed.id, escalation.id)
    assert stored.ping_user_ids == [world.ada.id] and stored.ping_role_ids == []
    [posted] = [m for m in world.dms(world.sam) if m.content == "Your request is posted"]
    await world.sam.user.click(posted, label="Cancel request")
    await world.deliver()
    [retired] = [m for m in world.feed.history() if m.id == escalation.id]
    assert retired.embeds[0].title == "No longer open" and retired.components == []
    assert retired.content in (None, "")  # the edit pings nobody again


def invite_permissions_only(world: World) -> None:
    """The bot's role as the invite URL grants it (View Channels, Send Messages, Embed Links)."""
    from handlers.discord import BOT_PERMISSIONS

    backend = world.env.backend
    [bot_role] = [r for r in backend.get_guild(world.guild.id).roles.values() if r.managed]
    backend.edit_role(world.guild.id, bot_role.id, {"permissions": BOT_PERMISSIONS.value})


async def test_an_escalation_role_nobody_can_mention_is_warned_of_at_start(world: World) -> None:
    """Discord makes a new role not mentionable, and the bot's invite grants no Mention
    @everyone: the escalation's <@&role> would notify nobody. The start-up warns (and still
    starts: escalations are posted in the feed all the same)."""
    from handlers.discord_preflight import check_server, escalation_role_warning

    invite_permissions_only(world)
    leads = world.guild.create_role("Mentor leads")  # Discord's default: not mentionable
    world.settings.discord_escalation_role_id = str(leads.id)
    await world.env.settle()
    assert check_server(world.env.bot, world.settings, None) is None
    warning = escalation_role_warning(world.env.bot, world.settings)
    assert warning is not None and f"DISCORD_ESCALATION_ROLE_ID={leads.id}" in warning, warning
    assert "Allow anyone to @mention this role" in warning
    world.env.backend.edit_role(world.guild.id, leads.id, {"mentionable": True})
    await world.env.settle()
    assert escalation_role_warning(world.env.bot, world.settings) is None
