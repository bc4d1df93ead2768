"""The shared conversation of a claim (student, mentor and the bot), on SQLite and PostgreSQL:
opened once through the outbox whatever happens (replicas, crashes, retries), scheduling news
posted there as well as in the DMs, a closing line on release or cancel, and DMs only when the
platform can't make one. Slack's side runs against the fake Slack through the real sender; a
platform whose "open" is not idempotent (like a Discord thread) is played by `ThreadPlatform`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import select

from bot.clock import ManualClock
from bot.conversations import owe_news
from bot.domain import Ok, RequestView
from bot.notifications import Kind
from bot.outbox import Delivered, DeliveryResult, Opened, Outgoing, RetryLater, Undeliverable
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import SlackSender
from jobs.delivery import CONVERSATION_WAIT, Delivery
from storage.db import Database
from storage.models import Conversation, Notification
from tests.conftest import MENTOR, MENTOR_2, STUDENT, request_form
from tests.jobs.conftest import slack_runtime
from tests.jobs.test_delivery import DiesBeforeRecording, _Killed


def ok(result: Any) -> Any:
    assert isinstance(result, Ok), result
    return result.value


async def claimed(runtime: Runtime) -> RequestView:
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form()))
    return ok(await runtime.mentorship.claim(MENTOR, request.id))  # type: ignore[no-any-return]


def group_dms(fake: FakeSlack) -> dict[str, list[dict[str, Any]]]:
    return {cid: fake.messages.get(cid, []) for cid, info in fake.channels.items() if info.get("is_mpim")}


def texts(messages: list[dict[str, Any]]) -> list[str]:
    """Each message's headline and everything its blocks show."""
    return [f"{m.get('text', '')} {m.get('blocks', '')}" for m in messages]


def headlines(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("text", "")).split(":", 1)[0] for m in messages]


async def conversations(database: Database) -> list[Conversation]:
    async with database.transaction() as session:
        return list((await session.scalars(select(Conversation).order_by(Conversation.id))).all())


async def shared_rows(database: Database) -> list[Notification]:
    async with database.transaction() as session:
        query = select(Notification).where(Notification.audience == "shared").order_by(Notification.id)
        return list((await session.scalars(query)).all())


# Slack: a group DM --------------------------------------------------------------------------


async def test_a_claim_opens_one_group_dm_with_the_request_summary(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    request = await claimed(runtime)
    await runtime.delivery.run_once()
    [(channel, messages)] = group_dms(fake_slack).items()
    assert set(fake_slack.channels[channel]["members"]) == {STUDENT.user_id, MENTOR.user_id, "UBOT"}
    [summary] = messages
    [shown] = texts([summary])
    assert "A place to talk" in shown and request.title in shown and "Sam Student" in shown
    [conversation] = await conversations(database)
    assert (conversation.status, conversation.channel, conversation.request_id) == (
        "open",
        channel,
        request.id,
    )
    # The DMs stay: the student still got "a mentor claimed your request" in their own DM.
    assert any("claimed your request" in m["text"] for m in fake_slack.messages["D" + STUDENT.user_id])
    opened = [c for c in fake_slack.calls_to("conversations.open") if "," in str(c.args.get("users", ""))]
    assert len(opened) == 1
    assert fake_slack.validation_errors == []


async def test_scheduling_news_goes_there_too_and_a_release_closes_it(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    m = runtime.mentorship
    request = await claimed(runtime)
    times = {"time_1": "2030-01-08 09:00", "time_2": "2030-01-09 10:00", "note": "Evenings are <!here> hard"}
    proposed = ok(await m.propose_times(MENTOR, request.id, times))
    ok(await m.none_work(STUDENT, request.id, proposed.proposal_id, {"note": "Only after 18:00"}))
    proposed = ok(await m.propose_times(MENTOR, request.id, {"time_1": "2030-01-08 12:00"}))
    ok(await m.pick_time(STUDENT, request.id, proposed.proposal_id, 0))
    ok(await m.schedule(MENTOR, request.id, {"starts_at": "2030-01-09 12:00"}))
    ok(await m.cancel_session(MENTOR, request.id))
    ok(await m.schedule(MENTOR, request.id, {"starts_at": "2030-01-10 12:00"}))
    # All that news was owed before the conversation was open: it waits for it, then goes.
    await runtime.delivery.run_once()
    ok(await m.release(MENTOR, request.id))
    await runtime.delivery.run_once()
    [(channel, messages)] = group_dms(fake_slack).items()
    shown = texts(messages)
    assert headlines(messages) == [
        "A place to talk about your session",
        "Times proposed",
        "None of the times work",
        "Times proposed",
        "Time picked, session scheduled",
        "Session moved to a new time",
        "Session time cancelled",
        "Session scheduled",
        "This conversation is closed",
    ], shown
    assert "Only after 18:00" in shown[2]
    assert "Mia Mentor released the request" in shown[-1]
    assert not [
        x for x in fake_slack.raw_mentions() if x.startswith("<!")
    ]  # the mentor's note said <!here>: shown, never a ping
    # The same news reached both DMs as before.
    student_dm = texts(fake_slack.messages["D" + STUDENT.user_id])
    assert sum("Your mentorship session is scheduled" in text for text in student_dm) == 2
    # A new claim is a new conversation; the closed one gets nothing more.
    ok(await m.claim(MENTOR_2, request.id))
    await runtime.delivery.run_once()
    ok(await m.cancel(STUDENT, request.id))
    await runtime.delivery.run_once()
    first, second = await conversations(database)
    assert first.closed_at is not None and second.closed_at is not None
    assert len(group_dms(fake_slack)[channel]) == len(messages)
    [(_, other)] = [(c, msgs) for c, msgs in group_dms(fake_slack).items() if c != channel]
    assert headlines(other)[-1] == "This conversation is closed"
    assert "Sam Student cancelled the request" in texts(other)[-1]
    assert {row.status for row in await shared_rows(database)} == {"sent"}


async def test_two_runners_and_a_crash_after_the_post_open_and_post_once(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    request = await claimed(runtime)
    ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-08 15:00"}))
    doomed = DiesBeforeRecording(database, clock)
    doomed.add_sender(SlackSender(runtime.settings, min_interval=0))
    with contextlib.suppress(_Killed):  # Slack has the summary (or more); the outbox never learnt it was sent
        await doomed.run_once()
    clock.advance(minutes=2)  # the dead runner's leases run out
    replicas = [Delivery(database, clock, batch_size=1) for _ in range(2)]
    for replica in replicas:
        replica.add_sender(SlackSender(runtime.settings, min_interval=0))
    for _ in range(6):
        await asyncio.gather(*(replica.run_once() for replica in replicas))
        clock.advance(seconds=CONVERSATION_WAIT)
    [(_, messages)] = group_dms(fake_slack).items()
    assert headlines(messages) == ["A place to talk about your session", "Session scheduled"]
    assert {row.status for row in await shared_rows(database)} == {"sent"}


# A platform whose "open" makes a new thing each time (a Discord thread) -----------------------


class _Crash(BaseException):
    """The worker process dies here (not an error the outbox could catch and retry)."""


class ThreadPlatform:
    """Threads made on a pretend platform: opening is NOT idempotent, so a second open would
    make a second thread. Can die right after making one, or right before posting."""

    platform = "slack"
    min_interval = 0.0

    def __init__(self) -> None:
        self.threads: dict[str, str] = {}  # thread id -> title
        self.posts: dict[str, list[str]] = {}
        self.die_after_making = False
        self.die_before_posting = False
        self.refuse = ""

    def channel_key(self, outgoing: Outgoing) -> str:
        return f"conversation:{outgoing.conversation.id}" if outgoing.conversation else f"o:{outgoing.id}"

    async def deliver(self, outgoing: Outgoing) -> DeliveryResult:
        conversation = outgoing.conversation
        if conversation is None:
            return Delivered()  # cards and DMs are not this platform's concern here
        if conversation.channel is None:
            if self.refuse:
                return Undeliverable(self.refuse)
            if outgoing.in_doubt:
                for thread, title in self.threads.items():
                    if title == conversation.title:
                        return Opened(thread)
            thread = f"T{len(self.threads) + 1}"
            self.threads[thread] = conversation.title
            if self.die_after_making:
                self.die_after_making = False
                raise _Crash
            return Opened(thread)
        if self.die_before_posting:
            self.die_before_posting = False
            raise _Crash
        if conversation.channel not in self.threads:
            return RetryLater("no such thread")
        self.posts.setdefault(conversation.channel, []).append(outgoing.message.headline)
        return Delivered()


def thread_delivery(database: Database, clock: ManualClock, platform: ThreadPlatform) -> Delivery:
    delivery = Delivery(database, clock)
    delivery.add_sender(platform)
    return delivery


async def test_a_crash_after_making_the_thread_does_not_make_a_second_one(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    await claimed(runtime)
    platform = ThreadPlatform()
    platform.die_after_making = True
    with contextlib.suppress(_Crash):
        await thread_delivery(database, clock, platform).run_once()
    assert list(platform.threads) == ["T1"] and platform.posts == {}
    clock.advance(minutes=2)
    await thread_delivery(database, clock, platform).run_once()
    assert list(platform.threads) == ["T1"]  # found by its name, not made again
    assert platform.posts == {"T1": ["A place to talk about your session"]}
    [conversation] = await conversations(database)
    assert conversation.channel == "T1"


async def test_a_crash_between_recording_the_thread_and_posting_posts_once(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    await claimed(runtime)
    platform = ThreadPlatform()
    platform.die_before_posting = True
    with contextlib.suppress(_Crash):
        await thread_delivery(database, clock, platform).run_once()
    [conversation] = await conversations(database)
    assert conversation.channel == "T1"  # recorded before anything was posted
    clock.advance(minutes=2)
    await thread_delivery(database, clock, platform).run_once()
    assert list(platform.threads) == ["T1"]
    assert platform.posts == {"T1": ["A place to talk about your session"]}


async def test_concurrent_runners_open_each_claims_thread_once(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    requests = [await claimed(runtime) for _ in range(2)]
    for request in requests:  # news owed before any conversation is open
        ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-08 15:00"}))
        ok(await runtime.mentorship.cancel_session(MENTOR, request.id))
    platform = ThreadPlatform()
    runners = [Delivery(database, clock, batch_size=1) for _ in range(3)]
    for runner in runners:
        runner.add_sender(platform)
    for _ in range(12):
        await asyncio.gather(*(runner.run_once() for runner in runners))
        clock.advance(seconds=CONVERSATION_WAIT)
    assert len(platform.threads) == 2
    for posts in platform.posts.values():
        assert posts == ["A place to talk about your session", "Session scheduled", "Session time cancelled"]
    assert {row.status for row in await shared_rows(database)} == {"sent"}


# Not possible: DMs only, the reason on the dashboards, no endless retry ----------------------


async def test_a_deactivated_user_means_dms_only_and_the_dashboard_says_why(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form()))
    await runtime.delivery.run_once()
    fake_slack.users[STUDENT.user_id]["deleted"] = True  # deactivated after posting
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-08 15:00"}))
    for _ in range(3):
        await runtime.delivery.run_once()
        clock.advance(minutes=30)
    assert group_dms(fake_slack) == {}
    [opened, news] = await shared_rows(database)
    assert (opened.kind, opened.status, opened.attempts) == (Kind.CONVERSATION_OPENED.value, "failed", 1)
    assert opened.failed_reason == "group DM not possible: user_disabled"
    assert news.status == "skipped"  # the DMs carried it
    [conversation] = await conversations(database)
    assert conversation.status == "failed"
    board = await runtime.mentorship.dashboard(MENTOR)
    assert (
        "Couldn't open the shared conversation: group DM not possible: user_disabled"
        in (board.problems[request.id])
    )
    # The mentor's DMs went as before.
    assert any("is scheduled" in m["text"] for m in fake_slack.messages["D" + MENTOR.user_id])
    # Released later: no closing line is owed for a conversation that never was.
    ok(await runtime.mentorship.release(MENTOR, request.id))
    assert len(await shared_rows(database)) == 2


async def test_an_old_install_without_mpim_write_carries_on_with_dms(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    fake_slack.missing_scopes.add("mpim:write")
    request = await claimed(runtime)
    stats = await runtime.delivery.run_once()
    assert stats.failed == 1 and stats.reasons == [
        "missing_scope: the app needs mpim:write; reinstall it from the manifest"
    ]
    clock.advance(hours=2)
    assert (await runtime.delivery.run_once()).handled == 0  # not retried
    board = await runtime.mentorship.dashboard(STUDENT)
    assert any("mpim:write" in problem for problem in board.problems[request.id])
    assert any("claimed your request" in m["text"] for m in fake_slack.messages["D" + STUDENT.user_id])


async def test_a_platform_that_refuses_gives_up_at_once(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    request = await claimed(runtime)
    platform = ThreadPlatform()
    platform.refuse = "no permission to create private threads (50013)"
    await thread_delivery(database, clock, platform).run_once()
    ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-08 15:00"}))
    await thread_delivery(database, clock, platform).run_once()
    assert platform.threads == {}
    assert [row.status for row in await shared_rows(database)] == ["failed"]  # news not even owed


async def test_any_news_is_one_line_away(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """`owe_news` with a kind that has no wording of its own for the conversation posts what the
    DMs say, without their buttons (how other features route their news here)."""
    runtime = slack_runtime(database, clock, fake_slack)
    request = await claimed(runtime)
    async with database.transaction() as session:
        for _ in range(2):  # the same news twice is owed once
            await owe_news(session, request, Kind.NO_SHOW, f"request:{request.id}", clock.now())
    await runtime.delivery.run_once()
    [(_, messages)] = group_dms(fake_slack).items()
    assert headlines(messages) == ["A place to talk about your session", "Session marked as a no-show"]
    assert not [b for m in messages for b in m["blocks"] if b["type"] == "actions"]
    assert [row.kind for row in await shared_rows(database)] == ["conversation_opened", "no_show_reported"]


async def test_released_before_delivery_opens_nothing(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    request = await claimed(runtime)
    ok(await runtime.mentorship.release(MENTOR, request.id))
    await runtime.delivery.run_once()
    assert group_dms(fake_slack) == {}
    assert [row.status for row in await shared_rows(database)] == ["skipped", "skipped"]
    board = await runtime.mentorship.dashboard(STUDENT)
    assert request.id not in board.problems  # nothing went wrong: there was nothing to open
