"""Discord start-up checks: is the token accepted, and does the server have what the settings name?

Run by `handlers.discord.serve` (so by `mini-mentorship discord` and `run`): the token when
logging in, the rest once the gateway is ready and the guild cache is complete. Each check gives
None when all is well, or one message for the operator naming the variable and the fix; `serve`
raises it as a StartupError (exit 2, no traceback). The checks read discord.py's cache only.
"""

from __future__ import annotations

import discord

from bot.config import Settings

# What the bot needs in the mentors' channel: see it, post the cards, with embeds. DMs and
# interaction replies (and the files they carry) need no server permission. The invite URL asks
# for exactly these (handlers/discord.py), so a bot invited with it passes the check.
CHANNEL_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)

# As the Discord client names them (discord.py calls View Channel `read_messages`).
PERMISSION_LABELS = {
    "read_messages": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
}

TOKEN_REFUSED = (
    "DISCORD_TOKEN was refused by Discord: copy the bot token from the Developer Portal "
    "(https://discord.com/developers/applications → your app → Bot → Reset Token) into "
    "DISCORD_TOKEN, then start again."
)

DEVELOPER_MODE = "turn on Developer Mode (User Settings → Advanced), then"


def unreachable(exc: BaseException) -> str:
    if isinstance(exc, discord.DiscordServerError):
        return (
            f"Discord could not check DISCORD_TOKEN (server error {exc.status}): Discord is having "
            "trouble (https://discordstatus.com); start again later."
        )
    return f"Cannot reach Discord to check DISCORD_TOKEN ({type(exc).__name__}): is the network up?"


def missing_permissions(channel: discord.abc.GuildChannel, member: discord.Member) -> list[str]:
    """The required permissions the member lacks in the channel, as the Discord client labels them.

    Without View Channel, or without Send Messages, Discord takes away the permissions that
    depend on it too, so only the one that blocks is named (the rest are named on the next start
    if they are denied as well)."""
    granted = channel.permissions_for(member)
    for gate in ("read_messages", "send_messages"):
        if getattr(CHANNEL_PERMISSIONS, gate) and not getattr(granted, gate):
            return [PERMISSION_LABELS[gate]]
    return [
        PERMISSION_LABELS.get(name, name.replace("_", " ").title())
        for name, wanted in CHANNEL_PERMISSIONS
        if wanted and not getattr(granted, name)
    ]


def _role_settings(settings: Settings) -> list[tuple[str, int]]:
    roles = [("DISCORD_MENTOR_ROLE_ID", settings.discord_mentor_role_id)]
    escalation = settings.discord_escalation_role_id
    roles.append(("DISCORD_ESCALATION_ROLE_ID", int(escalation) if escalation else None))
    return [(variable, role_id) for variable, role_id in roles if role_id]


def escalation_role_warning(client: discord.Client, settings: Settings) -> str | None:
    """An escalation role the bot cannot ping: Discord makes new roles not mentionable, and the
    invite grants no Mention @everyone, so its <@&id> would notify nobody. A warning, not a
    start-up error: escalations are still posted in the feed, and a running program keeps going."""
    role_id = settings.discord_escalation_role_id
    channel_id = settings.discord_mentor_channel_id
    channel = client.get_channel(int(channel_id)) if channel_id else None
    if not role_id or not isinstance(channel, discord.TextChannel) or channel.guild.me is None:
        return None
    role = channel.guild.get_role(int(role_id))
    if role is None or role.mentionable or channel.permissions_for(channel.guild.me).mention_everyone:
        return None
    return (
        f"DISCORD_ESCALATION_ROLE_ID={role_id}: the role @{role.name} can't be mentioned by the bot, "
        "so escalations notify nobody. In Server Settings → Roles → "
        f"{role.name} → Display, turn on 'Allow anyone to @mention this role', then start again."
    )


def check_server(client: discord.Client, settings: Settings, invite: str | None) -> str | None:
    """The server, the mentors' channel, the roles and the bot's permissions there, as the ready
    client sees them. All problems found are listed, one per line."""
    invite_hint = f" Invite it with {invite}" if invite else ""
    add_hint = f" If the bot is not in that server yet, invite it: {invite}" if invite else ""
    guild: discord.Guild | None = None
    if settings.discord_guild_id:
        guild = client.get_guild(settings.discord_guild_id)
        if guild is None:
            known = ", ".join(f"{g.name!r} ({g.id})" for g in client.guilds) or "none"
            return (
                f"The bot is not in the server DISCORD_GUILD_ID={settings.discord_guild_id} (it is in: "
                f"{known}). Check the id (right-click the server icon → Copy Server ID), or add the "
                f"bot to that server.{invite_hint}"
            )
    problems: list[str] = []
    channel_id = settings.discord_mentor_channel_id
    channel = client.get_channel(channel_id) if channel_id else None
    in_server = f"in the server {guild.name!r} (DISCORD_GUILD_ID)" if guild else "that the bot can see"
    channel_guild = getattr(channel, "guild", None)
    if channel is None or channel_guild is None or (guild and channel_guild.id != guild.id):
        problems.append(
            f"DISCORD_MENTOR_CHANNEL_ID={channel_id}: no such channel {in_server}. To copy the "
            f"mentors' channel's id, {DEVELOPER_MODE} right-click the channel → Copy Channel ID."
            + ("" if guild else add_hint)
        )
        channel = None
    elif not isinstance(channel, discord.TextChannel):
        kind = getattr(getattr(channel, "type", None), "name", "non-text")
        problems.append(
            f"DISCORD_MENTOR_CHANNEL_ID={channel_id} is #{getattr(channel, 'name', channel_id)}, a "
            f"{kind} channel: the mentors' feed needs a text channel."
        )
        channel = None
    guild = guild or (channel.guild if channel is not None else None)
    if guild is not None:
        for variable, role_id in _role_settings(settings):
            if guild.get_role(role_id) is None:
                problems.append(
                    f"{variable}={role_id}: no such role in the server {guild.name!r}. To copy a "
                    f"role's id, {DEVELOPER_MODE} right-click the role in Server Settings → Roles → "
                    "Copy Role ID."
                )
    if channel is not None and guild is not None and guild.me is not None:
        missing = missing_permissions(channel, guild.me)
        if missing:
            problems.append(
                f"The bot cannot post in the mentors' channel #{channel.name} "
                f"(DISCORD_MENTOR_CHANNEL_ID={channel_id}): it lacks {', '.join(missing)}. In the "
                f"channel's settings → Permissions, allow {'it' if len(missing) == 1 else 'them'} for "
                f"the bot's role ({guild.me.top_role.name}), then start again."
            )
    return "\n".join(problems) or None
