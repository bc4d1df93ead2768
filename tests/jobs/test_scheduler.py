"""The real APScheduler wiring of `jobs` and `run`: what it logs while a sweep outlasts its interval."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from jobs.scheduler import build_scheduler
from jobs.sweeps import Sweeps


async def test_a_tick_skipped_while_the_last_one_runs_is_no_warning(
    sweeps: Sweeps, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deliver pass pacing a burst into one channel (1 s a message by default) outlasts its 5 s
    interval; the next tick is skipped, as max_instances=1 asks. Nothing for an operator to do."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(name: str) -> int:
        entered.set()
        await release.wait()
        return 0

    monkeypatch.setattr(sweeps, "run", slow)
    caplog.set_level(logging.INFO)
    scheduler = build_scheduler(sweeps)
    scheduler.start()
    try:
        scheduler.modify_job("sweep:deliver", next_run_time=datetime.now(UTC))
        await asyncio.wait_for(entered.wait(), 5)
        scheduler.modify_job("sweep:deliver", next_run_time=datetime.now(UTC))  # the next tick, due now
        for _ in range(50):
            await asyncio.sleep(0)
        skipped = [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
        assert skipped, "the overlapping tick was not processed"
        assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        release.set()
        scheduler.shutdown(wait=False)
        await sweeps.stop()
