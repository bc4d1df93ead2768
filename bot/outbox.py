"""The outbox contract: how use cases owe messages, and how platforms deliver them.

Use cases call `owe_dm` / `owe_card` inside their own transaction, so a message is owed if and
only if the state change happened. jobs/delivery.py later leases due rows and hands each one,
composed, to the `Sender` of its platform.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import MemberRef, RequestView
from bot.messages import Message
from bot.notifications import FEED_KINDS, Kind
from storage import repository as repo

BATCH = "owed_together"  # session.info key: rows of `owing_together`, written on its exit


@asynccontextmanager
async def owing_together(session: AsyncSession) -> AsyncIterator[None]:
    """Write the rows owed inside this block in one statement when it ends (still inside the
    caller's transaction): a use case that owes several messages pays one round trip for them.
    Inside, the owe_* functions answer True: whether a row was new (not a duplicate of its
    dedupe key) is known only once the batch is written, so a caller that needs the answer
    owes outside the block. Rows are written in the order they were owed, after every other
    statement of the block (e.g. `owe_card`'s superseding of older card rows); on PostgreSQL
    the INSERT goes with the transaction's next statement or its COMMIT."""
    rows: list[dict[str, Any]] = []
    session.info[BATCH] = rows
    try:
        yield
    finally:
        del session.info[BATCH]
    await repo.add_notifications_later(session, rows)


async def _owe(
    session: AsyncSession,
    *,
    request: RequestView,
    audience: str,
    kind: Kind,
    dedupe_key: str,
    now: datetime,
    member_id: int | None = None,
    session_id: int | None = None,
    payload: dict[str, Any] | None = None,
    due_at: datetime | None = None,
) -> bool:
    """One outbox row; a second row with the same dedupe key is silently not added."""
    row = {
        "platform": request.platform,
        "workspace": request.workspace,
        "audience": audience,
        "member_id": member_id,
        "request_id": request.id,
        "session_id": session_id,
        "kind": kind.value,
        "payload": payload or {},
        "dedupe_key": dedupe_key,
        "status": "pending",
        "due_at": due_at or now,
        "next_attempt_at": due_at or now,
        "attempts": 0,
        "created_at": now,
    }
    batch: list[dict[str, Any]] | None = session.info.get(BATCH)
    if batch is not None:
        batch.append(row)
        return True
    return await repo.add_notification(session, **row)


async def owe_dm(
    session: AsyncSession,
    *,
    request: RequestView,
    to: MemberRef,
    kind: Kind,
    now: datetime,
    key: str,
    payload: dict[str, Any] | None = None,
    due_at: datetime | None = None,
    session_id: int | None = None,
) -> bool:
    return await _owe(
        session,
        request=request,
        audience="dm",
        kind=kind,
        now=now,
        member_id=to.id,
        session_id=session_id,
        payload=payload,
        due_at=due_at,
        dedupe_key=f"{kind.value}:{key}:to:{to.id}",
    )


async def owe_card(
    session: AsyncSession, *, request: RequestView, now: datetime, supersede: bool = True
) -> None:
    """Owe an update of the request's feed card. Older pending updates are superseded: the card
    is drawn from the current state at delivery, so only the newest matters."""
    if supersede:
        await repo.retire_pending(session, status="superseded", request_id=request.id, kinds=["card"])
    await _owe(
        session,
        request=request,
        audience="feed",
        kind=Kind.CARD,
        now=now,
        dedupe_key=f"card:{request.id}:v{request.version}",
    )


async def owe_feed(
    session: AsyncSession,
    *,
    request: RequestView,
    kind: Kind,
    key: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> bool:
    assert kind in FEED_KINDS
    return await _owe(
        session,
        request=request,
        audience="feed",
        kind=kind,
        now=now,
        payload=payload,
        dedupe_key=f"{kind.value}:{key}",
    )


async def owe_retirement(
    session: AsyncSession,
    *,
    request: RequestView,
    audience: str,
    member_id: int | None,
    target_id: int,
    now: datetime,
) -> bool:
    """Owe the edit that takes the Claim button off one delivered message (notification
    `target_id`). Once per message, however often it is owed."""
    return await _owe(
        session,
        request=request,
        audience=audience,
        kind=Kind.CLAIM_RETIRED,
        now=now,
        member_id=member_id,
        payload={"target": target_id},
        dedupe_key=f"{Kind.CLAIM_RETIRED.value}:{target_id}",
    )


async def owe_shared(
    session: AsyncSession,
    *,
    request: RequestView,
    conversation_id: int,
    kind: Kind,
    key: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> bool:
    """A message to the shared conversation of student and mentor (see bot/conversations.py)."""
    return await _owe(
        session,
        request=request,
        audience="shared",
        kind=kind,
        now=now,
        payload={**(payload or {}), "conversation_id": conversation_id},
        dedupe_key=f"{kind.value}:{key}:shared:{conversation_id}",
    )


async def owe_digest(
    session: AsyncSession,
    *,
    platform: str,
    workspace: str,
    request_ids: list[int],
    key: str,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """Owe one feed message about several requests (the daily digest). The row points at the
    first of them; the payload names them all. False if `key` was owed already."""
    return await repo.add_notification(
        session,
        platform=platform,
        workspace=workspace,
        audience="feed",
        member_id=None,
        request_id=request_ids[0],
        session_id=None,
        kind=Kind.DIGEST.value,
        payload=payload,
        dedupe_key=key,
        status="pending",
        due_at=now,
        next_attempt_at=now,
        attempts=0,
        created_at=now,
    )


# Delivery contract -------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedRef:
    """Where a request's card already is (channel id + message ts / message id)."""

    channel: str
    message_ref: str


@dataclass(frozen=True)
class ConversationRef:
    """The shared conversation a "shared" row goes to; `channel` is None until it is opened."""

    id: int
    members: tuple[MemberRef, ...]  # the student, then the mentor
    channel: str | None
    title: str  # a name for it where the platform shows one (a Discord thread)


@dataclass(frozen=True)
class Outgoing:
    """One owed message, composed and ready for a platform."""

    id: int
    kind: Kind
    audience: str  # "dm" | "feed" | "shared"
    workspace: str
    recipient: MemberRef | None  # None for the feed
    request: RequestView
    message: Message
    # For card updates: the card to edit, if posted already. For CLAIM_RETIRED: the message to edit.
    feed_ref: FeedRef | None
    # A previous attempt may have reached the platform before its worker died: check for the
    # message (senders tag each one with the notification id) before sending it again.
    in_doubt: bool = False
    conversation: ConversationRef | None = None  # for "shared" rows


@dataclass(frozen=True)
class Delivered:
    feed_ref: FeedRef | None = None  # a newly posted card, to remember
    # Where a new message was posted (channel or DM channel + message ref): remembered for
    # messages with a Claim button, so they can be edited once the request is taken.
    posted: FeedRef | None = None
    # The shared conversation this post was the first line of, opened on the way (a Slack group
    # DM: opening again returns the same one, so it is recorded with the rest of the batch).
    opened: str | None = None


@dataclass(frozen=True)
class RetryLater:
    reason: str
    after_seconds: float | None = None  # from Retry-After, when the platform said
    # Only an operator can fix it (the bot's access to the mentors' channel): retried for as
    # long as it takes, at most MAX_BACKOFF apart, and never given up on.
    until_fixed: bool = False


@dataclass(frozen=True)
class Undeliverable:
    """Will never work (DMs closed, user gone): recorded as failed with the reason."""

    reason: str


@dataclass(frozen=True)
class Opened:
    """The shared conversation now exists at `channel`, and nothing is posted in it yet: the
    outbox records the channel first, then hands the same row back to post its message. So a
    crash after this never makes a second conversation. For platforms whose "open" makes a new
    one each time (a Discord thread); where opening is idempotent, post and answer
    `Delivered(opened=...)` instead, one transaction fewer."""

    channel: str


DeliveryResult = Delivered | RetryLater | Undeliverable | Opened


class Sender(Protocol):
    """Implemented by each platform adapter (handlers/slack.py, handlers/discord.py)."""

    platform: str

    def channel_key(self, outgoing: Outgoing) -> str:
        """Messages with the same key are paced together (one channel / one DM)."""
        ...

    @property
    def min_interval(self) -> float:
        """Seconds between two messages to one channel (the platform's rate limit)."""
        ...

    async def deliver(self, outgoing: Outgoing) -> DeliveryResult: ...
