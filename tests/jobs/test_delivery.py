"""The outbox under stress: replicas, crashes, flaky platforms, rate limits."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.domain import Actor, Ok
from bot.notifications import Kind
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import SlackSender
from jobs.delivery import Delivery, DeliveryStats
from storage import repository as repo
from storage.db import Database
from storage.models import Notification
from tests.conftest import MENTOR, STUDENT, request_form
from tests.jobs.conftest import FEED, slack_runtime


async def statuses(runtime: Runtime) -> dict[str, int]:
    async with runtime.db.transaction() as session:
        rows = await session.execute(select(Notification.status, func.count()).group_by(Notification.status))
        return {status: count for status, count in rows.all()}


def posted(fake: FakeSlack) -> int:
    return sum(1 for call in fake.calls_to("chat.postMessage") if call.ok)


async def owe_many_dms(runtime: Runtime, count: int) -> None:
    """`count` owed DMs to the student, inserted straight into the outbox."""
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    request = created.value
    now = runtime.clock.now()
    async with runtime.db.transaction() as session:
        await session.execute(Notification.__table__.delete())
        for i in range(count):
            await repo.add_notification(
                session,
                platform="slack",
                workspace="T1",
                audience="dm",
                member_id=request.student.id,
                request_id=request.id,
                session_id=None,
                kind=Kind.REQUEST_POSTED.value,
                payload={},
                dedupe_key=f"load:{i}",
                status="pending",
                due_at=now,
                next_attempt_at=now,
                attempts=0,
                created_at=now,
            )


async def test_two_runners_deliver_each_notification_exactly_once(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    first = slack_runtime(database, clock, fake_slack)
    second = slack_runtime(database, clock, fake_slack)
    await owe_many_dms(first, 1000)
    results = await asyncio.gather(first.delivery.run_once(), second.delivery.run_once())
    assert sum(r.sent for r in results) == 1000
    assert all(r.sent > 0 for r in results) or database.is_sqlite  # both worked (SQLite serialises)
    assert await statuses(first) == {"sent": 1000}
    assert posted(fake_slack) == 1000


async def test_runner_killed_between_claim_and_record_delivers_once_later(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    await owe_many_dms(runtime, 5)
    # A runner claims (leases) the rows, then dies before sending or recording anything.
    async with runtime.db.transaction() as session:
        leased = await repo.claim_due_notifications(
            session, clock.now(), clock.now() + timedelta(minutes=2), 100, ["slack"]
        )
    assert len(leased) == 5
    assert (await runtime.delivery.run_once()).sent == 0  # still leased to the dead runner
    clock.advance(minutes=2)
    assert (await runtime.delivery.run_once()).sent == 5
    assert (await runtime.delivery.run_once()).sent == 0
    assert posted(fake_slack) == 5


async def test_flaky_platform_everything_ends_delivered_or_failed_never_twice(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    await owe_many_dms(runtime, 120)
    fake_slack.fail_randomly(0.3, seed=7, methods={"chat.postMessage", "conversations.open"})
    for _ in range(40):
        await runtime.delivery.run_once()
        if set(await statuses(runtime)) <= {"sent", "failed"}:
            break
        clock.advance(minutes=30)
    final = await statuses(runtime)
    assert set(final) <= {"sent", "failed"}, final
    assert final.get("sent", 0) == posted(fake_slack)  # one platform post per sent row, none twice
    async with runtime.db.transaction() as session:
        reasons = (
            await session.scalars(select(Notification.failed_reason).where(Notification.status == "failed"))
        ).all()
    assert all(reasons)


async def test_dm_to_a_user_with_dms_unavailable_fails_with_reason(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    ghost = Actor("slack", "T1", "U_GHOST", "Gone Person")  # not a user the workspace knows
    created = await runtime.mentorship.create_request(ghost, request_form())
    assert isinstance(created, Ok)
    ok = await runtime.mentorship.claim(MENTOR, created.value.id)
    assert isinstance(ok, Ok)
    await runtime.delivery.run_once()
    await runtime.delivery.run_once()
    async with runtime.db.transaction() as session:
        rows = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    to_ghost = [r for r in rows if r.audience == "dm" and r.kind != "delivery_failed"]
    assert to_ghost and all(
        r.status == "failed" and "user_not_found" in (r.failed_reason or "") for r in to_ghost
    )
    assert {r.status for r in rows if r.audience == "feed"} == {"sent", "superseded"}  # the card works
    assert len(fake_slack.messages[FEED]) == 1
    # The mentor is told, once, that the student can't be reached; the dashboards say so too.
    told = [m for m in fake_slack.messages.get("D" + MENTOR.user_id, []) if "couldn't reach" in str(m)]
    assert len(told) == 1 and "Gone Person" in str(told[0]) and "user_not_found" in str(told[0])
    dashboard = await runtime.mentorship.dashboard(MENTOR)
    assert any("Couldn't DM Gone Person" in p for p in dashboard.problems[created.value.id])


async def test_rate_limited_channel_waits_for_retry_after(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    students = [Actor("slack", "T1", f"U_S{i}", f"S{i}") for i in range(6)]
    for student in students:
        fake_slack.add_user(student.user_id)
        assert isinstance(await runtime.mentorship.create_request(student, request_form()), Ok)
    fake_slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=30)
    first = await runtime.delivery.run_once()
    assert first.retried >= 1
    cards_before = len(fake_slack.messages.get(FEED, []))
    clock.advance(seconds=10)
    await runtime.delivery.run_once()
    assert len(fake_slack.messages.get(FEED, [])) == cards_before  # still inside Retry-After
    clock.advance(seconds=25)
    for _ in range(5):
        await runtime.delivery.run_once()
        clock.advance(seconds=5)
    assert len(fake_slack.messages[FEED]) == 6
    assert await statuses(runtime) == {"sent": 12}


class _Killed(Exception):
    """Stands in for SIGKILL at the worst moment: after the platform accepted the message."""


class DiesBeforeRecording(Delivery):
    """Dies at either place where outcomes are recorded: a failure's, or the batch's deliveries."""

    async def _record(self, *args: object, **kwargs: object) -> None:
        raise _Killed

    async def _record_sent(self, sent: list[Any], stats: DeliveryStats) -> None:
        if sent:
            raise _Killed


async def test_runner_killed_after_sending_before_recording_sends_nothing_twice(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    doomed = DiesBeforeRecording(database, clock)
    doomed.add_sender(SlackSender(runtime.settings, min_interval=0))
    with pytest.raises(_Killed):
        await doomed.run_once()
    assert posted(fake_slack) >= 1  # Slack has the card and/or the DM, the database doesn't know
    assert (await runtime.delivery.run_once()).sent == 0  # leased by the dead runner
    clock.advance(minutes=2)  # its lease runs out
    assert (await runtime.delivery.run_once()).sent == 2
    assert posted(fake_slack) == 2  # one post per notification: what was sent is found, not re-sent
    assert await statuses(runtime) == {"sent": 2}
    async with runtime.db.transaction() as session:
        card = await repo.feed_post(session, created.value.id)
    assert card is not None and card.message_ref == fake_slack.messages[FEED][0]["ts"]


async def test_card_posted_by_a_dead_runner_is_updated_not_posted_again(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    doomed = DiesBeforeRecording(database, clock)
    doomed.add_sender(SlackSender(runtime.settings, min_interval=0))
    with pytest.raises(_Killed):
        await doomed.run_once()
    cards = [m for m in fake_slack.messages.get(FEED, [])]
    assert len(cards) == 1  # Slack shows the card; the outbox never learnt where it is
    # Before the dead runner's lease runs out, a mentor claims: a new card row is owed.
    assert isinstance(await runtime.mentorship.claim(MENTOR, created.value.id), Ok)
    await runtime.delivery.run_once()
    clock.advance(minutes=2)
    await runtime.delivery.run_once()
    assert len(fake_slack.messages[FEED]) == 1  # the same card, brought up to date
    assert "Claimed" in str(fake_slack.messages[FEED][0]["blocks"])
    async with runtime.db.transaction() as session:
        post = await repo.feed_post(session, created.value.id)
    assert post is not None and post.message_ref == cards[0]["ts"]
    # The dead runner's card row ends as an update; the fifth row opened the shared conversation.
    assert await statuses(runtime) == {"sent": 5}


async def test_owing_a_message_says_whether_it_was_new(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """The outbox tells its caller whether a row was added, on both engines (the caller decides
    from this whether to wake the delivery worker)."""
    runtime = slack_runtime(database, clock, fake_slack)
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    now = clock.now()
    row = dict(
        platform="slack", workspace="T1", audience="dm", member_id=created.value.student.id,
        request_id=created.value.id, session_id=None, kind=Kind.REQUEST_POSTED.value, payload={},
        dedupe_key="once-only", status="pending", due_at=now, next_attempt_at=now, attempts=0,
        created_at=now,
    )  # fmt: skip
    async with runtime.db.transaction() as session:
        assert await repo.add_notification(session, **row) is True
        assert await repo.add_notification(session, **row) is False
    async with runtime.db.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.dedupe_key == "once-only")
        )
    assert count == 1


async def test_a_newer_releases_kind_is_left_to_it_not_failing_the_batch(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """During a rolling upgrade the outbox may hold a kind this code cannot compose: this
    worker leaves that row pending (for the release that wrote it) and delivers the rest."""
    runtime = slack_runtime(database, clock, fake_slack)
    await owe_many_dms(runtime, 3)
    now = runtime.clock.now()
    async with runtime.db.transaction() as session:
        [student] = {n.member_id for n in (await session.scalars(select(Notification))).all()}
        await repo.add_notification(
            session,
            platform="slack",
            workspace="T1",
            audience="dm",
            member_id=student,
            request_id=None,
            session_id=None,
            kind="some_newer_kind",
            payload={},
            dedupe_key="newer:1",
            status="pending",
            due_at=now,
            next_attempt_at=now - timedelta(minutes=1),  # due first
            attempts=0,
            created_at=now,
        )
    stats = await runtime.delivery.run_once()
    assert stats.sent == 3 and stats.failed == 0
    assert await statuses(runtime) == {"sent": 3, "pending": 1}
    assert posted(fake_slack) == 3


class SlowFeed:
    """The real Slack sender, each feed post taking 2.5 s of the (injected) clock, as a paced and
    rate-limited channel does; `on_post` runs after each one."""

    def __init__(self, inner: SlackSender, clock: ManualClock, on_post: Any) -> None:
        self.inner, self.clock, self.on_post, self.posts = inner, clock, on_post, 0
        self.platform = inner.platform
        self.min_interval = 0.0

    def channel_key(self, outgoing: Any) -> str:
        return self.inner.channel_key(outgoing)

    async def deliver(self, outgoing: Any) -> Any:
        if outgoing.audience == "feed":
            self.posts += 1
            self.clock.advance(seconds=2.5)
            await self.on_post(self.posts)
        return await self.inner.deliver(outgoing)


async def test_a_group_outliving_its_lease_hands_the_rest_back_instead_of_racing_a_second_worker(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """100 cards into one paced feed take longer than the 2-minute lease. A second worker that
    takes over expired leases must not post a card the first is about to post: every card once."""
    first = slack_runtime(database, clock, fake_slack, max_open_requests_per_student=100)
    second = slack_runtime(database, clock, fake_slack, max_open_requests_per_student=100)

    async def second_worker(posts: int) -> None:
        if posts in (40, 49, 60):  # around and after the first worker's lease ran out
            await second.delivery.run_once()

    first.delivery.senders["slack"] = SlowFeed(first.delivery.senders["slack"], clock, second_worker)  # type: ignore[arg-type]
    for n in range(100):
        student = Actor("slack", "T1", f"U_S{n}", f"Student {n}", "UTC")
        fake_slack.add_user(student.user_id, name=student.display_name, tz="UTC")
        created = await first.mentorship.create_request(
            student, request_form(title=f"Request number {n:02d}")
        )
        assert isinstance(created, Ok)
    await first.delivery.run_once()
    await second.delivery.run_once()
    cards = [str(m.get("text")) for m in fake_slack.messages.get(FEED, [])]
    titles = [c for c in cards if "New mentorship request" in c]
    assert len(titles) == 100 and len(set(titles)) == 100
