"""The daily digest, driven by the injected clock, delivered to the fake Slack through the real
Slack sender, on SQLite and PostgreSQL: once a day at DIGEST_TIME, whatever the number of
runners, restarts or late starts; nothing when nothing is open."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot import digest
from bot.clock import ManualClock
from bot.domain import Ok, RequestView
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from jobs.sweeps import Sweeps
from storage.db import Database
from storage.models import Notification
from tests.conftest import MENTOR, OTHER_STUDENT, STUDENT, request_form
from tests.jobs.conftest import FEED, slack_runtime


def ok(result: Any) -> Any:
    assert isinstance(result, Ok), result
    return result.value


def digests(fake: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in fake.messages.get(FEED, []) if "Daily digest" in str(m.get("text", ""))]


def claim_values(message: dict[str, Any]) -> list[str]:
    return [
        str(e["value"])
        for block in message["blocks"]
        if block["type"] == "actions"
        for e in block["elements"]
        if str(e["action_id"]).startswith("mm_claim")
    ]


async def post(runtime: Runtime, **overrides: str) -> RequestView:
    return ok(await runtime.mentorship.create_request(STUDENT, request_form(**overrides)))  # type: ignore[no-any-return]


async def test_once_a_day_at_digest_time_not_again_after_a_restart(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(database, clock, fake_slack)
    sweeps = Sweeps(runtime)
    first = await post(runtime, title="First of all", urgency="high", tags="python, sql")
    clock.advance(hours=2)
    second = ok(await runtime.mentorship.create_request(OTHER_STUDENT, request_form(title="Second")))
    await sweeps.run_all_once()
    assert digests(fake_slack) == []  # Monday 11:00: today's 09:00 came before these requests

    clock.set(datetime(2030, 1, 8, 8, 59, tzinfo=UTC))  # Tuesday, a minute before DIGEST_TIME
    assert (await sweeps.run_all_once())["digest"] == 0
    clock.set(datetime(2030, 1, 8, 9, 0, tzinfo=UTC))
    assert (await sweeps.run_all_once())["digest"] == 1
    [message] = digests(fake_slack)
    assert claim_values(message) == [str(first.id), str(second.id)]  # the oldest first
    text = str(message["blocks"])
    assert "2 requests waiting" in message["text"]
    assert "First of all" in text and "python, sql" in text
    assert "waited 24 h · target 4 h (missed)" in text  # high: a 4 h target
    assert "waited 22 h · target 24 h" in text
    clock.advance(minutes=1)
    assert (await sweeps.run_all_once())["digest"] == 0

    # A restart (a new process on the same database) later that day owes nothing more.
    restarted = Sweeps(slack_runtime(database, clock, fake_slack))
    clock.set(datetime(2030, 1, 8, 17, 0, tzinfo=UTC))
    assert (await restarted.run_all_once())["digest"] == 0
    # Started again the next morning before DIGEST_TIME: nothing until then, then one.
    clock.set(datetime(2030, 1, 9, 6, 0, tzinfo=UTC))
    assert (await restarted.run_all_once())["digest"] == 0
    clock.set(datetime(2030, 1, 9, 9, 0, 30, tzinfo=UTC))
    assert (await restarted.run_all_once())["digest"] == 1
    assert len(digests(fake_slack)) == 2
    assert fake_slack.validation_errors == []


async def test_two_concurrent_runners_post_one_digest(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    one = slack_runtime(database, clock, fake_slack)
    two = slack_runtime(database, clock, fake_slack)
    await post(one)
    clock.set(datetime(2030, 1, 8, 9, 0, tzinfo=UTC))
    counts = await asyncio.gather(Sweeps(one).run("digest"), Sweeps(two).run("digest"))
    assert sorted(counts) == [0, 1]
    await asyncio.gather(Sweeps(one).run_all_once(), Sweeps(two).run_all_once())
    assert len(digests(fake_slack)) == 1
    async with one.db.transaction() as session:
        rows = (await session.scalars(select(Notification).where(Notification.kind == "digest"))).all()
    assert [(row.dedupe_key, row.status) for row in rows] == [("digest:slack:T1:2030-01-08", "sent")]


async def test_a_late_runner_posts_once_that_day(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    await post(jobs_runtime)
    clock.set(datetime(2030, 1, 8, 15, 30, tzinfo=UTC))  # nobody ran at 09:00
    assert (await sweeps.run_all_once())["digest"] == 1
    clock.advance(hours=8)  # 23:30, still Tuesday
    assert (await sweeps.run_all_once())["digest"] == 0
    assert len(digests(fake_slack)) == 1


async def test_nothing_posted_when_nothing_is_open(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    request = await post(jobs_runtime)
    ok(await jobs_runtime.mentorship.claim(MENTOR, request.id))
    clock.set(datetime(2030, 1, 8, 9, 0, tzinfo=UTC))
    assert (await sweeps.run_all_once())["digest"] == 0
    # A request posted after DIGEST_TIME has its fresh card; it brings no digest that day.
    await post(jobs_runtime, title="Posted at ten", available_from="2030-01-08")
    clock.advance(hours=1)
    assert (await sweeps.run_all_once())["digest"] == 0
    assert digests(fake_slack) == []


async def test_claimed_before_delivery_is_left_out_and_all_claimed_is_skipped(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    first = await post(jobs_runtime, title="Taken meanwhile")
    second = ok(await jobs_runtime.mentorship.create_request(OTHER_STUDENT, request_form(title="Still open")))
    clock.set(datetime(2030, 1, 8, 9, 0, tzinfo=UTC))
    assert await sweeps.run("digest") == 1
    ok(await jobs_runtime.mentorship.claim(MENTOR, first.id))  # before the outbox delivers it
    await sweeps.run("deliver")
    [message] = digests(fake_slack)
    assert claim_values(message) == [str(second.id)] and "Taken meanwhile" not in str(message["blocks"])

    clock.set(datetime(2030, 1, 9, 9, 0, tzinfo=UTC))
    assert await sweeps.run("digest") == 1
    ok(await jobs_runtime.mentorship.claim(MENTOR, second.id))
    await sweeps.run("deliver")
    assert len(digests(fake_slack)) == 1  # nothing listed is open any more: not posted
    async with jobs_runtime.db.transaction() as session:
        row = await session.scalar(
            select(Notification).where(Notification.dedupe_key == "digest:slack:T1:2030-01-09")
        )
    assert row is not None and row.status == "skipped"


async def test_at_most_ten_and_digest_time_in_the_default_zone(
    database: Database, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    runtime = slack_runtime(
        database,
        clock,
        fake_slack,
        default_timezone="America/New_York",
        digest_time="08:30",
        max_open_requests_per_student=20,
    )
    sweeps = Sweeps(runtime)
    made = []
    for n in range(12):
        made.append(await post(runtime, title=f"Request {n}"))
        clock.advance(minutes=1)
    # 08:30 in New York on Tuesday is 13:30 UTC.
    clock.set(datetime(2030, 1, 8, 13, 29, tzinfo=UTC))
    assert (await sweeps.run_all_once())["digest"] == 0
    clock.set(datetime(2030, 1, 8, 13, 30, tzinfo=UTC))
    assert (await sweeps.run_all_once())["digest"] == 1
    [message] = digests(fake_slack)
    assert claim_values(message) == [str(r.id) for r in made[:10]]
    assert "the 10 oldest of 12 requests waiting" in message["text"]  # not "10 waiting": 12 do
    assert fake_slack.validation_errors == []


def test_waited_vs_target_phrase() -> None:
    assert digest.waited_vs_target(timedelta(minutes=45), timedelta(hours=4)) == "waited 45 min · target 4 h"
    assert digest.waited_vs_target(timedelta(hours=30), timedelta(hours=24)) == (
        "waited 30 h · target 24 h (missed)"
    )
    assert digest.waited_vs_target(timedelta(days=4), None) == "waited 4 d"


async def test_the_headline_counts_only_what_still_waits(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """Two owed, one claimed before delivery: "1 request waiting", not "the 1 oldest of 2"."""
    first = await post(jobs_runtime, title="Taken meanwhile")
    ok(await jobs_runtime.mentorship.create_request(OTHER_STUDENT, request_form(title="Still open")))
    clock.set(datetime(2030, 1, 8, 9, 0, tzinfo=UTC))
    assert await sweeps.run("digest") == 1
    ok(await jobs_runtime.mentorship.claim(MENTOR, first.id))
    await sweeps.run("deliver")
    [message] = digests(fake_slack)
    assert "Daily digest: 1 request waiting for a mentor" in message["text"]
