"""Fixtures for the Slack adapter: a FakeSlack with a small workspace, and the app served over
real HTTP, on SQLite and PostgreSQL (`slack`) or on SQLite alone (`slack_lite`, for tests whose
subject is the adapter rather than the database; `make_slack` builds one with settings changed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import build_app
from storage import migrate
from storage.db import Database
from tests.conftest import make_settings
from tests.slack.harness import SlackHarness, populate, slack_settings

MakeSlack = Callable[..., Awaitable[SlackHarness]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(team_id="T1") as server:
        populate(server)
        yield server
    # Every view and message the app sent passed Slack's Block Kit and argument checks.
    assert server.validation_errors == [], server.validation_errors


async def _harness(
    fake: FakeSlack, settings: Settings, db: Database, clock: ManualClock, **overrides: Any
) -> SlackHarness:
    runtime = Runtime(slack_settings(settings, fake, **overrides), clock=clock, db=db)
    harness = SlackHarness(fake, runtime, build_app(runtime.settings, runtime=runtime))
    await harness.start()
    return harness


@pytest.fixture
async def slack(
    fake: FakeSlack, settings: Settings, database: Database, clock: ManualClock
) -> AsyncIterator[SlackHarness]:
    harness = await _harness(fake, settings, database, clock)
    yield harness
    await harness.stop()


@pytest.fixture
async def make_slack(fake: FakeSlack, tmp_path: Path, clock: ManualClock) -> AsyncIterator[MakeSlack]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}"
    db = Database(url)
    await migrate.upgrade(db)
    made: list[SlackHarness] = []

    async def make(**overrides: Any) -> SlackHarness:
        harness = await _harness(fake, make_settings(url), db, clock, **overrides)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.stop()
    await db.dispose()


@pytest.fixture
async def slack_lite(make_slack: MakeSlack) -> SlackHarness:
    return await make_slack()
