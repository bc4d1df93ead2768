"""Delivers owed messages to Slack: the outbox's `Sender` for platform "slack".

Feed cards are posted once to SLACK_MENTOR_CHANNEL and then edited in place (chat.update);
DMs go through conversations.open + chat.postMessage, with a calendar file (files upload v2)
when the message carries one. Slack's answers become the outbox's three outcomes: delivered,
retry later (429 with its Retry-After, 5xx, timeouts, connection errors) or undeliverable (DMs
closed, user gone, channel gone…), so the outbox can retry or record the reason.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.notifications import Kind
from bot.outbox import Delivered, DeliveryResult, FeedRef, Outgoing, RetryLater, Undeliverable
from handlers.slack_http import SharedSessionWebClient, SlackHTTP
from modals import forms
from modals.slack import fallback_text, message_blocks

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"

# Errors that no retry will fix: the outbox records them as the failure reason.
UNDELIVERABLE = frozenset(
    {
        "cannot_dm_bot",
        "user_not_found",
        "user_disabled",
        "account_inactive",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "message_not_found",
        "cant_update_message",
        "restricted_action",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "msg_too_long",
        "no_text",
    }
)
# A new post to the mentors' channel that waits for an admin instead of failing for good.
FEED_NEEDS_AN_ADMIN = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
# Why a group DM can't be opened, for good (the DMs carry on alone): a person deactivated or
# gone, or an install from before the app asked for mpim:write.
GROUP_DM_UNDELIVERABLE = frozenset(
    {
        "missing_scope",
        "user_disabled",
        "account_inactive",
        "user_not_found",
        "user_not_visible",
        "cannot_dm_bot",
        "not_allowed_token_type",
        "restricted_action",
        "too_many_users",
        "invalid_users",
    }
)
PARTIAL_MEMORY = 1000
RECENT_MESSAGES = 100  # how far back to look for a message that may have been sent already
METADATA_EVENT = "mm_notification"


def _metadata(outgoing: Outgoing) -> dict[str, object]:
    """Slack message metadata naming the outbox row, so a re-delivery can find the original."""
    payload = {"notification": outgoing.id, "request": outgoing.request.id, "kind": outgoing.kind.value}
    return {"event_type": METADATA_EVENT, "event_payload": payload}


def api_url(settings: Settings) -> str:
    """SLACK_API_URL (tests and local fakes) or Slack's own; slack_sdk needs the trailing slash."""
    url = (settings.slack_api_url or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


def make_client(settings: Settings, *, interactive: bool, http: SlackHTTP | None = None) -> AsyncWebClient:
    """Interactive calls (modals, ephemerals) retry a 429 or 5xx briefly in the client; the
    outbox's client does not, because the outbox itself retries with backoff and pauses the
    channel for Retry-After, without holding up other channels. With `http`, calls go over the
    process's shared connections."""
    handlers = async_default_handlers()  # connection errors
    if interactive:
        handlers += [
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ]
    options: dict[str, object] = {
        "token": settings.slack_bot_token,
        "base_url": api_url(settings),
        "timeout": 15 if interactive else 20,
        "retry_handlers": handlers,
    }
    if http is not None:
        return SharedSessionWebClient(http, **options)
    return AsyncWebClient(**options)  # type: ignore[arg-type]


def classify(exc: Exception) -> RetryLater | Undeliverable:
    """What a failed Slack call means for the outbox."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        data = exc.response.data
        error = str(data.get("error") or "") if isinstance(data, dict) else ""
        if status == 429 or error == "ratelimited":
            retry_after = (exc.response.headers or {}).get("Retry-After") or (exc.response.headers or {}).get(
                "retry-after"
            )
            try:
                after = float(retry_after) if retry_after is not None else 1.0
            except ValueError:
                after = 1.0
            return RetryLater("ratelimited", after_seconds=max(after, 0.0))
        if status >= 500:
            return RetryLater(f"http_{status}")
        if error in UNDELIVERABLE:
            return Undeliverable(error)
        return RetryLater(error or f"http_{status}")
    if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
        return RetryLater(f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__)
    raise exc


def _group_dm_failed(exc: SlackApiError) -> RetryLater | Undeliverable:
    data = exc.response.data
    error = str(data.get("error") or "") if isinstance(data, dict) else ""
    if error == "missing_scope":
        needed = str(data.get("needed") or "mpim:write") if isinstance(data, dict) else "mpim:write"
        return Undeliverable(f"missing_scope: the app needs {needed}; reinstall it from the manifest")
    if error in GROUP_DM_UNDELIVERABLE:
        return Undeliverable(f"group DM not possible: {error}")
    return classify(exc)


class SlackSender:
    platform = "slack"

    def __init__(
        self,
        settings: Settings,
        *,
        client: AsyncWebClient | None = None,
        min_interval: float | None = None,
        http: SlackHTTP | None = None,
    ) -> None:
        self.settings = settings
        # Its own connections unless it shares the process's (the Slack app's): closed by close().
        self._own_http = SlackHTTP() if http is None and client is None else None
        self.client = client or make_client(settings, interactive=False, http=http or self._own_http)
        # Slack allows about one message per second per channel (SLACK_CHANNEL_POST_INTERVAL).
        self.min_interval = settings.slack_channel_post_interval if min_interval is None else min_interval
        self._dm_channels: dict[str, str] = {}
        # A DM posted whose calendar file then failed: on retry only the file is sent again,
        # so the person doesn't get the message twice.
        self._posted: OrderedDict[int, tuple[str, str]] = OrderedDict()

    async def close(self) -> None:
        if self._own_http is not None:
            await self._own_http.close()

    def channel_key(self, outgoing: Outgoing) -> str:
        if outgoing.audience == "feed":
            return (
                outgoing.feed_ref.channel
                if outgoing.feed_ref
                else (self.settings.slack_mentor_channel or "feed")
            )
        if outgoing.conversation is not None:
            return f"conversation:{outgoing.conversation.id}"
        return outgoing.recipient.external_id if outgoing.recipient else f"outgoing:{outgoing.id}"

    async def deliver(self, outgoing: Outgoing) -> DeliveryResult:
        try:
            if outgoing.kind is Kind.CLAIM_RETIRED:
                return await self._retire(outgoing)
            if outgoing.audience == "feed":
                return await self._feed(outgoing)
            if outgoing.audience == "shared":
                return await self._shared(outgoing)
            return await self._dm(outgoing)
        except Exception as exc:
            result = classify(exc)
            log.info("slack delivery of notification %s: %s", outgoing.id, result)
            return result

    async def _feed(self, outgoing: Outgoing) -> DeliveryResult:
        channel = self.settings.slack_mentor_channel
        if not channel:
            return Undeliverable("SLACK_MENTOR_CHANNEL is not set")
        try:
            return await self._feed_in(channel, outgoing)
        except SlackApiError as exc:
            data = exc.response.data
            error = str(data.get("error") or "") if isinstance(data, dict) else ""
            if outgoing.feed_ref is None and error in FEED_NEEDS_AN_ADMIN:
                # Nothing is in the feed yet, and only an admin can let it in (the app removed
                # from the channel, the channel archived): it waits, however long that takes.
                return RetryLater(
                    f"can't post in the mentors' channel ({error}): invite the app to "
                    "SLACK_MENTOR_CHANNEL again, or unarchive it",
                    until_fixed=True,
                )
            raise

    async def _feed_in(self, channel: str, outgoing: Outgoing) -> DeliveryResult:
        zone = forms.zone(self.settings.default_timezone)
        text, blocks = fallback_text(outgoing.message), message_blocks(outgoing.message, zone)
        ref = outgoing.feed_ref
        if outgoing.kind is Kind.CARD and ref is None and outgoing.in_doubt:
            # The card may be in the channel already, posted by an attempt that was never
            # recorded: bring that one up to date instead of posting a second card.
            found = await self._already_posted(channel, outgoing, same_request_card=True)
            if found is not None:
                ref = FeedRef(found["channel"], found["ts"])
                await self.client.chat_update(
                    channel=ref.channel, ts=ref.message_ref, text=text, blocks=blocks
                )
                return Delivered(ref)
        if outgoing.kind is Kind.CARD and ref is not None:
            await self.client.chat_update(channel=ref.channel, ts=ref.message_ref, text=text, blocks=blocks)
            return Delivered()
        target = ref.channel if ref else channel
        found = await self._already_posted(target, outgoing) if outgoing.in_doubt else None
        response = found or await self.client.chat_postMessage(
            channel=target,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
            metadata=_metadata(outgoing),
        )
        posted = FeedRef(str(response["channel"]), str(response["ts"]))
        if outgoing.kind is Kind.CARD:
            return Delivered(posted)
        return Delivered(posted=posted)  # an escalation is a message of its own, never the card

    async def _retire(self, outgoing: Outgoing) -> DeliveryResult:
        """Edit a delivered Claim message (a DM or a feed message) so it offers Claim no more.
        A message someone deleted answers message_not_found: undeliverable, never retried."""
        ref = outgoing.feed_ref
        if ref is None:
            return Undeliverable("nothing to edit")
        zone = forms.zone(
            outgoing.recipient.timezone if outgoing.recipient else None, self.settings.default_timezone
        )
        await self.client.chat_update(
            channel=ref.channel,
            ts=ref.message_ref,
            text=fallback_text(outgoing.message),
            blocks=message_blocks(outgoing.message, zone),
        )
        return Delivered()

    async def _dm(self, outgoing: Outgoing) -> DeliveryResult:
        recipient = outgoing.recipient
        if recipient is None:
            return Undeliverable("no recipient")
        message = outgoing.message
        posted = self._posted.get(outgoing.id)
        if posted is None:
            channel = await self._dm_channel(recipient.external_id)
            zone = forms.zone(recipient.timezone, self.settings.default_timezone)
            found = await self._already_posted(channel, outgoing) if outgoing.in_doubt else None
            response = found or await self.client.chat_postMessage(
                channel=channel,
                text=fallback_text(message),
                blocks=message_blocks(message, zone),
                unfurl_links=False,
                unfurl_media=False,
                metadata=_metadata(outgoing),
            )
            posted = (channel, str(response["ts"]))
        if message.attachment is not None:
            self._remember(outgoing.id, posted)
            await self.client.files_upload_v2(
                channel=posted[0],
                content=message.attachment.content,
                filename=message.attachment.filename,
                title=message.attachment.title,
            )
            self._posted.pop(outgoing.id, None)
        return Delivered(posted=FeedRef(*posted))

    async def _shared(self, outgoing: Outgoing) -> DeliveryResult:
        """The group DM of student, mentor and bot. conversations.open with the same people
        always answers the same channel, so opening again after a crash is harmless: the first
        line is posted at once and the channel recorded with it (`Delivered.opened`). The post
        itself is checked for (in doubt) like any DM."""
        conversation = outgoing.conversation
        if conversation is None:
            return Undeliverable("no conversation")
        channel, opened = conversation.channel, None
        if channel is None:
            users = ",".join(member.external_id for member in conversation.members)
            try:
                response = await self.client.conversations_open(users=users)
            except SlackApiError as exc:
                return _group_dm_failed(exc)
            channel = opened = str((response.get("channel") or {})["id"])
        zone = forms.zone(self.settings.default_timezone)
        found = await self._already_posted(channel, outgoing) if outgoing.in_doubt else None
        if found is None:
            await self.client.chat_postMessage(
                channel=channel,
                text=fallback_text(outgoing.message),
                blocks=message_blocks(outgoing.message, zone),
                unfurl_links=False,
                unfurl_media=False,
                metadata=_metadata(outgoing),
            )
        return Delivered(opened=opened)

    async def _already_posted(
        self, channel: str, outgoing: Outgoing, *, same_request_card: bool = False
    ) -> dict[str, str] | None:
        """After a crash or a timeout between Slack accepting a message and the outbox recording
        it, find that message by its metadata (this notification, or any card of the same
        request) instead of posting it twice."""
        response = await self.client.conversations_history(
            channel=channel, limit=RECENT_MESSAGES, include_all_metadata=True
        )
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if same_request_card:
                match = (
                    payload.get("kind") == Kind.CARD.value and payload.get("request") == outgoing.request.id
                )
            else:
                match = payload.get("notification") == outgoing.id
            if match:
                log.info("notification %s was already in %s; not posting it again", outgoing.id, channel)
                return {"channel": channel, "ts": str(message["ts"])}
        return None

    async def _dm_channel(self, user_id: str) -> str:
        channel = self._dm_channels.get(user_id)
        if channel is None:
            response = await self.client.conversations_open(users=user_id)
            channel = str((response.get("channel") or {})["id"])
            self._dm_channels[user_id] = channel
        return channel

    def _remember(self, outgoing_id: int, posted: tuple[str, str]) -> None:
        self._posted[outgoing_id] = posted
        while len(self._posted) > PARTIAL_MEMORY:
            self._posted.popitem(last=False)
