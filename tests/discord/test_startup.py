"""Discord start-up checks as an operator meets them: `main([...])`, the function the
`mini-mentorship` script calls, with a bad setting; it stops with exit status 2 and says what to fix.

The server is SimCord's: discord.py cannot be pointed at SimCord from a subprocess, so these run
the CLI in-process, with the bot's `start` attaching it to a SimCord server built beforehand (the
real `start` logs in and connects the gateway; SimCord does both). SimCord always accepts the
token, so the refused token is served instead by a local HTTP server answering 401, the way
Discord does, to discord.py's own HTTP client.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord
from simcord.builders import ChannelHandle, GuildHandle, RoleHandle

from bot import cli
from bot.cli import main
from handlers.discord import MentorBot
from handlers.discord_preflight import TOKEN_REFUSED
from tests.bot.test_cli import CONTRACT_VARIABLES

TOKEN_VARIABLES = [*CONTRACT_VARIABLES, "DISCORD_ESCALATION_ROLE_ID", "METRICS_PORT", "LOG_FORMAT"]


@dataclass
class Server:
    """A SimCord Discord with one server as an organiser would set it up."""

    env: simcord.Env
    guild: GuildHandle
    feed: ChannelHandle
    mentor_role: RoleHandle
    started: list[MentorBot]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Server:
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env; the SQLite file lands here
    # Env needs a client to exist; the CLI's own bot takes its place in `start` below.
    env = simcord.Env(discord.Client(intents=discord.Intents(guilds=True)))
    guild = env.create_guild("Bootcamp")
    feed = guild.create_text_channel("mentors")
    mentor_role = guild.create_role("Mentor")
    started: list[MentorBot] = []

    async def start(self: MentorBot, token: str, *, reconnect: bool = True) -> None:
        started.append(self)
        env.bot = self
        await env.start()  # logs in (setup_hook: commands synced), READY, the guilds created
        try:
            await env.settle()  # on_ready has run: the checks passed, or closed the client
            if not self.is_closed():
                await self.close()  # checks passed: stop serving, as SIGTERM would
        finally:
            await env.shutdown()

    monkeypatch.setattr(MentorBot, "start", start)
    # SimCord drives discord.py through asyncio's own loop internals (its timer heap), which
    # uvloop has not; the real gateway needs none of them, so production keeps uvloop.
    monkeypatch.setattr(cli, "event_loop_factory", lambda: None)
    monkeypatch.setenv("DISCORD_TOKEN", "a-token")
    monkeypatch.setenv("DISCORD_GUILD_ID", str(guild.id))
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", str(feed.id))
    monkeypatch.setenv("DISCORD_MENTOR_ROLE_ID", str(mentor_role.id))
    return Server(env, guild, feed, mentor_role, started)


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "a-token" not in err
    return err


def test_a_server_that_matches_the_settings_serves(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["discord"]) == 0
    out, err = capsys.readouterr()
    assert "Mini Mentorship is online as" in out and "discord.com/oauth2/authorize" in out
    assert "Traceback" not in err and "could not sync" not in err
    [bot] = server.started
    assert bot.startup_problem is None


@pytest.mark.parametrize("command", ["discord", "run"])
def test_a_channel_outside_the_server_is_named(
    command: str, server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = server.env.create_guild("Elsewhere").create_text_channel("mentors")
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", str(elsewhere.id))
    err = _fails([command], capsys)
    assert f"DISCORD_MENTOR_CHANNEL_ID={elsewhere.id}: no such channel in the server 'Bootcamp'" in err
    assert "Developer Mode" in err and "right-click the channel → Copy Channel ID" in err
    assert "Mini Mentorship is online" not in capsys.readouterr().out  # never served


def test_an_unknown_channel_without_a_guild_id_says_to_invite_the_bot(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISCORD_GUILD_ID")
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", "123456789012345678")
    err = _fails(["discord"], capsys)
    assert "DISCORD_MENTOR_CHANNEL_ID=123456789012345678: no such channel that the bot can see" in err
    assert "If the bot is not in that server yet, invite it: https://discord.com/oauth2/" in err


def test_a_voice_channel_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    voice = server.guild.create_voice_channel("Lounge")
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", str(voice.id))
    err = _fails(["discord"], capsys)
    assert f"DISCORD_MENTOR_CHANNEL_ID={voice.id} is #Lounge, a voice channel" in err
    assert "needs a text channel" in err


def test_the_bot_not_in_the_guild_is_named(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCORD_GUILD_ID", "123456789012345678")
    err = _fails(["discord"], capsys)
    assert "The bot is not in the server DISCORD_GUILD_ID=123456789012345678" in err
    assert f"(it is in: 'Bootcamp' ({server.guild.id}))" in err
    assert "Copy Server ID" in err and "Invite it with https://discord.com/" in err
    assert "Traceback" not in err  # the refused command sync is one warning line


@pytest.mark.parametrize("variable", ["DISCORD_MENTOR_ROLE_ID", "DISCORD_ESCALATION_ROLE_ID"])
def test_a_role_outside_the_server_is_named(
    variable: str, server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = server.env.create_guild("Elsewhere").create_role("Mentor")
    monkeypatch.setenv(variable, str(other.id))
    err = _fails(["discord"], capsys)
    assert f"{variable}={other.id}: no such role in the server 'Bootcamp'" in err
    assert "right-click the role in Server Settings → Roles → Copy Role ID" in err


def test_every_problem_is_listed_at_once(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", "123456789012345678")
    monkeypatch.setenv("DISCORD_MENTOR_ROLE_ID", "223456789012345678")
    err = _fails(["discord"], capsys)
    assert "DISCORD_MENTOR_CHANNEL_ID=123456789012345678: no such channel" in err
    assert "DISCORD_MENTOR_ROLE_ID=223456789012345678: no such role" in err


@pytest.mark.parametrize(
    ("denied", "named"),
    [
        ({"view_channel": False}, "it lacks View Channel."),
        ({"send_messages": False}, "it lacks Send Messages."),
        ({"embed_links": False}, "it lacks Embed Links."),
    ],
)
def test_a_channel_the_bot_cannot_post_in_names_the_missing_permission(
    denied: dict[str, bool],
    named: str,
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    locked = server.guild.create_text_channel(
        "locked", overwrites={server.guild.default_role: discord.PermissionOverwrite(**denied)}
    )
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", str(locked.id))
    err = _fails(["discord"], capsys)
    assert "The bot cannot post in the mentors' channel #locked" in err
    assert f"(DISCORD_MENTOR_CHANNEL_ID={locked.id}): {named}" in err
    assert "channel's settings → Permissions" in err and "the bot's role (TestBot)" in err


def test_attaching_files_is_not_required(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cards carry no files (the .ics goes by DM), so a channel that denies them is fine."""
    channel = server.guild.create_text_channel(
        "no-files",
        overwrites={server.guild.default_role: discord.PermissionOverwrite(attach_files=False)},
    )
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", str(channel.id))
    assert main(["discord"]) == 0


# The token: discord.py's own HTTP client against a stand-in for discord.com ---------------------


class _StandIn(ThreadingHTTPServer):
    status = 401  # Discord's answer to a bad token on GET /users/@me (what logging in asks)


class _Refuses(BaseHTTPRequestHandler):
    server: _StandIn

    def do_GET(self) -> None:
        status = self.server.status
        body = json.dumps({"message": f"{status}: Unauthorized", "code": 0}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_discord(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[_StandIn]:
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    http = _StandIn(("127.0.0.1", 0), _Refuses)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{http.server_address[1]}/api/v10"
    monkeypatch.setattr(discord.http.Route, "BASE", base)
    monkeypatch.setenv("DISCORD_TOKEN", "MTIz.revoked-token")
    monkeypatch.setenv("DISCORD_MENTOR_CHANNEL_ID", "123456789012345678")
    monkeypatch.setenv("DISCORD_MENTOR_ROLE_ID", "223456789012345678")
    yield http
    http.shutdown()
    http.server_close()


@pytest.mark.parametrize("command", [["discord"], ["run"], ["jobs", "--once"]])
def test_a_refused_token_says_where_to_get_one(
    command: list[str], refusing_discord: _StandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    err = capsys.readouterr().err
    assert TOKEN_REFUSED in err
    assert "DISCORD_TOKEN was refused by Discord" in err and "Bot → Reset Token" in err
    assert "Traceback" not in err and "revoked-token" not in err


def test_discord_out_of_reach_is_said(
    refusing_discord: _StandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", "http://127.0.0.1:9/api/v10")
    assert main(["discord"]) == 2
    err = capsys.readouterr().err
    assert "Cannot reach Discord to check DISCORD_TOKEN (ClientConnectorError)" in err
    assert "Traceback" not in err


def test_no_voice_warnings_at_start() -> None:
    """The bot uses no voice: discord.py's "PyNaCl is not installed" warnings are not logged."""
    code = (
        "import logging, discord, handlers.discord; logging.basicConfig(); "
        "discord.Client(intents=discord.Intents(guilds=True))"
    )
    root = Path(__file__).resolve().parents[2]  # `-c` imports from the working directory first
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert "voice will NOT be supported" not in done.stderr


def test_discord_in_trouble_is_not_blamed_on_the_token(
    refusing_discord: _StandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    refusing_discord.status = 503
    assert main(["discord"]) == 2
    err = capsys.readouterr().err
    assert "Discord could not check DISCORD_TOKEN (server error 503)" in err and "start again later" in err
    assert "refused" not in err and "Traceback" not in err
