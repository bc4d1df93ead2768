"""Crash safety: the real `mini-mentorship slack --http` process is SIGKILLed in the middle of a
burst of requests, then restarted. No accepted request may be lost, and no message lost or sent
twice; the fake Slack's record is compared with the database.

Messages carry their outbox id in Slack message metadata, so the fake's record says exactly which
notification each post came from.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from fakes.slack_api import FakeSlack
from fakes.slack_driver import SlackDriver
from storage.db import Database
from storage.models import Notification, Request

SECRET = "crash-test-signing-secret"

FEED, GENERAL = "C_MENTORS", "C_GENERAL"
STUDENTS = [f"U_S{i:02d}" for i in range(10)]
MENTORS = ["U_M1", "U_M2"]
KILL_AFTER = 4  # responses seen before the process is killed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 20.0) -> None:
    """Wait for another process to get somewhere (polling, with a deadline)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _views_beyond(fake: FakeSlack, count: int) -> Callable[[], Awaitable[bool]]:
    async def opened() -> bool:
        return len(fake.views) > count

    return opened


def _environment(database_url: str, fake: FakeSlack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
        SLACK_MENTOR_CHANNEL=FEED,
        SLACK_CHANNEL_POST_INTERVAL="0",
    )
    return env


async def _start_app(env: dict[str, str], port: int, cwd: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "slack",
        "--http",
        "--port",
        str(port),
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def healthy() -> bool:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=1)
                ) as resp,
            ):
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            assert process.returncode is None, "the app exited during start-up"
            return False

    await _until(healthy, "the app to start", seconds=60)
    return process


async def _cli(env: dict[str, str], cwd: Path, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]


def _form(i: int) -> dict[str, str | None]:
    today = datetime.now(UTC).date()
    return {
        "title": f"Crash-safety request {i:02d}",
        "session_type": "code_review",
        "description": "Please review my pull request; it touches the database layer.",
        "duration": "30",
        "available_from": today.isoformat(),
        "available_until": (today + timedelta(days=3)).isoformat(),
        "urgency": "normal",
        "tags": "",
    }


async def test_sigkill_mid_burst_loses_and_duplicates_nothing(database_url: str, tmp_path: Path) -> None:
    async with FakeSlack(team_id="T1") as fake:
        for user in STUDENTS + MENTORS:
            fake.add_user(user, tz="UTC")
        fake.add_channel(FEED, members=[*MENTORS, "UBOT"])
        fake.add_channel(GENERAL, members=[*STUDENTS, *MENTORS, "UBOT"])
        env, port = _environment(database_url, fake), _free_port()
        harness = SlackDriver(fake, secret=SECRET, base_url=f"http://127.0.0.1:{port}")
        await harness.open()
        await _cli(env, tmp_path, "migrate")  # the release step (SQLite would also migrate on start)
        app = await _start_app(env, port, tmp_path)
        try:
            # Every student opens the form first (views.open happens right after the ack).
            forms: list[dict[str, Any]] = []
            for student in STUDENTS:
                opened = len(fake.views)
                assert (await harness.command(student, channel=GENERAL)).status == 200
                await _until(_views_beyond(fake, opened), "the request form")
                forms.append(harness.latest_view("mm_request"))

            # The burst: all submit at once; the process is killed after a few answers.
            async def submit(i: int) -> bool:
                try:
                    answer = await harness.submit(STUDENTS[i], forms[i], _form(i))
                except (aiohttp.ClientError, TimeoutError):
                    return False  # the connection died with the process: not accepted
                return answer.status == 200 and "errors" not in answer.text

            tasks = [asyncio.ensure_future(submit(i)) for i in range(len(STUDENTS))]
            for answered, done in enumerate(asyncio.as_completed(tasks), start=1):
                await done
                if answered == KILL_AFTER:
                    app.send_signal(signal.SIGKILL)
            await app.wait()
            accepted_titles = {_form(i)["title"] for i, task in enumerate(tasks) if task.result()}
            assert len(accepted_titles) >= KILL_AFTER - 1  # the burst really was under way

            # Restarted: mentors race to claim every card that made it to the feed.
            app = await _start_app(env, port, tmp_path)
            cards = [m for m in fake.messages.get(FEED, []) if "mm_claim" in str(m.get("blocks"))]
            clicks = [
                harness.click_in(mentor, FEED, "mm_claim", index=fake.messages[FEED].index(card))
                for card in cards
                for mentor in MENTORS
            ]
            answers = await asyncio.gather(*clicks)
            assert all(answer.status == 200 for answer in answers)
        finally:
            if app.returncode is None:
                app.send_signal(signal.SIGTERM)
                await app.wait()
            await harness.close()

        # Catch up as an operator would: leases of the killed process have run out by then.
        await _cli(
            env, tmp_path, "jobs", "--once", "--now", (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        )

        db = Database(database_url)
        try:
            async with db.transaction() as session:
                requests = (await session.scalars(select(Request))).all()
                notes = (await session.scalars(select(Notification))).all()
        finally:
            await db.dispose()

    titles = Counter(r.title for r in requests)
    assert accepted_titles <= set(titles), "an accepted request was lost"
    assert all(count == 1 for count in titles.values()), "a request was stored twice"
    assert {n.status for n in notes} <= {"sent", "superseded"}, Counter(n.status for n in notes)

    # What Slack received, by outbox id: every post exactly once, and one per notification posted.
    posted = Counter(
        message["metadata"]["event_payload"]["notification"]
        for messages in fake.messages.values()
        for message in messages
        if message.get("metadata")
    )
    assert all(count == 1 for count in posted.values()), "a message was posted twice"
    by_id = {n.id: n for n in notes}
    card_posts = Counter(by_id[i].request_id for i in posted if by_id[i].kind == "card")
    assert card_posts == Counter({r.id: 1 for r in requests}), "a card is missing or doubled"
    confirmations = Counter(by_id[i].request_id for i in posted if by_id[i].kind == "request_posted")
    assert confirmations == Counter({r.id: 1 for r in requests}), "a student DM is missing or doubled"
    claimed = [r for r in requests if r.status == "claimed"]
    claim_dms = Counter(by_id[i].request_id for i in posted if by_id[i].kind == "request_claimed")
    assert claim_dms == Counter({r.id: 1 for r in claimed})
    assert len(claimed) == len(cards)  # every card that was clicked has exactly one winner
