"""SimCord fixtures: the real bot (handlers.discord.build_bot) on an in-memory Discord, over a real
database and the core's ManualClock.

Two clocks: the core's ManualClock (`world.clock`, 2030-01-07 09:00 UTC) decides what is due;
SimCord's virtual clock only drives discord.py. Jobs run as the CLI would: the test calls the
sweeps and `runtime.delivery.run_once()` (see `World.deliver`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord
from simcord import interactions as sim_interactions
from simcord.builders import ChannelHandle, GuildHandle, RoleHandle, UserHandle
from simcord.enums import ComponentType, InteractionType
from simcord.results import InteractionResult
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Settings
from bot.messages import Action, Button
from bot.runtime import Runtime
from handlers.discord import build_bot
from handlers.discord_sender import DiscordSender
from jobs.delivery import DeliveryStats
from modals.discord import button_view
from storage import repository as repo
from storage.models import Notification
from tests.conftest import make_settings, reset_postgres

DESCRIPTION = "I have an interview on Friday and want to practise system design questions."


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite unless a test asks for PostgreSQL too (`indirect` parametrization)."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'discord.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Channel and role ids are filled in by `world` once SimCord has created them.
    return make_settings(database_url, discord_token="simcord-token", default_timezone="UTC")


def attach_sender(client: discord.Client, runtime: Runtime, settings: Settings) -> discord.Client:
    runtime.delivery.add_sender(DiscordSender(client, settings, min_interval=0))  # no pacing in tests
    return client


@pytest.fixture
def simcord_bot(settings: Settings, runtime: Runtime) -> discord.Client:
    return attach_sender(build_bot(settings, runtime=runtime), runtime, settings)


@dataclass
class World:
    env: simcord.Env
    runtime: Runtime
    settings: Settings
    clock: ManualClock
    guild: GuildHandle
    feed: ChannelHandle
    lobby: ChannelHandle
    mentor_role: RoleHandle
    sam: simcord.MemberActor  # student
    ola: simcord.MemberActor  # another student
    mia: simcord.MemberActor  # mentor
    max: simcord.MemberActor  # another mentor
    ada: simcord.MemberActor  # server administrator
    extra: dict[str, Any] = field(default_factory=dict)

    async def deliver(self) -> DeliveryStats:
        """What the outbox worker does right after each commit."""
        stats = await self.runtime.delivery.run_once()
        await self.env.settle()
        return stats

    async def open_request_form(
        self, who: simcord.MemberActor, session_type: str = "interview_prep", **choices: str
    ) -> InteractionResult:
        return await who.slash(self.lobby, "mini-session request", session_type=session_type, **choices)

    async def post_request(
        self, who: simcord.MemberActor | None = None, *, deliver: bool = True, **overrides: str
    ) -> tuple[int, InteractionResult]:
        who = who or self.sam
        shown = await self.open_request_form(who)
        prefilled = modal_fields(shown.modal)  # the dates the form suggests, in the user's zone
        dates = {k: str(prefilled[k]["value"]) for k in ("available_from", "available_until")}
        values = request_values(**{**dates, **overrides})
        posted = await who.submit_modal(shown, values)
        assert posted.response is not None, self.env.transcript()
        content = posted.response.content
        assert "is posted" in content, content
        request_id = int(content.split("#", 1)[1].split(" ", 1)[0])
        if deliver:
            await self.deliver()
        return request_id, posted

    async def card(self, request_id: int) -> discord.Message:
        async with self.runtime.db.transaction() as session:
            post = await repo.feed_post(session, request_id)
        assert post is not None, f"no card for request {request_id}"
        [message] = [m for m in self.feed.history() if m.id == int(post.message_ref)]
        return message

    def dms(self, who: simcord.MemberActor) -> list[discord.Message]:
        return who.user.dm_channel.history()

    def last_dm(self, who: simcord.MemberActor) -> discord.Message:
        messages = self.dms(who)
        assert messages, f"{who.name} has no DMs"
        return messages[-1]

    async def outbox(self, **filters: Any) -> list[Notification]:
        async with self.runtime.db.transaction() as session:
            query = select(Notification).order_by(Notification.id)
            for name, value in filters.items():
                query = query.where(getattr(Notification, name) == value)
            return list((await session.scalars(query)).all())


def modal_fields(modal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A raw modal payload's inputs by custom id (inside labels or action rows)."""
    out: dict[str, dict[str, Any]] = {}
    for row in modal["components"]:
        for component in [row["component"]] if "component" in row else row.get("components", []):
            out[component["custom_id"]] = component
    return out


def request_values(**overrides: str) -> dict[str, str]:
    values = {
        "title": "Mock interview for a backend role",
        "description": DESCRIPTION,
        "available_from": "2030-01-07",
        "available_until": "2030-01-11",
        "tags": "python, interviews",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v != ""}


@pytest.fixture
async def world(simcord_env: simcord.Env, runtime: Runtime, settings: Settings, clock: ManualClock) -> World:
    env = simcord_env
    guild = env.create_guild("Bootcamp", id=settings.discord_guild_id)
    mentor_role = guild.create_role("Mentor")
    admins = guild.create_role("Admins", permissions=discord.Permissions(administrator=True))
    feed = guild.create_text_channel("mentors")
    lobby = guild.create_text_channel("general")
    settings.discord_mentor_channel_id = feed.id
    settings.discord_mentor_role_id = mentor_role.id
    people = {
        "sam": guild.add_member(env.create_user("sam", global_name="Sam Student")),
        "ola": guild.add_member(env.create_user("ola", global_name="Ola Other")),
        "mia": guild.add_member(env.create_user("mia", global_name="Mia Mentor"), roles=[mentor_role]),
        "max": guild.add_member(env.create_user("max", global_name="Max Mentor"), roles=[mentor_role]),
        "ada": guild.add_member(env.create_user("ada", global_name="Ada Admin"), roles=[admins]),
    }
    await env.settle()
    return World(env, runtime, settings, clock, guild, feed, lobby, mentor_role, **people)


# Lower-level dispatch (SimCord internals), for what actors can't express -------------------------


def _component_payload(
    env: simcord.Env, who: simcord.MemberActor | UserHandle, message: discord.Message, custom_id: str
) -> dict[str, Any]:
    backend = env.backend
    stored = backend.get_message(message.channel.id, message.id)
    guild = getattr(who, "guild", None)
    record, payload = sim_interactions.base_payload(
        backend,
        type=InteractionType.MESSAGE_COMPONENT,
        channel_id=message.channel.id,
        guild_id=guild.id if guild is not None else None,
        user_id=who.id,
        data={"custom_id": custom_id, "component_type": ComponentType.BUTTON},
    )
    from simcord.backend import serializers

    payload["message"] = dict(serializers.message_payload(backend, stored))
    record.source_message_id = stored.id
    env._notify_dispatch_observers(record)
    return {"record": record, "payload": payload}


async def click_at_once(
    env: simcord.Env,
    people: Iterable[simcord.MemberActor | UserHandle],
    message: discord.Message,
    custom_id: str,
) -> list[InteractionResult]:
    """Every person clicks the same button in the same instant (SimCord actors can't overlap):
    all INTERACTION_CREATEs are emitted before the bot gets to run any of them."""
    dispatched = [_component_payload(env, who, message, custom_id) for who in people]
    for item in dispatched:
        env.backend.emit("INTERACTION_CREATE", item["payload"])
    await env.settle()
    return [InteractionResult(env, item["record"]) for item in dispatched]


async def planted_button(world: World, action: Action, value: str, label: str) -> discord.Message:
    """A button for someone else's request, in a channel everyone sees (a copied message, a
    modified client…): what it may do is decided server-side, not by where the button was."""
    channel = world.env.bot.get_channel(world.lobby.id)
    assert isinstance(channel, discord.TextChannel)
    view = button_view([Button(label, action, value)])
    message = await channel.send("Buttons", view=view)
    await world.env.settle()
    return message
