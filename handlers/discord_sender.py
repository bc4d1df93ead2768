"""DiscordSender: the outbox's Discord side (bot/outbox.py `Sender`).

Feed cards go to DISCORD_MENTOR_CHANNEL_ID (posted once, then edited in place); DMs go to the
member, with the .ics attached. Works with a gateway client or a REST-only one (the separate
jobs process): it only needs `client.http`, never the cache.

Every send carries the outbox row id as its nonce (see `_send`), so a re-send after a crash
does not duplicate within Discord's dedupe window.

Outcomes: delivered; try again later (429 honouring Retry-After, 5xx, connection trouble); or
undeliverable with a readable reason (DMs closed (50007), unknown user (10013), …).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import aiohttp
import discord

from bot.config import Settings
from bot.notifications import Kind
from bot.outbox import Delivered, DeliveryResult, FeedRef, Opened, Outgoing, RetryLater, Undeliverable
from modals.discord import NO_PINGS, Rendered, render

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL = 0.25

# Discord error codes that will not get better by retrying a DM.
PERMANENT_DM_CODES = {
    50007: "DMs closed (50007)",
    10013: "unknown user (10013)",
    50033: "invalid recipient (50033)",
    50278: "DMs closed (50278)",  # the user blocked the bot / left every mutual server
}


def retry_after_of(exc: discord.HTTPException) -> float | None:
    """Seconds to wait from a 429: discord.RateLimited, or the Retry-After headers."""
    if isinstance(exc, discord.RateLimited):
        return float(exc.retry_after)
    headers = getattr(exc.response, "headers", None) or {}
    for name in ("Retry-After", "X-RateLimit-Reset-After"):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                continue
    return None


def classify(exc: BaseException, *, dm: bool) -> RetryLater | Undeliverable:
    """Turn a failed REST call into the outbox's vocabulary."""
    if isinstance(exc, discord.RateLimited):
        return RetryLater(f"rate limited by Discord ({exc.retry_after:.1f} s)", float(exc.retry_after))
    if isinstance(exc, discord.HTTPException):
        code, status = exc.code, exc.status
        if dm and code in PERMANENT_DM_CODES:
            return Undeliverable(PERMANENT_DM_CODES[code])
        if status == 429:
            return RetryLater("rate limited by Discord (429)", retry_after_of(exc))
        if status >= 500:
            return RetryLater(f"Discord server error ({status})")
        if not dm and status in (403, 404):
            # The mentors' channel is missing or the bot lost access: an admin can fix it.
            return RetryLater(
                f"can't post in the mentors' channel ({status}, code {code}): {exc.text}"[:300],
                until_fixed=True,
            )
        return Undeliverable(f"rejected by Discord ({status}, code {code}): {exc.text}"[:300])
    if isinstance(exc, aiohttp.ClientError | OSError | asyncio.TimeoutError):
        return RetryLater(f"connection problem: {type(exc).__name__}: {exc}"[:300])
    raise exc


def classify_shared(exc: BaseException) -> RetryLater | Undeliverable:
    """A private thread we may not make or use (no permission, channel or member gone) will not
    get better by retrying: DMs only, with the reason on the dashboards."""
    if isinstance(exc, discord.HTTPException) and exc.status in (403, 404):
        return Undeliverable(
            f"private thread not possible in DISCORD_SESSIONS_CHANNEL_ID ({exc.status}, code {exc.code}): "
            f"{exc.text}"[:300]
        )
    return classify(exc, dm=False)


THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080  # a week without messages before Discord hides the thread


def nonce_of(outgoing: Outgoing) -> str:
    return f"mm{outgoing.id}"  # Discord allows up to 25 characters


class DiscordSender:
    platform = "discord"

    def __init__(
        self, client: discord.Client, settings: Settings, *, min_interval: float = DEFAULT_MIN_INTERVAL
    ) -> None:
        self.client = client
        self.settings = settings
        self._min_interval = min_interval

    @property
    def min_interval(self) -> float:
        return self._min_interval

    def channel_key(self, outgoing: Outgoing) -> str:
        if outgoing.conversation is not None:
            return f"conversation:{outgoing.conversation.id}"
        if outgoing.audience == "dm" and outgoing.recipient is not None:
            return f"dm:{outgoing.recipient.external_id}"
        channel = outgoing.feed_ref.channel if outgoing.feed_ref else self.settings.discord_mentor_channel_id
        return f"channel:{channel}"

    async def deliver(self, outgoing: Outgoing) -> DeliveryResult:
        if outgoing.audience == "shared":
            try:
                return await self._shared(outgoing)
            except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as exc:
                result = classify_shared(exc)
                log.info("discord delivery of notification %s: %s", outgoing.id, result)
                return result
        dm = outgoing.audience == "dm"
        try:
            if outgoing.kind is Kind.CLAIM_RETIRED:
                return await self._retire(outgoing)
            return await (self._dm(outgoing) if dm else self._feed(outgoing))
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            result = classify(exc, dm=dm)
            log.info("discord delivery of notification %s: %s", outgoing.id, result)
            return result

    async def _feed(self, outgoing: Outgoing) -> DeliveryResult:
        rendered = render(outgoing.message, audience="feed")
        ref = outgoing.feed_ref
        if outgoing.kind is Kind.CARD and ref is not None:
            channel = self.client.get_partial_messageable(int(ref.channel))
            try:
                await channel.get_partial_message(int(ref.message_ref)).edit(
                    embed=rendered.embed,
                    view=rendered.view,
                    allowed_mentions=rendered.allowed_mentions,
                )
            except discord.NotFound as exc:
                if exc.code in (10008, 10003):  # the card, or its channel, deleted: nothing to update
                    return Undeliverable(f"the card was deleted ({exc.code})")
                raise
            return Delivered()
        channel_id = self.settings.discord_mentor_channel_id
        if channel_id is None:
            return Undeliverable("DISCORD_MENTOR_CHANNEL_ID is not set")
        channel = self.client.get_partial_messageable(channel_id)
        if outgoing.kind is not Kind.CARD and ref is not None:
            # A nudge: point at the card rather than replying (no history permission needed).
            url = f"https://discord.com/channels/{outgoing.workspace}/{ref.channel}/{ref.message_ref}"
            card = f"[Open request #{outgoing.request.id}]({url})"
            rendered.embed.description = "\n".join(filter(None, [rendered.embed.description, card]))
        message = await self._send(channel, rendered, outgoing)
        if outgoing.kind is Kind.CARD:
            return Delivered(FeedRef(str(channel_id), str(message.id)))
        return Delivered(posted=FeedRef(str(channel_id), str(message.id)))

    async def _dm(self, outgoing: Outgoing) -> DeliveryResult:
        recipient = outgoing.recipient
        if recipient is None or not recipient.external_id.isdigit():
            return Undeliverable("not a Discord user")
        channel = await self.client.create_dm(discord.Object(int(recipient.external_id)))
        message = await self._send(channel, render(outgoing.message, audience="dm"), outgoing)
        return Delivered(posted=FeedRef(str(channel.id), str(message.id)))

    async def _retire(self, outgoing: Outgoing) -> DeliveryResult:
        """Edit a delivered Claim message (DM or feed) so it offers Claim no more. A message or
        channel that is gone, or that we may no longer edit, is undeliverable: never retried."""
        ref = outgoing.feed_ref
        if ref is None or not (ref.channel.isdigit() and ref.message_ref.isdigit()):
            return Undeliverable("nothing to edit")
        rendered = render(outgoing.message, audience="dm" if outgoing.audience == "dm" else "feed")
        channel = self.client.get_partial_messageable(int(ref.channel))
        try:
            await channel.get_partial_message(int(ref.message_ref)).edit(
                content=rendered.content,
                embed=rendered.embed,
                view=None,  # no buttons left
                allowed_mentions=NO_PINGS,
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            return Undeliverable(f"can't edit the message ({exc.status}, code {exc.code})")
        return Delivered()

    async def _shared(self, outgoing: Outgoing) -> DeliveryResult:
        """A private thread in DISCORD_SESSIONS_CHANNEL_ID with student and mentor. Making a
        thread is not idempotent: it is made, handed back to be recorded (Opened), and only
        then are the two added and the message posted. After a crash in between (in doubt),
        the thread is looked for by its name before another is made."""
        conversation = outgoing.conversation
        if conversation is None:
            return Undeliverable("no conversation")
        if conversation.channel is None:
            parent = self.settings.discord_sessions_channel_id
            if parent is None:
                return Undeliverable("DISCORD_SESSIONS_CHANNEL_ID is not set")
            if outgoing.in_doubt and (found := await self._thread_named(outgoing, parent)) is not None:
                return Opened(found)
            thread = await self.client.http.start_thread_without_message(
                parent,
                name=conversation.title,
                auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                type=discord.ChannelType.private_thread.value,
                invitable=False,
                reason=f"mentorship request #{outgoing.request.id}",
            )
            return Opened(str(thread["id"]))
        thread_id = int(conversation.channel)
        if outgoing.kind is Kind.CONVERSATION_OPENED:
            for member in conversation.members:  # adding someone already in is a no-op
                if member.external_id.isdigit():
                    await self.client.http.add_user_to_thread(thread_id, int(member.external_id))
        channel = self.client.get_partial_messageable(thread_id)
        await self._send(channel, render(outgoing.message, audience="dm"), outgoing)
        return Delivered()

    async def _thread_named(self, outgoing: Outgoing, parent: int) -> str | None:
        assert outgoing.conversation is not None
        if not outgoing.workspace.isdigit():
            return None
        listing = await self.client.http.get_active_threads(int(outgoing.workspace))
        for thread in listing.get("threads", []):
            same_parent = str(thread.get("parent_id")) == str(parent)
            if same_parent and thread.get("name") == outgoing.conversation.title:
                log.info("conversation %s already had thread %s", outgoing.conversation.id, thread["id"])
                return str(thread["id"])
        return None

    @staticmethod
    async def _send(
        channel: discord.abc.Messageable, rendered: Rendered, outgoing: Outgoing
    ) -> discord.Message:
        # Tagged with the outbox row: discord.py sends the nonce with enforce_nonce, so if a worker
        # died after Discord took the message (the row comes back `in_doubt`), sending it again
        # within Discord's dedupe window returns the same message instead of a duplicate.
        return await channel.send(**rendered.send_kwargs(), nonce=nonce_of(outgoing))
