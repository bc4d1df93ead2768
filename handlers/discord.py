"""The Discord adapter: a discord.py Client with the `/mini-session` commands.

Slash command → Actor + plain values → core call → reply (rendered by modals/discord.py).
Buttons and modal submissions live in handlers/discord_interactions.py; the outbox sender in
handlers/discord_sender.py. Every interaction is acknowledged first (a modal, or an ephemeral
defer), then the work is done; problems are reported ephemerally.

Public API (used by bot/cli.py and by checks that run the bot on SimCord):
`build_bot`, `runtime_of`, `serve`, `invite_url`, `rest_sender`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bot import insight
from bot.authz import Act, authorize
from bot.config import ConfigError, Settings
from bot.domain import DURATIONS, Invalid, Ok, SessionType, Urgency
from bot.messages import Action
from bot.outbox import Sender
from bot.preflight import StartupError
from bot.runtime import Runtime
from handlers.discord_directory import DiscordMentorDirectory
from handlers.discord_interactions import Components, Replies
from handlers.discord_preflight import (
    CHANNEL_PERMISSIONS,
    TOKEN_REFUSED,
    check_server,
    escalation_role_warning,
    unreachable,
)
from handlers.discord_sender import DiscordSender
from modals import forms
from modals.discord import (
    HELP,
    NO_PINGS,
    ActionButton,
    FixButton,
    RequestChoices,
    escape,
    render_charts,
    render_dashboard,
    render_stats,
    render_summary_csv,
)

log = logging.getLogger(__name__)

# The bot never joins a voice channel: without this, every start logs two warnings that voice
# libraries are missing, which read as a problem to whoever watches the logs.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False

# Exactly what the bot does in a server: read and post in the mentors' channel, with embeds.
# (DMs, interaction replies and their files need no server permission.) The start-up check
# requires the same set in the channel.
BOT_PERMISSIONS = CHANNEL_PERMISSIONS
SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=BOT_PERMISSIONS, scopes=SCOPES)


SESSION_TYPE_CHOICES = [app_commands.Choice(name=t.label, value=t.value) for t in SessionType]
DURATION_CHOICES = [app_commands.Choice(name=f"{d} minutes", value=str(d)) for d in DURATIONS]
URGENCY_CHOICES = [
    app_commands.Choice(name=c.label, value=c.value) for c in forms.REQUEST_FORM.field("urgency").choices
]
DEFAULT_DURATION = forms.REQUEST_FORM.field("duration").default or "30"
DEFAULT_URGENCY = forms.REQUEST_FORM.field("urgency").default or Urgency.NORMAL.value
TIMEZONES = forms.timezone_names()


def zone_matches(current: str, limit: int = 25) -> list[str]:
    """IANA zones for autocomplete: prefix matches of the name or its city first, then substrings."""
    needle = current.strip().lower().replace(" ", "_")
    if not needle:
        common = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles"]
        return [*common, "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney"][:limit]
    starts = [
        z for z in TIMEZONES if z.lower().startswith(needle) or z.lower().split("/")[-1].startswith(needle)
    ]
    inside = [z for z in TIMEZONES if needle in z.lower() and z not in starts]
    return (starts + inside)[:limit]


_POSIX_GMT = re.compile(r"(?:Etc/)?GMT([+-])(\d{1,2})")


def zone_label(zone: str) -> str:
    """A zone as it is shown. Etc/GMT±N zones have POSIX signs, the reverse of what people mean
    (Etc/GMT+1 is an hour behind UTC), so the offset they stand for is said beside them."""
    found = _POSIX_GMT.fullmatch(zone)
    if found is None or int(found[2]) == 0:
        return zone
    sign = "-" if found[1] == "+" else "+"
    return f"{zone} (= UTC{sign}{int(found[2]):02d}:00)"


class MiniSession(app_commands.Group):
    """`/mini-session …`: thin handlers; rules live in the core."""

    def __init__(self, bot: MentorBot) -> None:
        super().__init__(
            name="mini-session", description="Quick one-off mentorship sessions", guild_only=True
        )
        self.bot = bot

    @property
    def components(self) -> Components:
        return self.bot.components

    @app_commands.command(name="request", description="Ask a mentor for a 30–60 minute session")
    @app_commands.describe(
        session_type="What kind of help you need",
        duration="How long the session should be (default 30 minutes)",
        urgency="How soon you need it (default normal)",
    )
    @app_commands.choices(
        session_type=SESSION_TYPE_CHOICES, duration=DURATION_CHOICES, urgency=URGENCY_CHOICES
    )
    async def request(
        self,
        interaction: discord.Interaction[Any],
        session_type: app_commands.Choice[str],
        duration: app_commands.Choice[str] | None = None,
        urgency: app_commands.Choice[str] | None = None,
    ) -> None:
        choices = RequestChoices(
            session_type=session_type.value,
            duration=duration.value if duration else DEFAULT_DURATION,
            urgency=urgency.value if urgency else DEFAULT_URGENCY,
        )
        await self.components.guarded(interaction, self.components.open_request(interaction, choices, {}))

    @app_commands.command(
        name="list", description="Your requests, and for mentors what you mentor and what's open"
    )
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        async def work() -> None:
            if not await Replies.ack(interaction):
                return
            actor = self.components.guild_actor(interaction)
            assert actor is not None
            dashboard = await self.bot.runtime.mentorship.dashboard(actor)
            drawn = render_dashboard(dashboard, actor.user_id)
            await Replies.send(interaction, embeds=drawn.embeds, view=drawn.view)

        await self.components.guarded(interaction, work())

    @app_commands.command(name="availability", description="Mentors: set the weekly times you can mentor")
    async def availability(self, interaction: discord.Interaction[Any]) -> None:
        await self.components.guarded(interaction, self.components.open_availability(interaction, None))

    @app_commands.command(name="profile", description="Mentors: your skills, capacity and time away")
    async def profile(self, interaction: discord.Interaction[Any]) -> None:
        await self.components.guarded(interaction, self.components.open_profile(interaction, None))

    @app_commands.command(name="timezone", description="Set your time zone (dates and times you type use it)")
    @app_commands.describe(zone="An IANA time zone, e.g. Europe/Berlin — start typing to search")
    async def timezone(self, interaction: discord.Interaction[Any], zone: str) -> None:
        async def work() -> None:
            if not await Replies.ack(interaction):
                return
            actor = self.components.guild_actor(interaction)
            assert actor is not None
            result = await self.bot.runtime.mentorship.set_timezone(actor, zone.strip())
            if isinstance(result, Ok):
                await Replies.send(
                    interaction,
                    f"Your time zone is now **{escape(zone_label(result.value))}**. Dates and times you "
                    "type are read in it; times I show appear in your own Discord clock anyway.",
                )
                return
            message = result.errors.get("timezone", "") if isinstance(result, Invalid) else result.message
            close = zone_matches(zone, 5)
            hint = f" Did you mean {', '.join(f'`{z}`' for z in close)}?" if close else ""
            await Replies.send(interaction, f"{escape(message)}{hint}")

        await self.components.guarded(interaction, work())

    @timezone.autocomplete("zone")
    async def zone_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=zone_label(z), value=z) for z in zone_matches(current)]

    @app_commands.command(
        name="stats", description="Admins: volume, time to claim, completion, ratings, charts, CSV"
    )
    @app_commands.describe(weeks="The charts' range (12 weeks unless you choose)")
    @app_commands.choices(weeks=[app_commands.Choice(name=f"{n} weeks", value=n) for n in insight.RANGES])
    async def stats(
        self, interaction: discord.Interaction[Any], weeks: app_commands.Choice[int] | None = None
    ) -> None:
        async def work() -> None:
            actor = self.components.guild_actor(interaction)
            assert actor is not None
            refused = authorize(Act.STATS, actor)
            if refused is not None:
                await Replies.send(interaction, escape(refused.message))
                return
            if not await Replies.ack(interaction):
                return
            # The report (summary, CSVs) and the charts at once (bot/stats.py `reply`).
            result = await self.bot.runtime.stats.reply(
                actor, weeks.value if weeks else insight.DEFAULT_WEEKS
            )
            if not isinstance(result, Ok):
                await Replies.send(interaction, escape(getattr(result, "message", "Not allowed.")))
                return
            report, drawn = result.value
            embed, csv = render_stats(report)
            chart_embeds, chart_files = render_charts(drawn)
            summary = render_summary_csv(report)
            await Replies.send(interaction, embeds=[embed, *chart_embeds], files=[csv, summary, *chart_files])

        await self.components.guarded(interaction, work())

    @app_commands.command(name="help", description="What Mini Mentorship does and how to use it")
    async def help_(self, interaction: discord.Interaction[Any]) -> None:
        await self.components.guarded(interaction, Replies.send(interaction, HELP))


class MentorBot(discord.Client):
    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        super().__init__(
            intents=discord.Intents(guilds=True),  # no privileged intents
            allowed_mentions=NO_PINGS,  # the default for every send; pings are opted into per message
            max_ratelimit_timeout=30.0,  # longer waits come back to the outbox as RetryLater
        )
        self.settings = settings
        self.runtime = runtime
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(MiniSession(self))
        self.tree.error(self._on_tree_error)
        self.components = Components(self)
        self.announce_invite = False
        # Set by `serve`: check the server against the settings on the first ready, and stop
        # with `startup_problem` if it does not match (tests on SimCord build their server after
        # the bot is ready, so a bare `build_bot` does not check).
        self.check_server = False
        self.startup_problem: str | None = None
        runtime.mentorship.use_directory("discord", DiscordMentorDirectory(self, settings))

    async def setup_hook(self) -> None:
        # Old cards' buttons keep working after a restart: their custom ids match these.
        self.add_dynamic_items(ActionButton, FixButton)
        await self.sync_commands()

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """To DISCORD_GUILD_ID when set (instant); globally otherwise (can take up to an hour)."""
        try:
            if self.settings.discord_guild_id:
                guild = discord.Object(id=self.settings.discord_guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                log.info("synced %d commands to server %s", len(synced), guild.id)
            else:
                synced = await self.tree.sync()
                log.info("synced %d commands globally", len(synced))
            return synced
        except discord.Forbidden as exc:
            # Not in that server, or invited without applications.commands: the ready check says
            # which, without a traceback.
            log.warning(
                "could not sync commands (%s); was the bot invited to the server with the "
                "applications.commands scope?",
                exc.text or exc.status,
            )
            return []
        except discord.HTTPException:
            log.exception(
                "could not sync commands; was the bot invited with the applications.commands scope?"
            )
            return []

    async def on_ready(self) -> None:
        if self.check_server:
            self.check_server = False  # on_ready fires again after a reconnect
            invite = invite_url(self.application_id) if self.application_id else None
            self.startup_problem = check_server(self, self.settings, invite)
            if self.startup_problem:
                await self.close()  # `serve` raises it; nothing is served
                return
            if warning := escalation_role_warning(self, self.settings):
                log.warning("%s", warning)
        if self.announce_invite and self.application_id:
            self.announce_invite = False  # on_ready fires again after a reconnect
            url = invite_url(self.application_id)
            print(f"Mini Mentorship is online as {self.user}. Invite it to your server with:\n{url}")

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        # Modal submissions are routed here by custom id, never through discord.py's view store,
        # so a form submitted across a restart is handled like any other.
        if interaction.type is discord.InteractionType.modal_submit:
            await self.components.on_modal_submit(interaction)

    async def on_action_button(
        self, interaction: discord.Interaction[Any], action: Action, value: str
    ) -> None:
        await self.components.on_action(interaction, action, value)

    async def on_fix_button(self, interaction: discord.Interaction[Any], token: str, form: str) -> None:
        await self.components.on_fix(interaction, token, form)

    def home_guild_id(self) -> int | None:
        """The server this bot serves: DISCORD_GUILD_ID, else the mentors' channel's server."""
        if self.settings.discord_guild_id:
            return self.settings.discord_guild_id
        channel_id = self.settings.discord_mentor_channel_id
        channel = self.get_channel(channel_id) if channel_id else None
        guild = getattr(channel, "guild", None)
        return guild.id if isinstance(guild, discord.Guild) else None

    async def _on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        log.error("command failed", exc_info=error)
        await Replies.oops(interaction)


def build_bot(settings: Settings, *, runtime: Runtime | None = None) -> discord.Client:
    """The Discord client, with its DiscordSender registered on the runtime's outbox."""
    runtime = runtime or Runtime(settings)
    bot = MentorBot(settings, runtime)
    runtime.delivery.add_sender(DiscordSender(bot, settings))
    return bot


def runtime_of(client: discord.Client) -> Runtime:
    if not isinstance(client, MentorBot):
        raise TypeError("not a Mini Mentorship client (build it with handlers.discord.build_bot)")
    return client.runtime


async def serve(runtime: Runtime) -> None:
    """Log in, sync the commands, check the server against the settings once ready, then run
    the gateway until cancelled (printing the invite URL). A refused token or a server that does
    not match the settings raises StartupError saying what to fix."""
    settings = runtime.settings
    if not settings.discord_token:
        raise ConfigError("DISCORD_TOKEN is not set")
    bot = build_bot(settings, runtime=runtime)
    assert isinstance(bot, MentorBot)
    bot.announce_invite = True
    bot.check_server = True
    try:
        await bot.start(settings.discord_token)
    except discord.LoginFailure:
        raise StartupError(TOKEN_REFUSED) from None
    except (aiohttp.ClientError, discord.DiscordServerError) as exc:
        # Only logging in raises these (the gateway reconnects by itself once connected).
        raise StartupError(unreachable(exc)) from None
    finally:
        if not bot.is_closed():
            await bot.close()
    if bot.startup_problem:
        raise StartupError(bot.startup_problem)


async def rest_sender(settings: Settings) -> tuple[Sender, Callable[[], Awaitable[None]]]:
    """A DiscordSender over REST only (no gateway), for the separate jobs process."""
    if not settings.discord_token:
        raise ConfigError("DISCORD_TOKEN is not set")
    # No gateway, so intents change nothing here; without `guilds` discord.py warns at start
    # that its state may be wrong, which reads to an operator like a setup mistake.
    client = discord.Client(
        intents=discord.Intents(guilds=True), allowed_mentions=NO_PINGS, max_ratelimit_timeout=30.0
    )
    try:
        await client.login(settings.discord_token)
    except discord.LoginFailure:
        await client.close()
        raise StartupError(TOKEN_REFUSED) from None
    except (aiohttp.ClientError, discord.DiscordServerError) as exc:
        await client.close()
        raise StartupError(unreachable(exc)) from None

    async def close() -> None:
        await client.close()

    return DiscordSender(client, settings), close


__all__ = ["BOT_PERMISSIONS", "MentorBot", "build_bot", "invite_url", "rest_sender", "runtime_of", "serve"]
