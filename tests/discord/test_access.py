"""Who may do what, checked server-side on every click: every refusal is polite, ephemeral and
changes nothing. And many mentors clicking Claim in the same instant: exactly one winner."""

from __future__ import annotations

import discord
import pytest

from bot.domain import Status
from bot.messages import Action, Button
from modals.discord import button_view
from storage import repository as repo
from tests.discord.conftest import World, click_at_once, planted_button


async def status_of(world: World, request_id: int) -> tuple[Status, str | None]:
    async with world.runtime.db.transaction() as session:
        view = await repo.request_view(session, request_id)
    assert view is not None
    return view.status, view.claimed_by.external_id if view.claimed_by else None


async def test_non_mentor_cannot_claim(world: World) -> None:
    rid, _ = await world.post_request()
    refused = await world.ola.click(await world.card(rid), label="Claim")
    assert refused.response.ephemeral
    assert refused.response.content == "Only mentors can do that. Ask an admin if you'd like to mentor."
    assert await status_of(world, rid) == (Status.OPEN, None)


async def test_mentor_role_is_checked_on_every_click(world: World) -> None:
    """Losing the role takes effect at the next click (no cached permission)."""
    rid, _ = await world.post_request()
    world.env.backend.remove_member_role(world.guild.id, world.mia.id, world.mentor_role.id)
    await world.env.settle()
    refused = await world.mia.click(await world.card(rid), label="Claim")
    assert refused.response.content.startswith("Only mentors can do that.")
    world.env.backend.add_member_role(world.guild.id, world.mia.id, world.mentor_role.id)
    await world.env.settle()
    claimed = await world.mia.click(await world.card(rid), label="Claim")
    assert claimed.response.content.startswith("You claimed request")


async def test_student_cannot_claim_own_request_even_as_mentor(world: World) -> None:
    rid, _ = await world.post_request(world.max)
    refused = await world.max.click(await world.card(rid), label="Claim")
    assert refused.response.content == "You can't claim your own request."


async def test_non_owner_cannot_cancel(world: World) -> None:
    """Nobody else is ever shown a Cancel button for Sam's request; a forged click is refused."""
    rid, _ = await world.post_request()
    planted = await planted_button(world, Action.CANCEL, str(rid), "Cancel request")
    refused = await world.ola.click(planted, label="Cancel request")
    assert refused.response.ephemeral
    assert refused.response.content == "Only the student who made this request can do that."
    mentor = await world.mia.click(planted, label="Cancel request")
    assert mentor.response.content == "Only the student who made this request can do that."
    assert await status_of(world, rid) == (Status.OPEN, None)


async def test_other_mentor_cannot_schedule_release_or_rate(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    card = await world.card(rid)

    refused = await world.max.click(card, label="Schedule directly")
    assert refused.modal is None  # no form for someone who may not submit it
    assert refused.response.ephemeral
    assert refused.response.content == "Only Mia Mentor, who claimed this request, can do that."
    released = await world.max.click(card, label="Release")
    assert released.response.content == "Only Mia Mentor, who claimed this request, can do that."
    planted = await planted_button(world, Action.RATE, f"{rid}:1", "★")
    rated = await world.max.click(planted, label="★")
    assert rated.response.content == "Only the student who made this request can do that."
    assert await status_of(world, rid) == (Status.CLAIMED, str(world.mia.id))


async def test_schedule_form_is_checked_again_on_submit(world: World) -> None:
    """Mia opens the form, then releases from elsewhere: the stale form changes nothing."""
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.click(await world.card(rid), label="Release")
    late = await world.mia.submit_modal(shown, {"starts_at": "2030-01-09 15:00"})
    assert late.response.content == "This request is open now, so there's nothing to do here."
    assert await status_of(world, rid) == (Status.OPEN, None)


async def test_unknown_request_and_other_server(world: World) -> None:
    rid, _ = await world.post_request()
    planted = await planted_button(world, Action.CLAIM, "999", "Claim")
    missing = await world.mia.click(planted, label="Claim")
    assert missing.response.content == "I couldn't find that request."

    # A request of this server seen from another server (same bot) does not exist there.
    elsewhere = world.env.create_guild("Elsewhere")
    channel = elsewhere.create_text_channel("general")
    role = elsewhere.create_role("Mentor")
    world.settings.discord_mentor_role_id = role.id
    stranger = elsewhere.add_member(world.env.create_user("eve"), roles=[role])
    await world.env.settle()
    bot_channel = world.env.bot.get_channel(channel.id)
    assert isinstance(bot_channel, discord.TextChannel)
    planted = await bot_channel.send("Buttons", view=button_view([Button("Claim", Action.CLAIM, str(rid))]))
    await world.env.settle()
    foreign = await stranger.click(planted, label="Claim")
    assert foreign.response.content == "I couldn't find that request."


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_simultaneous_claims_have_exactly_one_winner(world: World) -> None:
    mentors = [world.mia, world.max]
    for n in range(18):
        user = world.env.create_user(f"mentor{n}", global_name=f"Mentor {n}")
        mentors.append(world.guild.add_member(user, roles=[world.mentor_role]))
    await world.env.settle()
    rid, _ = await world.post_request()

    results = await click_at_once(world.env, mentors, await world.card(rid), f"mm:claim:{rid}")
    replies = [r.response.content for r in results]
    winners = [i for i, text in enumerate(replies) if text.startswith("You claimed request")]
    assert len(winners) == 1, replies
    winner = mentors[winners[0]]
    losers = [text for i, text in enumerate(replies) if i != winners[0]]
    assert losers == [f"Already claimed by {winner.user.global_name}."] * (len(mentors) - 1)
    assert all(r.response.ephemeral for r in results)
    assert await status_of(world, rid) == (Status.CLAIMED, str(winner.id))

    await world.deliver()
    assert [m.content for m in world.dms(world.sam)].count("A mentor claimed your request") == 1
    assert f"<@{winner.id}>" in {f.value for f in (await world.card(rid)).embeds[0].fields}
    world.env.raise_errors()
