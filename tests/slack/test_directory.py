"""Roles from Slack: mentors (the mentors' channel, every page), admins, zones; the short cache."""

from __future__ import annotations

import asyncio

import pytest

from fakes.slack_api import FakeSlack
from handlers.slack_directory import Directory, TtlCache
from handlers.slack_sender import make_client
from tests.conftest import make_settings
from tests.slack.harness import ADMIN, MENTOR, MENTORS, OTHER, STUDENT, SlackHarness, slack_settings


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_ttl_cache_shares_loads_expires_and_falls_back() -> None:
    ticker = Ticker()
    cache: TtlCache[str, int] = TtlCache(60, ticker)
    loads = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await gate.wait()
        return loads

    waiting = [asyncio.ensure_future(cache.get("k", load)) for _ in range(20)]
    await asyncio.sleep(0)  # let them all ask
    gate.set()
    assert await asyncio.gather(*waiting) == [1] * 20 and loads == 1
    ticker.now = 59
    assert await cache.get("k", load) == 1
    ticker.now = 61
    assert await cache.get("k", load) == 2

    async def broken() -> int:
        raise RuntimeError("Slack is down")

    ticker.now = 200
    assert await cache.get("k", broken) == 2  # stale beats nothing
    with pytest.raises(RuntimeError):
        await cache.get("other", broken)


async def test_directory_roles(fake: FakeSlack) -> None:
    many = [f"UX{n:04d}" for n in range(1500)]
    fake.channels[MENTORS]["members"].extend(many)  # two pages of conversations.members
    settings = slack_settings(make_settings("sqlite+aiosqlite:///:memory:"), fake, admin_user_ids=OTHER)
    directory = Directory(make_client(settings, interactive=True), settings)

    mentor = await directory.actor("T1", MENTOR)
    assert (mentor.is_mentor, mentor.is_admin, mentor.timezone, mentor.display_name) == (
        True,
        False,
        "America/New_York",
        "mia",
    )
    assert (await directory.actor("T1", "UX1499")).is_mentor
    student = await directory.actor("T1", STUDENT)
    assert (student.is_mentor, student.is_admin, student.timezone) == (False, False, "Europe/Berlin")
    assert (await directory.actor("T1", ADMIN)).is_admin  # workspace admin per users.info
    assert (await directory.actor("T1", OTHER)).is_admin  # ADMIN_USER_IDS
    assert len(fake.calls_to("conversations.members")) == 2  # one listing (two pages), cached
    # An unknown user still gets an actor, without Slack's extras.
    ghost = await directory.actor("T1", "UGHOST", "ghost")
    assert (ghost.display_name, ghost.timezone, ghost.is_mentor) == ("ghost", None, False)


async def test_membership_lookup_failing_tells_the_user(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    slack.fake.fail_next("conversations.members", status=500, times=2)  # the client retries once
    answer = await slack.command(MENTOR, "list")
    await slack.settle()
    assert "Something went wrong on our side" in slack.reply_text(answer)
    answer = await slack.command(MENTOR, "list")  # Slack is back
    await slack.settle()
    assert "Open requests" in slack.reply_text(answer)
