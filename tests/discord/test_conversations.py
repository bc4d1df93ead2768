"""The shared conversation on Discord (SimCord): a private thread in DISCORD_SESSIONS_CHANNEL_ID
with the student and the mentor, made once per claim; scheduling news there as well as in the
DMs; a closing line on cancel; DMs only when the variable is unset or the bot may not make
private threads (and the dashboards say why)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import aiohttp
import discord
import pytest
from simcord.builders import ChannelHandle

from jobs.delivery import Delivery
from tests.discord.conftest import World, attach_sender


def sessions_channel(world: World, **overwrites: bool) -> ChannelHandle:
    """The channel the threads go in; `overwrites` deny the bot permissions there."""
    bot = world.env.bot.user
    assert bot is not None
    deny = {bot: discord.PermissionOverwrite(**overwrites)} if overwrites else None
    channel = world.guild.create_text_channel("sessions", overwrites=deny)
    world.settings.discord_sessions_channel_id = channel.id
    return channel


def text_of(message: discord.Message) -> str:
    return "\n".join([message.content or "", *(e.description or "" for e in message.embeds)])


async def claim(world: World) -> int:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    return rid


async def test_a_claim_makes_one_private_thread_with_both_people(world: World) -> None:
    sessions = sessions_channel(world)
    rid = await claim(world)
    [thread] = sessions.threads
    stored = world.env.backend.get_thread(thread.id)
    assert stored.type == discord.ChannelType.private_thread.value
    assert {world.sam.id, world.mia.id} <= set(stored.thread_members)
    assert world.max.id not in stored.thread_members
    [summary] = thread.history()
    assert "A place to talk about your session" in text_of(summary)
    assert "Mock interview for a backend role" in text_of(summary)
    assert summary.embeds[0].fields  # the request's details
    assert not summary.components  # buttons stay in each person's DM
    # The student's DM came as before.
    assert "claimed your request" in text_of(world.last_dm(world.sam))

    # Scheduling news goes to the thread as well as both DMs.
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-09 15:00"})
    await world.deliver()
    assert world.last_dm(world.sam).content == "Your mentorship session is scheduled"
    assert thread.history()[-1].content == "Session scheduled"
    stamp = int(datetime(2030, 1, 9, 15, tzinfo=UTC).timestamp())
    assert f"<t:{stamp}:F>" in text_of(thread.history()[-1])  # each reader's own zone

    # The student cancels: the thread gets its closing line.
    gone = await world.sam.user.click(world.last_dm(world.sam), label="Cancel request")
    assert gone.response.content == f"Request #{rid} is cancelled."
    await world.deliver()
    closing = text_of(thread.history()[-1])
    assert "This conversation is closed: " in closing and "Sam Student cancelled the request" in closing
    assert len(sessions.threads) == 1 and len(thread.history()) == 3
    assert {n.status for n in await world.outbox(audience="shared")} == {"sent"}


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_proposed_times_and_the_pick_are_told_in_the_thread(world: World) -> None:
    sessions = sessions_channel(world)
    rid = await claim(world)
    [thread] = sessions.threads
    shown = await world.mia.click(await world.card(rid), label="Propose times")
    values = {"time_1": "2030-01-08 15:00", "time_2": "2030-01-09 15:00", "note": "@everyone bring code"}
    await world.mia.submit_modal(shown, values)
    await world.deliver()
    offer = world.last_dm(world.sam)
    assert offer.content == "Your mentor proposed times"
    pick = offer.components[0].children[1].label  # type: ignore[union-attr]
    await world.sam.user.click(offer, label=pick)
    await world.deliver()
    headlines = [m.content for m in thread.history()]
    assert headlines == [
        "A place to talk about your session",
        "Times proposed",
        "Time picked, session scheduled",
    ], headlines
    assert "bring code" in text_of(thread.history()[1])
    assert world.last_dm(world.mia).content == "Your mentorship session is scheduled"


async def test_unset_sessions_channel_means_dms_only(world: World) -> None:
    assert world.settings.discord_sessions_channel_id is None
    await claim(world)
    assert await world.outbox(audience="shared") == []
    assert "claimed your request" in text_of(world.last_dm(world.sam))


async def test_no_permission_for_private_threads_means_dms_only_and_the_dashboard_says_so(
    world: World,
) -> None:
    sessions = sessions_channel(world, create_private_threads=False)
    rid = await claim(world)
    assert sessions.threads == []
    [opened] = await world.outbox(audience="shared")
    assert opened.status == "failed" and opened.attempts == 1  # not retried forever
    assert "private thread not possible" in (opened.failed_reason or "")
    assert "claimed your request" in text_of(world.last_dm(world.sam))
    listing = await world.mia.slash(world.lobby, "mini-session list")
    shown = "\n".join(e.description or "" for e in listing.response.embeds)
    assert "Couldn't open the shared conversation: private thread not possible" in shown, shown
    world.clock.advance(hours=1)
    assert (await world.deliver()).handled == 0
    assert rid


class _Killed(BaseException):
    """The worker dies between Discord making the thread and the outbox recording it."""


class DiesAfterMakingTheThread(Delivery):
    async def _opened(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        raise _Killed


async def test_a_crash_after_making_the_thread_finds_it_instead_of_making_another(world: World) -> None:
    sessions = sessions_channel(world)
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    doomed = DiesAfterMakingTheThread(world.runtime.db, world.clock)
    attach_sender(world.env.bot, _Runtime(doomed), world.settings)  # type: ignore[arg-type]
    with contextlib.suppress(_Killed):
        await doomed.run_once()
    await world.env.settle()
    assert len(sessions.threads) == 1 and sessions.threads[0].history() == []
    world.clock.advance(minutes=3)  # the dead worker's lease runs out
    await world.deliver()
    [thread] = sessions.threads
    assert [m.content for m in thread.history()] == ["A place to talk about your session"]
    stored = world.env.backend.get_thread(thread.id)
    assert {world.sam.id, world.mia.id} <= set(stored.thread_members)


class _Runtime:
    """Just enough of a Runtime for `attach_sender`: the delivery to add the sender to."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery


async def test_a_lost_answer_after_making_the_thread_finds_it_instead_of_making_another(
    world: World,
) -> None:
    """Discord made the thread but its answer never arrived (the connection dropped): the row is
    retried, and the retry finds the thread by its name instead of making a second one."""
    sessions = sessions_channel(world)
    http = world.env.bot.http
    make = http.start_thread_without_message
    made: list[object] = []

    async def made_then_lost(*args: Any, **kwargs: Any) -> Any:
        made.append(await make(*args, **kwargs))
        raise aiohttp.ServerDisconnectedError()

    http.start_thread_without_message = made_then_lost  # type: ignore[method-assign]
    rid = await claim(world)
    http.start_thread_without_message = make  # type: ignore[method-assign]
    [opened] = await world.outbox(audience="shared", kind="conversation_opened")
    assert opened.status == "pending" and opened.attempts == 1 and len(made) == 1
    world.clock.advance(minutes=5)
    await world.deliver()
    [thread] = sessions.threads
    assert [m.content for m in thread.history()] == ["A place to talk about your session"]
    assert rid
