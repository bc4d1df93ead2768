"""The database goes away and comes back: real PostgreSQL connections fail, people are told to try
again, the process carries on, and it recovers by itself once the database is back.

The app's DATABASE_URL points at a TCP proxy in this test that forwards to the PostgreSQL server.
`down()` cuts every open connection and refuses new ones (accepts and closes at once, as a server
that crashed or restarted would); `up()` forwards again. So the failures are the driver's own
(psycopg sees the connection die), not a mocked exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.clock import ManualClock
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import build_app
from jobs.delivery import DeliveryStats
from modals.slack import GENERIC_ERROR
from storage import migrate
from storage.db import Database
from storage.models import Notification, Request
from tests.conftest import PG_URL, make_settings, reset_postgres
from tests.slack.harness import (
    MENTOR,
    MENTOR_2,
    MENTORS,
    REQUEST_VALUES,
    STUDENT,
    SlackHarness,
    block_text,
    buttons,
    slack_settings,
)
from tests.slack.test_flow import _request

RELEASE = {"action_id": "mm_release", "text": {"type": "plain_text", "text": "Release"}, "value": "1"}
PASS_DEADLINE = 30.0  # a safety net for a hung test, never a way to wait for time to pass


class TcpProxy:
    """127.0.0.1:<ephemeral> → `target`, with a switch."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.listen_port = 0
        self.refusing = False
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def down(self) -> None:
        """Drop every connection (RST, like a dead server) and refuse new ones until `up()`."""
        self.refusing = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def up(self) -> None:
        self.refusing = False

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_w.transport.abort()
            return
        self._open.update((client_w, server_w))
        for reader, writer in ((client_r, server_w), (server_r, client_w)):
            task = asyncio.ensure_future(self._pipe(reader, writer))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._open.discard(writer)
            writer.transport.abort()


@dataclass
class Passes:
    """Every pass of the app's own delivery loop (`run_forever`), as it ends: the stats of a pass
    that worked, or the exception of one that failed. Wake-ups coalesce, so a test waits for the
    pass that does what it expects rather than counting passes."""

    outcomes: asyncio.Queue[DeliveryStats | Exception] = field(default_factory=asyncio.Queue)

    def wrap(
        self, run_once: Callable[[], Awaitable[DeliveryStats]]
    ) -> Callable[[], Awaitable[DeliveryStats]]:
        async def observed() -> DeliveryStats:
            try:
                stats = await run_once()
            except Exception as exc:
                self.outcomes.put_nowait(exc)
                raise
            self.outcomes.put_nowait(stats)
            return stats

        return observed

    async def failure(self) -> Exception:
        """The next pass that fails."""
        while True:
            outcome = await asyncio.wait_for(self.outcomes.get(), PASS_DEADLINE)
            if isinstance(outcome, Exception):
                return outcome

    async def until(self, done: Callable[[], bool]) -> None:
        """Passes until `done()` holds after one of them; none of them may fail."""
        while not done():
            outcome = await asyncio.wait_for(self.outcomes.get(), PASS_DEADLINE)
            assert not isinstance(outcome, Exception), outcome


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    url = make_url(PG_URL)
    tcp = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await tcp.start()
    yield tcp
    await tcp.stop()


@pytest.fixture
async def slack_via_proxy(
    postgres_url: str, proxy: TcpProxy, fake: FakeSlack, clock: ManualClock
) -> AsyncIterator[SlackHarness]:
    reset_postgres(postgres_url)
    direct = Database(postgres_url)
    await migrate.upgrade(direct)
    await direct.dispose()
    proxied = make_url(postgres_url).set(host="127.0.0.1", port=proxy.listen_port)
    url = proxied.render_as_string(hide_password=False)
    db = Database(url)
    runtime = Runtime(slack_settings(make_settings(url), fake), clock=clock, db=db)
    harness = SlackHarness(fake, runtime, build_app(runtime.settings, runtime=runtime))
    await harness.start()
    yield harness
    await harness.stop()
    await db.dispose()


async def test_outage_then_recovery(
    slack_via_proxy: SlackHarness,
    proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack = slack_via_proxy
    fake = slack.fake
    await _request(slack)
    assert _buttons(fake.messages[MENTORS][0]) == ["mm_claim"]

    # Owed before the outage: a claim commits its card update and the student's DM, and the
    # database goes away before they are delivered.
    claim = await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.idle_only()
    assert "You claimed" in slack.reply_text(claim)
    dms_before = len(slack.dms(STUDENT))

    # The delivery loop runs as `mini-mentorship slack` runs it; every pass is observed.
    passes = Passes()
    caplog.set_level(logging.INFO, logger="mini_mentorship.outage")
    monkeypatch.setattr(slack.runtime.delivery, "run_once", passes.wrap(slack.runtime.delivery.run_once))
    loop = asyncio.ensure_future(slack.runtime.delivery.run_forever(poll_seconds=3600))
    try:
        proxy.down()

        # Each kind of interaction: acknowledged at once, then "try again in a moment", privately.
        listing = await slack.command(MENTOR_2, "list")
        release = await slack.click(MENTOR, RELEASE)  # the card doesn't show it yet: nothing delivered
        assert (listing.status, release.status) == (200, 200)
        await slack.idle_only()
        for answer in (listing, release):
            [reply] = slack.replies(answer)
            assert reply["text"] == GENERIC_ERROR and reply["response_type"] == "ephemeral"
        # A form keeps what was typed and shows the message on its first field.
        await slack.command(STUDENT)
        await slack.idle_only()
        form = await slack.submit(
            STUDENT, slack.latest_view("mm_request"), {**REQUEST_VALUES, "title": "Second"}
        )
        assert form.status == 200
        assert form.json()["response_action"] == "errors"
        assert GENERIC_ERROR in form.json()["errors"].values()
        health = await slack.get("/healthz")
        assert health.status == 503 and health.json()["ok"] is False

        # The delivery loop's pass fails, is logged, and the loop carries on.
        slack.runtime.delivery.wake()
        assert "server closed the connection" in str(await passes.failure())
        assert not loop.done()
        # ... once, as a WARNING without a traceback, however many passes fail.
        slack.runtime.delivery.wake()
        assert "server closed the connection" in str(await passes.failure())
        outage = [r for r in caplog.records if r.name == "mini_mentorship.outage"]
        assert [r.levelname for r in outage] == ["WARNING"]
        assert "database unreachable (outbox delivery)" in outage[0].getMessage()
        assert not any(r.exc_info for r in caplog.records if r.name.startswith(("jobs", "mini_mentorship")))
        assert len(slack.dms(STUDENT)) == dms_before

        proxy.up()

        # Its next pass (the poll timer's; woken here so the test needn't wait) delivers what
        # was owed before the outage: the card shows the claim and the student has the DM.
        slack.runtime.delivery.wake()
        await passes.until(lambda: len(slack.dms(STUDENT)) > dms_before)
        await passes.until(lambda: "mm_release" in _buttons(fake.messages[MENTORS][0]))
        outage = [r for r in caplog.records if r.name == "mini_mentorship.outage"]
        assert [r.levelname for r in outage] == ["WARNING", "INFO"]
        assert "database reachable again" in outage[1].getMessage()
        assert "A mentor claimed your request" in block_text(slack.dms(STUDENT)[-1]["blocks"])

        # The next click works, with no restart, and its messages go out by themselves.
        assert (await slack.get("/healthz")).status == 200
        release = await slack.click_in(MENTOR, MENTORS, "mm_release")
        await slack.idle_only()
        assert "You released" in slack.reply_text(release)
        await passes.until(lambda: "open again" in block_text(slack.dms(STUDENT)[-1]["blocks"]))
        await passes.until(lambda: _buttons(fake.messages[MENTORS][0]) == ["mm_claim"])
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop

    # Nothing owed is left behind, nothing was sent twice.
    async with slack.runtime.db.transaction() as session:
        statuses = dict(
            (
                await session.execute(select(Notification.status, func.count()).group_by(Notification.status))
            ).all()
        )
        requests = (await session.scalars(select(Request))).all()
    assert set(statuses) <= {"sent", "superseded"}, statuses
    assert [r.status for r in requests] == ["open"]  # the form sent during the outage made nothing
    dms = [block_text(m["blocks"]) for m in slack.dms(STUDENT)]
    assert sum("A mentor claimed your request" in text for text in dms) == 1
    assert len(fake.messages[MENTORS]) == 1


def _buttons(message: dict[str, Any]) -> list[str]:
    return [element["action_id"] for _, element in buttons(message.get("blocks"))]


async def test_sweeps_log_an_outage_once_and_back_off(
    postgres_url: str, proxy: TcpProxy, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler's ticks during an outage: one WARNING, ticks skipped while backing off,
    no traceback, and one INFO at the first tick that reaches the database again."""
    from jobs.sweeps import Sweeps

    reset_postgres(postgres_url)
    direct = Database(postgres_url)
    await migrate.upgrade(direct)
    await direct.dispose()
    url = make_url(postgres_url).set(host="127.0.0.1", port=proxy.listen_port)
    runtime = Runtime(make_settings(url.render_as_string(hide_password=False)), clock=clock)
    sweeps = Sweeps(runtime)
    caplog.set_level(logging.DEBUG)

    def runs(outcome: str) -> float:
        labels = {"sweep": "expire", "outcome": outcome}
        return runtime.metrics.registry.get_sample_value("mini_mentorship_sweep_runs_total", labels) or 0.0

    try:
        await sweeps.run_safely("expire")
        assert runs("ok") == 1
        proxy.down()
        for _ in range(30):  # a minute of two-second ticks, as the scheduler would run them
            await sweeps.run_safely("expire")
            clock.advance(seconds=2)
        # Backoff: 2, 4, 8, 16, 32 s apart, so a handful of attempts rather than thirty.
        assert 3 <= runs("failed") <= 6
        proxy.up()
        clock.advance(seconds=60)
        await sweeps.run_safely("expire")
        assert runs("ok") == 2
    finally:
        await runtime.close()
    outage = [r for r in caplog.records if r.name == "mini_mentorship.outage" and r.levelno >= logging.INFO]
    assert [r.levelname for r in outage] == ["WARNING", "INFO"]
    assert "database unreachable (sweep expire)" in outage[0].getMessage()
    assert "reachable again" in outage[1].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
