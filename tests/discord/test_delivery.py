"""Delivery through the outbox on Discord: DMs closed, rate limits and server errors from the
simulated API, deleted cards; user text that tries to ping; and the database being down."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import discord
import pytest
import simcord
from simcord.backend.models import Overwrite
from simcord.enums import OverwriteType

from bot.clock import ManualClock
from bot.config import Settings
from bot.messages import Action
from bot.runtime import Runtime
from handlers.discord import build_bot
from modals.discord import OOPS
from storage.db import Database
from tests.discord.conftest import World, attach_sender, modal_fields, planted_button, request_values

MESSAGE_ROUTES = ("/messages", "/webhooks/")


def close_dms(world: World, who: simcord.MemberActor) -> None:
    """SimCord has no switch for "DMs closed": the DM route answers 403 / 50007, as Discord does."""
    world.env.inject_error(
        "POST",
        f"/channels/{who.user.dm_channel.id}/messages",
        status=403,
        code=50007,
        message="Cannot send messages to this user",
        times=None,
    )


def message_payloads(env: simcord.Env) -> list[tuple[str, dict[str, Any]]]:
    """Every message the bot sent or edited, as the JSON it put on the wire."""
    out = []
    for entry in env.http_requests:
        body = entry.json if isinstance(entry.json, dict) else None
        if body is None or entry.method not in ("POST", "PATCH"):
            continue
        if entry.path.endswith("/callback"):
            if body.get("type") in (4, 7):
                out.append((entry.path, body.get("data") or {}))
        elif any(route in entry.path for route in MESSAGE_ROUTES):
            out.append((entry.path, body))
    return out


def assert_nothing_can_ping(env: simcord.Env) -> None:
    sent = message_payloads(env)
    assert sent
    for path, body in sent:
        assert body.get("allowed_mentions", {}).get("parse") == [], (path, body.get("allowed_mentions"))
        assert not body["allowed_mentions"].get("roles"), path


async def test_dms_closed_is_recorded_and_both_sides_are_told(world: World) -> None:
    close_dms(world, world.sam)
    rid, _ = await world.post_request()
    [posted] = await world.outbox(request_id=rid, kind="request_posted")
    assert (posted.status, posted.failed_reason) == ("failed", "DMs closed (50007)")
    assert await world.card(rid)  # the card went out regardless

    await world.mia.click(await world.card(rid), label="Claim")
    stats = await world.deliver()
    assert stats.failed == 1 and stats.reasons == ["DMs closed (50007)"]
    await world.deliver()  # the notice to the other party
    notice = world.last_dm(world.mia)
    assert "Sam Student" in (notice.embeds[0].description or "")
    assert "DMs closed (50007)" in (notice.embeds[0].description or "")

    mine = await world.sam.slash(world.lobby, "mini-session list")
    assert "⚠️ Couldn't DM Sam Student: DMs closed (50007)" in (mine.response.embeds[0].description or "")
    mentoring = await world.mia.slash(world.lobby, "mini-session list")
    [section] = [e for e in mentoring.response.embeds if e.title == "You're mentoring"]
    assert "Couldn't DM Sam Student: DMs closed (50007)" in (section.description or "")
    # Failed for good: later passes don't retry it.
    world.clock.advance(hours=1)
    assert (await world.deliver()).handled == 0


async def test_dm_to_a_bot_account_is_undeliverable(world: World) -> None:
    robo = world.guild.add_member(world.env.create_user("robo", bot=True))
    await world.env.settle()
    rid, _ = await world.post_request(robo, deliver=False)
    stats = await world.deliver()
    assert stats.sent == 1 and stats.reasons == ["DMs closed (50007)"]
    assert rid


@pytest.mark.parametrize("status", [429, 500, 502])
async def test_injected_rate_limits_and_server_errors_are_retried(world: World, status: int) -> None:
    world.env.inject_error("POST", f"/channels/{world.feed.id}/messages", status=status, times=1)
    world.env.inject_error(
        "POST", f"/channels/{world.sam.user.dm_channel.id}/messages", status=status, times=1
    )
    rid, _ = await world.post_request(deliver=False)
    first = await world.deliver()
    assert (first.sent, first.retried, first.failed) == (0, 2, 0)
    [card] = await world.outbox(request_id=rid, kind="card")
    assert card.status == "pending" and card.attempts == 1
    assert str(status) in (card.last_error or "")
    assert world.feed.history() == []

    assert (await world.deliver()).handled == 0  # backing off: not due yet
    world.clock.advance(minutes=1)
    second = await world.deliver()
    assert (second.sent, second.retried) == (2, 0)
    assert [m.id for m in world.feed.history()] == [(await world.card(rid)).id]
    assert [m.content for m in world.dms(world.sam)] == ["Your request is posted"]


async def test_retry_after_from_a_429_is_honoured(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """SimCord's injected 429 carries no headers; patch its (internal) fake response to add them."""
    import simcord.http.client as sim_client

    original = sim_client._FakeResponse.__init__

    def with_retry_after(self: Any, status: int) -> None:
        original(self, status)
        if status == 429:
            self.headers = {"Retry-After": "120", "X-RateLimit-Scope": "user"}

    monkeypatch.setattr(sim_client._FakeResponse, "__init__", with_retry_after)
    world.env.inject_error("POST", f"/channels/{world.feed.id}/messages", status=429, times=1)
    rid, _ = await world.post_request(deliver=False)
    await world.deliver()
    [card] = await world.outbox(request_id=rid, kind="card")
    assert card.next_attempt_at - world.clock.now() >= timedelta(seconds=120)
    world.clock.advance(seconds=60)
    assert (await world.deliver()).sent == 0
    world.clock.advance(seconds=61)
    await world.env.advance_time(121)  # the worker also pauses the channel on its own clock
    assert (await world.deliver()).sent == 1


async def test_every_outbox_send_carries_its_row_as_nonce(world: World) -> None:
    """After a crash Discord itself deduplicates a re-send of an in-doubt row (enforce_nonce)."""
    rid, _ = await world.post_request()
    rows = {row.kind: row.id for row in await world.outbox(request_id=rid)}
    sends = [r for r in world.env.http_requests if r.method == "POST" and r.path.endswith("/messages")]
    assert [(r.json["nonce"], r.json["enforce_nonce"]) for r in sends] == [
        (f"mm{rows['card']}", True),
        (f"mm{rows['request_posted']}", True),
    ]


def bot_denied(world: World, channel_id: int, **denied: bool) -> None:
    """A moderator edits the channel's permissions for the bot while it runs (none: given back)."""
    bot = world.env.bot.user
    assert bot is not None
    allow, deny = discord.PermissionOverwrite(**denied).pair()
    overwrite = Overwrite(target_id=bot.id, type=OverwriteType.MEMBER, allow=allow.value, deny=deny.value)
    world.env.backend.edit_channel(channel_id, {}, overwrites=[overwrite] if denied else [])


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_card_waits_for_the_mentors_channel_however_long_it_takes(world: World) -> None:
    """docs/operations.md: a permission taken away while the bot runs leaves the card waiting
    in the outbox; it is posted once an admin gives the permission back, not given up on."""
    bot_denied(world, world.feed.id, view_channel=False)
    await world.env.settle()
    rid, _ = await world.post_request()
    for _ in range(24):  # a night without access
        world.clock.advance(minutes=30)
        await world.deliver()
    [card] = await world.outbox(request_id=rid, kind="card")
    assert card.status == "pending", card.failed_reason
    assert "can't post in the mentors' channel (403" in (card.last_error or "")
    assert world.feed.history() == []

    bot_denied(world, world.feed.id)  # given back
    await world.env.settle()
    world.clock.advance(minutes=23)  # the longest wait: 15 minutes, with up to half again of jitter
    assert (await world.deliver()).sent == 1
    assert [m.id for m in world.feed.history()] == [(await world.card(rid)).id]


async def test_a_card_whose_channel_was_deleted_is_not_waited_for(world: World) -> None:
    """Only posting waits for the mentors' channel: a card whose channel is gone is gone too."""
    rid, _ = await world.post_request()
    world.env.backend.delete_channel(world.feed.id)
    await world.env.settle()
    cancelled = await world.sam.user.click(world.last_dm(world.sam), label="Cancel request")
    assert cancelled.response.content == f"Request #{rid} is cancelled."
    stats = await world.deliver()
    assert "the card was deleted (10003)" in stats.reasons
    assert [row.status for row in await world.outbox(request_id=rid, kind="card")] == ["sent", "failed"]


async def test_a_deleted_card_is_not_reposted(world: World) -> None:
    rid, _ = await world.post_request()
    card = await world.card(rid)
    await world.mia.click(card, label="Claim")
    await world.ada.delete(card)
    stats = await world.deliver()
    assert "the card was deleted (10008)" in stats.reasons
    assert world.feed.history() == []


async def test_mention_injection_cannot_ping(world: World) -> None:
    role, mia = world.mentor_role, world.mia
    title = f"@everyone <@&{role.id}> <@{mia.id}> @here hi"
    description = f"[phish](https://evil.example) **bold** <#{world.lobby.id}> @Everyone please help me out"
    rid, posted = await world.post_request(title=title, description=description, tags="@everyone, <@&1>")
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()

    card = await world.card(rid)
    text = card.embeds[0].description or ""
    assert "@\u200beveryone" in text and "@\u200bhere" in text and "@\u200bEveryone" in text
    assert f"<\u200b@\u200b&{role.id}>" in text and f"<\u200b@\u200b{mia.id}>" in text
    assert f"<\u200b#{world.lobby.id}>" in text
    assert "\\[phish](https://evil.example)" in text  # not a masked link: the real URL shows
    assert "\\*\\*bold\\*\\*" in text
    stored = world.env.backend.get_message(world.feed.id, card.id)
    assert stored.ping_user_ids == [] and stored.ping_role_ids == []
    assert card.mention_everyone is False and card.role_mentions == []
    dm = world.last_dm(world.sam)
    assert dm.mention_everyone is False
    assert "@\u200beveryone" in (posted.response.embeds[0].description or "")
    assert_nothing_can_ping(world.env)


class TestDatabaseDown:
    """The database is unreachable: every interaction still gets a polite ephemeral answer, what
    the user typed is kept for "Try again", and nothing crashes."""

    @pytest.fixture
    def simcord_bot(self, settings: Settings, clock: ManualClock, runtime: Runtime) -> discord.Client:
        broken = Runtime(settings, clock=clock, db=Database("sqlite+aiosqlite:////nonexistent/dir/mm.db"))
        return attach_sender(build_bot(settings, runtime=broken), broken, settings)

    async def test_every_entry_point_answers_politely(self, world: World) -> None:
        sam = world.sam
        listed = await sam.slash(world.lobby, "mini-session list")
        assert listed.response.ephemeral and listed.response.content == OOPS
        zone = await sam.slash(world.lobby, "mini-session timezone", zone="Europe/Berlin")
        assert zone.response.content == OOPS

        shown = await world.open_request_form(sam)  # the form still opens (default zone)
        typed = request_values(title="Help with my thesis")
        failed = await sam.submit_modal(shown, typed)
        assert failed.response.ephemeral and failed.response.content == OOPS
        retry = await sam.click(failed.response, label="Try again")
        assert modal_fields(retry.modal)["title"]["value"] == "Help with my thesis"

        planted = await planted_button(world, Action.CLAIM, "1", "Claim")
        clicked = await world.mia.click(planted, label="Claim")
        assert clicked.response.content == OOPS
        scheduled = await world.mia.click(
            await planted_button(world, Action.SCHEDULE, "1", "Schedule"), label="Schedule"
        )
        assert scheduled.response.content == OOPS
        world.env.raise_errors()
