"""Shared fixtures: real databases (a SQLite file, and a PostgreSQL database of its own) migrated
with Alembic, a ManualClock, and a Runtime wired to both.

PostgreSQL: TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test). The
tests create a scratch database `mm_test_<pid>` beside it. With no server they skip with the
reason, except under CI=true, where a missing server is an error.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import make_url

from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Actor
from bot.runtime import Runtime
from storage import migrate
from storage.db import Database

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC

# Behaviour, not speed: no per-example deadlines on a busy 2-core CI machine.
hypothesis_settings.register_profile(
    "project", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
hypothesis_settings.load_profile("project")


def _libpq(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(_libpq(PG_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {exc}".strip()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test run, dropped at the end."""
    problem = _postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem} (CI must run the PostgreSQL tests)")
        pytest.skip(problem)
    name = f"mm_test_{os.getpid()}"
    admin = _libpq(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_postgres(url: str) -> None:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs twice: on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await migrate.upgrade(db)
    yield db
    await db.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": database_url, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def runtime(settings: Settings, database: Database, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = Runtime(settings, clock=clock, db=database)
    yield rt


# People -------------------------------------------------------------------------------------

STUDENT = Actor("slack", "T1", "U_STUDENT", "Sam Student", "Europe/Berlin")
OTHER_STUDENT = Actor("slack", "T1", "U_OTHER", "Olive Other", "UTC")
MENTOR = Actor("slack", "T1", "U_MENTOR", "Mia Mentor", "America/New_York", is_mentor=True)
MENTOR_2 = Actor("slack", "T1", "U_MENTOR2", "Max Mentor", "UTC", is_mentor=True)
ADMIN = Actor("slack", "T1", "U_ADMIN", "Ada Admin", "UTC", is_admin=True)
STRANGER_WORKSPACE_MENTOR = Actor("slack", "T2", "U_MENTOR", "Elsewhere", "UTC", is_mentor=True)


def request_form(**overrides: str) -> dict[str, str | None]:
    """A valid request form as of START (dates in the student's zone)."""
    values: dict[str, str | None] = {
        "title": "Mock interview for a backend role",
        "session_type": "interview_prep",
        "description": "I have an interview on Friday and want to practise system design questions.",
        "duration": "30",
        "available_from": "2030-01-07",
        "available_until": "2030-01-11",
        "urgency": "normal",
        "tags": "python, interviews",
    }
    values.update(overrides)
    return values
