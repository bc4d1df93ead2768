"""The outbox worker: leases due notifications, composes them, hands them to each platform's
Sender, and records the outcome.

- Due means `next_attempt_at <= now` (reminders are simply rows due in the future), or a lease
  that ran out because a worker died between claiming and recording.
- Failures are retried with exponential backoff and jitter, never sooner than Retry-After,
  and given up after MAX_ATTEMPTS with the reason recorded.
- Messages to one channel go one after another, `sender.min_interval` apart; a 429 pauses the
  rest of that channel's batch instead of hammering the limit. Different channels run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from bot import digest
from bot.clock import Clock
from bot.domain import MemberRef, RequestView, SessionStatus, Status
from bot.metrics import Metrics
from bot.notifications import CLAIMABLE_KINDS, Kind, compose, compose_shared
from bot.outage import OutageTracker
from bot.outbox import (
    ConversationRef,
    Delivered,
    DeliveryResult,
    FeedRef,
    Opened,
    Outgoing,
    RetryLater,
    Sender,
    Undeliverable,
    owe_dm,
    owe_retirement,
)
from storage import ladder
from storage import repository as repo
from storage.db import Database, together
from storage.models import Member, Notification
from storage.repository import Leased

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_BACKOFF = 2.0  # seconds; doubles per attempt
MAX_BACKOFF = 15 * 60.0
LEASE = timedelta(minutes=2)
# A group still sending this close to its lease's end hands the rest back instead: after the
# lease another worker may take the rows, and both would post them (a send can take ~20 s).
LEASE_MARGIN = timedelta(seconds=30)
LATE_AFTER = timedelta(minutes=2)  # a reminder this much past its moment says it is late
# News for a shared conversation still being opened waits this long (no attempt counted).
CONVERSATION_WAIT = 5.0
OVERTAKEN = "a later reminder for the session is due as well"
# What this code can compose; rows of a newer release's kinds are left for that release.
KNOWN_KINDS = tuple(sorted(kind.value for kind in Kind))


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.skipped


class Delivery:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        senders: dict[str, Sender] | None = None,
        *,
        batch_size: int = 100,
        max_attempts: int = MAX_ATTEMPTS,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        outage: OutageTracker | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.senders: dict[str, Sender] = dict(senders or {})
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self._rng = rng or random.Random()
        self.metrics = metrics or Metrics()
        self.outage = outage or OutageTracker(clock)
        self._wakeup = asyncio.Event()
        self._pass = asyncio.Lock()
        self._last_send: dict[str, float] = {}
        self._paused_until: dict[str, datetime] = {}  # channel -> Retry-After, on the clock

    def add_sender(self, sender: Sender) -> None:
        self.senders[sender.platform] = sender

    def wake(self) -> None:
        """Deliver now rather than at the next tick (called after a use case commits)."""
        self._wakeup.set()

    # One pass ------------------------------------------------------------------------------

    async def run_once(self) -> DeliveryStats:
        """Deliver everything due now, batch after batch, then return. One pass at a time per
        process, so two passes never race to post the same request's card."""
        async with self._pass:
            return await self._run_passes()

    async def _run_passes(self) -> DeliveryStats:
        stats = DeliveryStats()
        while True:
            before = stats.handled
            await self._run_batch(stats)
            if stats.handled == before or stats.handled - before < self.batch_size:
                return stats

    async def _run_batch(self, stats: DeliveryStats) -> None:
        now = self.clock.now()
        groups: dict[str, list[tuple[Leased, Outgoing | None]]] = defaultdict(list)
        skipped: list[tuple[Leased, str]] = []
        # The lease and the reads that compose the batch in one transaction: it commits (the
        # lease taken) before anything is sent.
        async with self.db.transaction() as session:
            rows = await repo.claim_due_notifications(
                session, now, now + LEASE, self.batch_size, platforms=list(self.senders), kinds=KNOWN_KINDS
            )
            if not rows:
                return
            # Four queries for the whole batch, not four per row, sent in one round trip.
            requests = sorted({r.request_id for r in rows if r.request_id})
            views, readers, posts, talks = await together(
                session,
                repo.request_views_by_id(session, requests),
                repo.members_by_id(session, (r.member_id for r in rows if r.member_id)),
                repo.feed_posts(session, requests),
                repo.conversations_by_id(
                    session,
                    (int(r.payload.get("conversation_id") or 0) for r in rows if r.audience == "shared"),
                ),
            )
            stale, inherit = _reminders_overtaken(rows)
            for row in rows:
                if row.id in stale:
                    skipped.append((row, OVERTAKEN))
                    continue
                if row.id in inherit:
                    # Stored too: if this one is retried, it still carries Can't make it.
                    await repo.give_cant_make_it(session, row.id)
                    row = replace(row, payload={**(row.payload or {}), "cant_make_it": True})
                outgoing, skip_reason = await self._prepare(session, row, now, views, readers, posts, talks)
                if outgoing is None:
                    skipped.append((row, skip_reason))
                    continue
                sender = self.senders[row.platform]
                groups[f"{row.platform}:{sender.channel_key(outgoing)}"].append((row, outgoing))
        for row, reason in skipped:
            await self._finish(row, stats, status="skipped", reason=reason)
        sent: list[tuple[Leased, Outgoing, Delivered]] = []
        try:
            await asyncio.gather(
                *(
                    self._deliver_group(key, items, stats, sent, deadline=now + LEASE - LEASE_MARGIN)
                    for key, items in groups.items()
                )
            )
        finally:
            await self._record_sent(sent, stats)

    async def _prepare(
        self,
        session: AsyncSession,
        row: Leased,
        now: datetime,
        views: dict[int, RequestView],
        readers: dict[int, MemberRef],
        posts: dict[int, Row[Any]],
        talks: dict[int, Row[Any]],
    ) -> tuple[Outgoing | None, str]:
        """Compose the row against the current state, or say why it is no longer owed."""
        kind = Kind(row.kind)
        request = views.get(row.request_id) if row.request_id else None
        reader = readers.get(row.member_id) if row.member_id else None
        post = posts.get(row.request_id) if row.request_id else None
        if request is None:
            return None, "request is gone"
        payload = dict(row.payload or {})
        if kind is Kind.REMINDER:
            live = request.session
            if (
                request.status is not Status.SCHEDULED
                or live is None
                or live.status is not SessionStatus.SCHEDULED
                or live.id != row.session_id
                or live.schedule_version != payload.get("schedule_version")
            ):
                return None, "session moved or ended"
            if live.starts_at <= now:
                return None, "session already started"
            # The jobs were down through this one and a later one is due too (in another batch,
            # or another worker's): that one is sent instead, and takes over Can't make it.
            if await repo.overtake_reminder(
                session, row, now, cant_make_it=bool(payload.get("cant_make_it"))
            ):
                return None, OVERTAKEN
            payload["late"] = now - row.due_at > LATE_AFTER
        if kind in CLAIMABLE_KINDS and request.status is not Status.OPEN:
            return None, "request no longer open"  # never post a Claim button for a taken request
        if kind is Kind.CLAIM_RETIRED:
            target = await session.get(Notification, int(payload.get("target", 0)))
            if target is None or target.channel is None or target.message_ref is None:
                return None, "nothing to edit"
            post = None
            retire_ref: FeedRef | None = FeedRef(target.channel, target.message_ref)
        else:
            retire_ref = None
        listed: list[RequestView] = []
        if kind is Kind.DIGEST:
            ids = [int(i) for i in payload.get("requests", []) if isinstance(i, int)]
            by_id = await repo.request_views_by_id(session, ids)  # one query, the listed order kept
            listed = digest.still_open([by_id.get(i) for i in ids])
            if not listed:
                return None, "nothing listed is open any more"
            post = None  # a message of its own about several requests, never one card
        # Could an earlier attempt have reached the platform unrecorded? Then the sender looks first.
        in_doubt = bool(row.in_doubt) or row.attempts > 0
        if kind is Kind.CARD and post is None and not in_doubt:
            in_doubt = await repo.card_maybe_posted(session, request.id, row.id)
        conversation: ConversationRef | None = None
        if row.audience == "shared":
            found = talks.get(int(payload.get("conversation_id") or 0))
            if found is None:
                return None, "conversation is gone"
            if found.status == "failed":
                return None, f"no shared conversation ({found.failed_reason})"
            if kind is Kind.CONVERSATION_OPENED and found.channel is None and found.closed_at is not None:
                # Released or cancelled before it was ever opened: don't open it just to close it.
                await repo.fail_conversation(session, found.id, "closed before it was opened")
                return None, "conversation closed before it was opened"
            # The pair is the request's student and claiming mentor, already in the view.
            known = {ref.id: ref for ref in (request.student, request.claimed_by) if ref is not None}
            pair: list[MemberRef] = []
            for member_id in (found.student_id, found.mentor_id):
                ref = known.get(member_id)
                if ref is None and (member := await session.get(Member, member_id)) is not None:
                    ref = repo.member_ref(member)
                if ref is not None:
                    pair.append(ref)
            channel = found.channel
            if (
                channel is not None
                and kind is not Kind.CONVERSATION_OPENED
                and await repo.earlier_shared_news_owed(session, request.id, row.id, row.claim_token)
            ):
                # An earlier line is another worker's or still due: this one waits for it, through
                # the same path as news waiting for the conversation to open.
                channel = None
            conversation = ConversationRef(
                id=found.id,
                members=tuple(pair),
                channel=channel,
                title=f"Mentorship #{request.id} · c{found.id}",
            )
            message = compose_shared(kind, payload, request, now)
        elif kind is Kind.DIGEST:
            message = digest.compose(listed, payload, now)
        else:
            message = compose(kind, payload, request, reader, now)
        feed_ref = FeedRef(post.channel, post.message_ref) if post is not None else retire_ref
        return (
            Outgoing(
                id=row.id,
                kind=kind,
                audience=row.audience,
                workspace=row.workspace,
                recipient=reader,
                request=request,
                message=message,
                feed_ref=feed_ref,
                in_doubt=in_doubt,
                conversation=conversation,
            ),
            "",
        )

    async def _record_sent(
        self, sent: list[tuple[Leased, Outgoing, Delivered]], stats: DeliveryStats
    ) -> None:
        """Record the deliveries made so far in one transaction (and empty `sent`): the channels
        of shared conversations opened on the way, new cards' places, where each Claim message
        went, then the plain rows of a lease in one statement."""
        if not sent:
            return
        # In request order: two workers locking the same requests (below) never deadlock.
        done, sent[:] = sorted(sent, key=lambda item: item[0].request_id or 0), []
        now = self.clock.now()
        async with self.db.transaction() as session:
            plain: dict[str | None, list[int]] = defaultdict(list)
            for row, outgoing, result in done:
                if result.opened is not None and outgoing.conversation is not None:
                    await self._record_channel(session, outgoing.conversation.id, result.opened)
                if result.feed_ref is not None and row.request_id is not None and outgoing.feed_ref is None:
                    await repo.record_feed_post(
                        session,
                        row.request_id,
                        row.platform,
                        result.feed_ref.channel,
                        result.feed_ref.message_ref,
                        now,
                    )
                if result.posted is None or outgoing.kind not in CLAIMABLE_KINDS or not row.request_id:
                    plain[row.claim_token].append(row.id)
                    continue
                # A Claim message: where it went is recorded, so it can be retired. Locks the
                # request row first: a concurrent claim either sees this place in retire_claims,
                # or has committed and we see that it is no longer open.
                status = await ladder.request_status(session, row.request_id, lock=True)
                recorded = await repo.finish_notification(
                    session,
                    row.id,
                    row.claim_token,
                    status="sent",
                    sent_at=now,
                    attempts=row.attempts + 1,
                    lease_until=None,
                    channel=result.posted.channel,
                    message_ref=result.posted.message_ref,
                )
                if recorded and status != Status.OPEN.value:
                    # Taken while this message was on its way: retire_claims did not see it.
                    await owe_retirement(
                        session,
                        request=outgoing.request,
                        audience=row.audience,
                        member_id=row.member_id,
                        target_id=row.id,
                        now=now,
                    )
                    self.wake()
            for token, ids in plain.items():
                await repo.finish_sent_later(session, ids, token, now)  # with the COMMIT
        for row, _, _ in done:
            stats.sent += 1
            self.metrics.deliveries.labels(kind=row.kind).inc()

    async def _deliver_group(
        self,
        key: str,
        items: list[tuple[Leased, Outgoing | None]],
        stats: DeliveryStats,
        sent: list[tuple[Leased, Outgoing, Delivered]],
        *,
        deadline: datetime,
    ) -> None:
        for index, (row, outgoing) in enumerate(items):
            assert outgoing is not None
            sender = self.senders[row.platform]
            if self.clock.now() >= deadline:
                # A long paced group: the lease is nearly over. The rest go back, due now (no
                # attempt counted), for the next pass to lease afresh; nothing is posted twice.
                for rest, _ in items[index:]:
                    await self._postpone(rest, 0)
                    stats.retried += 1
                return
            paused_until = self._paused_until.get(key)
            paused = (paused_until - self.clock.now()).total_seconds() if paused_until else 0.0
            if paused > 0:
                # The channel is rate limited: put the rest back, due when the limit lifts.
                for rest, _ in items[index:]:
                    await self._postpone(rest, paused)
                    stats.retried += 1
                    self.metrics.retries.labels(kind=rest.kind).inc()
                return
            wait = self._last_send.get(key, 0.0) + sender.min_interval - time.monotonic()
            if wait > 0:
                await self._record_sent(sent, stats)  # what is out so far, while this channel waits
                await asyncio.sleep(wait)
            waiting = outgoing.conversation is not None and outgoing.conversation.channel is None
            if waiting and outgoing.kind is not Kind.CONVERSATION_OPENED:
                # News for a conversation not opened yet (maybe just now, earlier in this group:
                # then its channel is recorded first, with what is out so far).
                if any(result.opened for _, _, result in sent):
                    await self._record_sent(sent, stats)
                ready = await self._conversation_ready(row, outgoing, stats)
                if ready is None:
                    continue
                outgoing = ready
            result = await self._send(sender, row, outgoing)
            if isinstance(result, Opened):
                # Recorded before anything is posted there; then the same row goes on to post.
                outgoing = await self._opened(row, outgoing, result.channel)
                result = await self._send(sender, row, outgoing)
                if isinstance(result, Opened):
                    result = RetryLater("the sender opened the conversation twice")
            self._last_send[key] = time.monotonic()
            if isinstance(result, Delivered):
                sent.append((row, outgoing, result))  # recorded with the rest of the batch
            else:
                await self._record(row, outgoing, result, stats, key)

    async def _send(self, sender: Sender, row: Leased, outgoing: Outgoing) -> DeliveryResult:
        try:
            return await sender.deliver(outgoing)
        except Exception as exc:  # a sender bug must not stop the worker or lose the row
            log.exception("sender %s crashed on notification %s", row.platform, row.id)
            return RetryLater(f"{type(exc).__name__}: {exc}"[:300])

    async def _opened(self, row: Leased, outgoing: Outgoing, channel: str) -> Outgoing:
        """A conversation that is not idempotent to open (a thread): its channel is recorded
        in a transaction of its own before anything is posted there."""
        assert outgoing.conversation is not None
        async with self.db.transaction() as session:
            winner = await self._record_channel(session, outgoing.conversation.id, channel)
        return replace(outgoing, conversation=replace(outgoing.conversation, channel=winner))

    async def _record_channel(self, session: AsyncSession, conversation_id: int, channel: str) -> str:
        winner = await repo.record_conversation_channel(session, conversation_id, channel, self.clock.now())
        if winner is not None and winner != channel:
            log.warning(
                "conversation %s was opened at %s already; %s is not used",
                conversation_id,
                winner,
                channel,
            )
        return winner or channel

    async def _conversation_ready(
        self, row: Leased, outgoing: Outgoing, stats: DeliveryStats
    ) -> Outgoing | None:
        """The row with its conversation's channel, or None when it can't go yet (postponed) or
        ever (the conversation failed: skipped, the DMs carry the news)."""
        assert outgoing.conversation is not None
        async with self.db.transaction() as session:
            found = await repo.conversation(session, outgoing.conversation.id)
            # Lines that waited for the conversation may be held by different workers once it
            # opens: each goes after those written before it (the intro, "scheduled", then
            # "cancelled"), so the thread reads in the order things happened.
            behind = (
                found is not None
                and found.channel is not None
                and row.request_id is not None
                and await repo.earlier_shared_news_owed(session, row.request_id, row.id, row.claim_token)
            )
        if found is not None and found.channel is not None and not behind:
            return replace(outgoing, conversation=replace(outgoing.conversation, channel=found.channel))
        if found is None or found.status == "failed":
            reason = found.failed_reason if found is not None else "gone"
            await self._finish(row, stats, status="skipped", reason=f"no shared conversation ({reason})")
            return None
        await self._postpone(row, CONVERSATION_WAIT)  # not open yet, or earlier news still owed
        stats.retried += 1
        return None

    async def _record(
        self,
        row: Leased,
        outgoing: Outgoing,
        result: RetryLater | Undeliverable,
        stats: DeliveryStats,
        key: str,
    ) -> None:
        now = self.clock.now()
        attempts = row.attempts + 1
        waits = isinstance(result, RetryLater) and result.until_fixed
        if isinstance(result, Undeliverable) or (attempts >= self.max_attempts and not waits):
            reason = result.reason if isinstance(result, Undeliverable) else f"gave up: {result.reason}"
            await self._finish(row, stats, status="failed", reason=reason, attempts=attempts)
            log.warning("notification %s (%s) failed: %s", row.id, row.kind, reason)
            if outgoing.kind is Kind.CONVERSATION_OPENED and outgoing.conversation is not None:
                # DMs only from now on; the failed row is what dashboards show.
                async with self.db.transaction() as session:
                    await repo.fail_conversation(session, outgoing.conversation.id, reason)
            if outgoing.recipient is not None and outgoing.kind not in (
                Kind.DELIVERY_FAILED,
                Kind.CLAIM_RETIRED,  # an edit nobody waits for (e.g. the DM was deleted)
            ):
                await self._tell_other_party(outgoing, outgoing.recipient, reason, now)
            return
        backoff = min(MAX_BACKOFF, BASE_BACKOFF * 2 ** min(attempts - 1, 20))
        delay = backoff * (0.5 + self._rng.random())  # jitter spreads retries of a burst
        if result.after_seconds is not None:
            delay = max(delay, result.after_seconds)
            self._paused_until[key] = now + timedelta(seconds=result.after_seconds)
        async with self.db.transaction() as session:
            await repo.finish_notification(
                session,
                row.id,
                row.claim_token,
                status="pending",
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=result.reason[:500],
                lease_until=None,
            )
        stats.retried += 1
        self.metrics.retries.labels(kind=row.kind).inc()

    async def _tell_other_party(
        self, outgoing: Outgoing, unreachable: MemberRef, reason: str, now: datetime
    ) -> None:
        """The student or mentor we could not DM is missing something; tell the other one, once."""
        request = outgoing.request
        mentor = request.claimed_by or (request.session.mentor if request.session else None)
        if unreachable.id == request.student.id:
            other = mentor
        elif mentor is not None and unreachable.id == mentor.id:
            other = request.student
        else:
            return  # someone else (a mentor the request was only offered to): nobody to tell
        if other is None or other.id == unreachable.id:
            return
        async with self.db.transaction() as session:
            added = await owe_dm(
                session,
                request=request,
                to=other,
                kind=Kind.DELIVERY_FAILED,
                now=now,
                key=f"request:{request.id}:unreachable:{unreachable.id}",
                payload={"name": unreachable.display_name, "reason": reason},
            )
        if added:
            self.wake()

    async def _postpone(self, row: Leased, seconds: float) -> None:
        async with self.db.transaction() as session:
            await repo.finish_notification(
                session,
                row.id,
                row.claim_token,
                status="pending",
                next_attempt_at=self.clock.now() + timedelta(seconds=seconds),
                lease_until=None,
            )

    async def _finish(
        self,
        row: Leased,
        stats: DeliveryStats,
        *,
        status: str,
        reason: str,
        attempts: int | None = None,
    ) -> None:
        async with self.db.transaction() as session:
            await repo.finish_notification(
                session,
                row.id,
                row.claim_token,
                status=status,
                failed_reason=reason[:500],
                attempts=attempts if attempts is not None else row.attempts,
                lease_until=None,
            )
        if status == "failed":
            stats.failed += 1
            self.metrics.failures.labels(kind=row.kind).inc()
            stats.reasons.append(reason)
        else:
            stats.skipped += 1

    # Forever -------------------------------------------------------------------------------

    async def run_forever(self, poll_seconds: float = 2.0) -> None:
        """Deliver on every wake-up, and at least every `poll_seconds` (retries, reminders).
        While the database is away, polls back off (see bot.outage); a wake-up still tries at
        once, since it means a use case just committed."""
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=poll_seconds)
                woken = True
            self._wakeup.clear()
            if not woken and not self.outage.ready():
                continue
            try:
                await self.run_once()
            except Exception as exc:
                if not self.outage.failed(exc, "outbox delivery"):
                    log.exception("outbox delivery pass failed; retrying on the next tick")
            else:
                self.outage.succeeded()


def _reminders_overtaken(rows: list[Leased]) -> tuple[set[int], set[int]]:
    """Reminders due together for the same person and session (the jobs were down through the
    24-hour one): only the latest is sent, not two "starts in 10 minutes" at once. Returns the
    ids to skip, and the ids of kept ones that take over an overtaken one's Can't make it."""
    by_key: dict[tuple[int | None, int | None, object], list[Leased]] = defaultdict(list)
    for row in rows:
        if row.kind == Kind.REMINDER.value:
            by_key[(row.session_id, row.member_id, (row.payload or {}).get("schedule_version"))].append(row)
    stale: set[int] = set()
    inherit: set[int] = set()
    for group in by_key.values():
        if len(group) < 2:
            continue
        kept = max(group, key=lambda row: row.due_at)
        stale.update(row.id for row in group if row is not kept)
        if any((row.payload or {}).get("cant_make_it") for row in group):
            inherit.add(kept.id)
    return stale, inherit
