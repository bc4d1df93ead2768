"""Jobs run against a real database and the fake Slack Web API, through the real Slack sender."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.clock import ManualClock
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import SlackSender
from jobs.sweeps import Sweeps
from storage.db import Database
from tests.conftest import MENTOR, MENTOR_2, OTHER_STUDENT, STUDENT, make_settings

FEED = "C_MENTORS"


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(team_id="T1") as fake:
        for actor in (STUDENT, OTHER_STUDENT, MENTOR, MENTOR_2):
            fake.add_user(actor.user_id, name=actor.display_name, tz=actor.timezone or "UTC")
        fake.add_channel(FEED, members=[MENTOR.user_id, MENTOR_2.user_id])
        yield fake


def slack_runtime(database: Database, clock: ManualClock, fake: FakeSlack, **overrides: object) -> Runtime:
    settings = make_settings(
        database.url,
        slack_bot_token="xoxb-test",
        slack_signing_secret="secret",
        slack_api_url=fake.url,
        slack_mentor_channel=FEED,
        **overrides,
    )
    runtime = Runtime(settings, clock=clock, db=database)
    runtime.delivery.add_sender(SlackSender(settings, min_interval=0))
    return runtime


@pytest.fixture
async def jobs_runtime(database: Database, clock: ManualClock, fake_slack: FakeSlack) -> Runtime:
    return slack_runtime(database, clock, fake_slack)


@pytest.fixture
def sweeps(jobs_runtime: Runtime) -> Sweeps:
    return Sweeps(jobs_runtime)
