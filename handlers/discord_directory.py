"""Who is a mentor on Discord right now: holders of DISCORD_MENTOR_ROLE_ID (bot.matching asks).

Members are fetched over REST, not read from the cache: without the privileged members intent
the cache never learns that a role was taken away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import discord

from bot.config import Settings

log = logging.getLogger(__name__)


class DiscordMentorDirectory:
    def __init__(self, client: discord.Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def current_mentors(self, workspace: str, external_ids: Sequence[str]) -> set[str]:
        role_id = self.settings.discord_mentor_role_id
        if role_id is None or not workspace.isdigit():
            return set()
        guild = self.client.get_guild(int(workspace))
        if guild is None:  # a REST-only client (the jobs process) has no cache: ask Discord
            try:
                guild = await self.client.fetch_guild(int(workspace))
            except discord.HTTPException as exc:
                log.warning("couldn't fetch server %s (%s); suggesting nobody now", workspace, exc)
                return set()

        async def holds_role(user_id: str) -> bool:
            try:
                member = await guild.fetch_member(int(user_id))
            except discord.NotFound:
                return False  # left the server
            except discord.HTTPException as exc:
                # Unsure is not proof: leave them out of this suggestion round.
                log.warning("couldn't check %s's roles (%s); not suggesting them now", user_id, exc)
                return False
            return member.get_role(role_id) is not None

        ids = [u for u in external_ids if u.isdigit()]
        checks = await asyncio.gather(*(holds_role(u) for u in ids))
        return {u for u, ok in zip(ids, checks, strict=True) if ok}
