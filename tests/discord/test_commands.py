"""The slash commands besides the forms: sync on start, list, stats, help; the invite URL and the
public API the CLI relies on."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlparse

import discord
import pytest
import simcord

from bot.config import ConfigError, Settings
from bot.domain import Actor, Ok
from handlers.discord import BOT_PERMISSIONS, build_bot, invite_url, rest_sender, runtime_of, zone_matches
from modals.discord import HELP
from tests.conftest import make_settings
from tests.discord.conftest import World

GUILD_ID = 987654321098765432
SUBCOMMANDS = {"request", "list", "availability", "profile", "timezone", "stats", "help"}


async def test_commands_sync_globally_without_a_guild_id(world: World) -> None:
    env = world.env
    puts = [r.path for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]
    assert puts == [f"/applications/{env.bot.application_id}/commands"]
    [command] = [c for c in env.backend.commands[None].values() if c["name"] == "mini-session"]
    assert {o["name"] for o in command["options"]} == SUBCOMMANDS
    request = next(o for o in command["options"] if o["name"] == "request")
    choices = {o["name"]: [c["value"] for c in o.get("choices", [])] for o in request["options"]}
    assert choices == {
        "session_type": [
            "interview_prep",
            "skill_learning",
            "career_advice",
            "code_review",
            "project_guidance",
            "other",
        ],
        "duration": ["30", "45", "60"],
        "urgency": ["low", "normal", "high"],
    }
    assert {f"mini-session {name}" for name in SUBCOMMANDS} <= set(world.sam.available_commands(world.lobby))


class TestGuildSync:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return make_settings(database_url, discord_token="simcord-token", discord_guild_id=GUILD_ID)

    async def test_commands_sync_to_the_configured_guild(self, world: World) -> None:
        env = world.env
        assert world.guild.id == GUILD_ID
        puts = [r.path for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]
        assert puts == [f"/applications/{env.bot.application_id}/guilds/{GUILD_ID}/commands"]
        assert not env.backend.commands.get(None)
        shown = await world.open_request_form(world.sam)
        assert shown.modal is not None


async def test_list_shows_sections_and_acts_from_its_buttons(world: World) -> None:
    first, _ = await world.post_request()
    second, _ = await world.post_request(world.ola, title="Portfolio review please")
    await world.mia.click(await world.card(first), label="Claim")
    await world.deliver()

    mine = await world.sam.slash(world.lobby, "mini-session list")
    assert mine.response.ephemeral
    [embed] = mine.response.embeds
    assert embed.title == "Your requests"
    assert f"🟡 Claimed · #{first}** **Mock interview for a backend role**" in (embed.description or "")
    assert [c.label for row in mine.response.message.components for c in row.children] == [
        f"#{first} Cancel request"
    ]

    listed = await world.mia.slash(world.lobby, "mini-session list")
    titles = [e.title for e in listed.response.embeds]
    assert titles == [
        "Your requests",
        "You're mentoring",
        "Open requests",
        "Your weekly availability",
        "Your mentor profile",
    ]
    assert "1 of 3 active" in (listed.response.embeds[4].description or "")
    assert "None yet" in (listed.response.embeds[3].description or "")
    labels = [c.label for row in listed.response.message.components for c in row.children]
    assert labels == [
        f"#{first} Propose times",
        f"#{first} Schedule directly",
        f"#{first} Release",
        f"#{second} Claim",
    ]
    claimed = await world.mia.click(listed.response, label=f"#{second} Claim")
    assert claimed.response.content.startswith(f"You claimed request #{second}.")


async def test_stats_for_admins_only(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")

    refused = await world.ola.slash(world.lobby, "mini-session stats")
    assert refused.response.ephemeral and refused.response.content == "Only admins can see stats."

    report = await world.ada.slash(world.lobby, "mini-session stats")  # server administrator
    assert report.response.ephemeral
    embed = report.response.embeds[0]  # then the charts (tests/discord/test_charts.py)
    assert embed.title == "Mini Mentorship — stats"
    facts = {f.name: f.value for f in embed.fields}
    assert facts["Requests"].startswith("1 ")
    assert f"<@{world.mia.id}>: 1 claimed" in facts["Mentors"]
    assert facts["Mentor load"] == f"<@{world.mia.id}>: 1 of 3 active"
    assert facts["Demand against supply"] == "interviews: 1 request\npython: 1 request"
    assert facts["🔥 High: within 4 h"] == "—" and "Normal: within 24 h" in facts
    [attachment] = [a for a in report.response.attachments if a.filename == "mini-mentorship-stats.csv"]
    rows = list(csv.DictReader(io.StringIO((await attachment.read()).decode())))
    assert [row["request_id"] for row in rows] == [str(rid)]

    world.settings.admin_user_ids = f"123,{world.ola.id}"  # ADMIN_USER_IDS counts too
    allowed = await world.ola.slash(world.lobby, "mini-session stats")
    assert allowed.response.embeds[0].title == "Mini Mentorship — stats"


async def test_help_and_other_servers(world: World) -> None:
    helped = await world.sam.slash(world.lobby, "mini-session help")
    assert helped.response.ephemeral and helped.response.content == HELP
    for name in SUBCOMMANDS:
        assert f"/mini-session {name}" in HELP

    elsewhere = world.env.create_guild("Elsewhere")
    channel = elsewhere.create_text_channel("general")
    eve = elsewhere.add_member(world.env.create_user("eve"))
    await world.env.settle()
    refused = await eve.slash(channel, "mini-session request", session_type="other")
    assert refused.modal is None
    assert refused.response.content == "This server isn't set up for Mini Mentorship."


def test_invite_url_asks_for_exactly_the_permissions_used() -> None:
    url = urlparse(invite_url(1234))
    query = parse_qs(url.query)
    assert url.netloc == "discord.com" and query["client_id"] == ["1234"]
    assert query["scope"] == ["bot applications.commands"]
    permissions = discord.Permissions(int(query["permissions"][0]))
    assert permissions == BOT_PERMISSIONS
    assert {name for name, on in permissions if on} == {"read_messages", "send_messages", "embed_links"}


async def test_public_api(world: World, settings: Settings) -> None:
    assert runtime_of(world.env.bot) is world.runtime
    with pytest.raises(TypeError):
        runtime_of(discord.Client(intents=discord.Intents.none()))
    bot = world.env.bot
    assert isinstance(bot.tree, discord.app_commands.CommandTree)  # type: ignore[attr-defined]
    assert not bot.intents.members and not bot.intents.message_content  # nothing privileged
    standalone = build_bot(settings)  # its own Runtime, with the Discord sender registered
    assert runtime_of(standalone).settings is settings
    assert set(runtime_of(standalone).delivery.senders) == {"discord"}
    await runtime_of(standalone).close()
    with pytest.raises(ConfigError):
        await rest_sender(make_settings(settings.database_url))


def test_zone_matches() -> None:
    assert zone_matches("new york")[0] == "America/New_York"
    assert zone_matches("")[0] == "UTC"
    assert len(zone_matches("america/")) == 25
    assert zone_matches("zzzz") == []


def test_simcord_is_the_fake(world: World) -> None:
    assert isinstance(world.env, simcord.Env)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_mentor_who_lost_the_role_still_sees_the_sessions_they_hold(world: World) -> None:
    """Ola claimed and booked a session while a mentor, then lost the Mentor role. She is still
    its mentor, yet /mini-session list showed only her own requests."""
    rid, _ = await world.post_request()
    ola_was_mentor = Actor(
        "discord", str(world.guild.id), str(world.ola.id), "Ola Other", None, is_mentor=True
    )
    assert isinstance(await world.runtime.mentorship.claim(ola_was_mentor, rid), Ok)
    booked = await world.runtime.mentorship.schedule(ola_was_mentor, rid, {"starts_at": "2030-01-08 15:00"})
    assert isinstance(booked, Ok)
    await world.deliver()

    listed = await world.ola.slash(world.lobby, "mini-session list")
    assert [e.title for e in listed.response.embeds] == ["Your requests", "You're mentoring"]
    assert "Mock interview for a backend role" in (listed.response.embeds[1].description or "")
    labels = [c.label for row in listed.response.message.components for c in row.children]
    assert f"#{rid} Mark done" in labels
