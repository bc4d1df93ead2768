"""Who is clicking, according to Slack: an `Actor` with the roles checked server-side.

- mentor: a member of SLACK_MENTOR_CHANNEL (conversations.members, every page);
- admin: listed in ADMIN_USER_IDS, or a workspace admin / owner (users.info);
- time zone and display name: users.info.

Both lookups are cached for `ttl` seconds, and concurrent lookups of one key share a single API
call, so 50 mentors clicking Claim at once cost one conversations.members call, not 50. When a
refresh fails, a stale answer is used if there is one; otherwise the error propagates (and the
user is told to try again) rather than guessing a role.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.domain import Actor

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_TTL = 60.0


class TtlCache(Generic[K, V]):
    """Values for `ttl` seconds; one in-flight load per key; stale value on a failed refresh."""

    def __init__(self, ttl: float, now: Callable[[], float] = time.monotonic, max_size: int = 10_000) -> None:
        self.ttl = ttl
        self._now = now
        self._max_size = max_size
        self._values: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        cached = self._values.get(key)
        if cached is not None and self._now() - cached[0] < self.ttl:
            return cached[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except Exception as exc:
            if cached is not None:
                log.warning("refresh of %r failed (%s); using the cached value", key, exc)
                value = cached[1]
            else:
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters (if any) get it via shield
                raise
        except BaseException:  # cancelled: don't leave waiters hanging on this load
            future.cancel()
            raise
        finally:
            self._loading.pop(key, None)
        if len(self._values) >= self._max_size:
            self._values.clear()  # crude, but bounded; only a huge workspace ever gets here
        self._values[key] = (self._now(), value)
        future.set_result(value)
        return value


@dataclass(frozen=True)
class Profile:
    display_name: str
    timezone: str | None
    is_admin: bool


class Directory:
    def __init__(
        self,
        client: AsyncWebClient,
        settings: Settings,
        *,
        ttl: float = DEFAULT_TTL,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.settings = settings
        self._profiles: TtlCache[str, Profile] = TtlCache(ttl, now)
        self._mentors: TtlCache[str, frozenset[str]] = TtlCache(ttl, now)

    async def actor(self, team_id: str, user_id: str, fallback_name: str = "") -> Actor:
        profile, mentors = await asyncio.gather(self.profile(user_id, fallback_name), self.mentors())
        return Actor(
            platform="slack",
            workspace=team_id,
            user_id=user_id,
            display_name=profile.display_name,
            timezone=profile.timezone,
            is_mentor=user_id in mentors,
            is_admin=user_id in self.settings.admin_ids or profile.is_admin,
        )

    async def profile(self, user_id: str, fallback_name: str = "") -> Profile:
        async def load() -> Profile:
            response = await self.client.users_info(user=user_id)
            user = response.get("user") or {}
            profile = user.get("profile") or {}
            name = (
                profile.get("display_name")
                or profile.get("real_name")
                or user.get("real_name")
                or user.get("name")
                or fallback_name
                or user_id
            )
            return Profile(
                display_name=str(name)[:100],
                timezone=user.get("tz") or None,
                is_admin=bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")),
            )

        try:
            return await self._profiles.get(user_id, load)
        except Exception as exc:
            # A profile only adds a name, a zone and workspace-admin rights: carry on without
            # them (uncached) rather than fail the click.
            log.warning("users.info for %s failed (%s); using defaults", user_id, exc)
            return Profile(display_name=fallback_name or user_id, timezone=None, is_admin=False)

    async def current_mentors(self, workspace: str, external_ids: Sequence[str]) -> set[str]:
        """bot.matching.MentorDirectory: who of these is in the mentors' channel now."""
        mentors = await self.mentors()
        return {user_id for user_id in external_ids if user_id in mentors}

    async def mentors(self) -> frozenset[str]:
        channel = self.settings.slack_mentor_channel
        if not channel:
            return frozenset()

        async def load() -> frozenset[str]:
            members: set[str] = set()
            cursor: str | None = None
            while True:
                response = await self.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
                members.update(response.get("members") or [])
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return frozenset(members)

        return await self._mentors.get(channel, load)
