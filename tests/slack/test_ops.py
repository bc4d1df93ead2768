"""/metrics and /healthz on the Slack HTTP server, after real actions: a request and a claim over
signed HTTP against the fake Slack, its messages delivered, and sweeps run on the ManualClock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.clock import ManualClock
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import _bot, build_app
from jobs.scheduler import build_scheduler
from jobs.sweeps import SWEEP_ORDER, Sweeps
from storage.models import Request
from tests.conftest import make_settings
from tests.slack.conftest import MakeSlack
from tests.slack.harness import MENTOR, MENTORS, SlackHarness, slack_settings
from tests.slack.test_flow import _request


async def _scrape(slack: SlackHarness) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await slack.get("/metrics")
    assert answer.status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_a_claim_and_a_sweep(slack: SlackHarness, clock: ManualClock) -> None:
    await _request(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.idle_only()  # committed and owed, not delivered yet
    clock.advance(minutes=5)

    samples = await _scrape(slack)
    # The backlog, read at scrape time: the card's update and the student's DM, due 5 min ago.
    assert _value(samples, "mini_mentorship_outbox_backlog", kind="card") == 1
    assert _value(samples, "mini_mentorship_outbox_backlog", kind="request_claimed") == 1
    assert _value(samples, "mini_mentorship_outbox_oldest_age_seconds", kind="card") == 300
    # Every interaction Bolt dispatched is timed, by kind.
    interactions = "mini_mentorship_interaction_duration_seconds_count"
    assert _value(samples, interactions, platform="slack", kind="command") == 1
    assert _value(samples, interactions, platform="slack", kind="view_submission") == 1
    assert _value(samples, interactions, platform="slack", kind="block_actions") == 1
    assert _value(samples, "mini_mentorship_deliveries_total", kind="card") == 1  # the first post

    await slack.settle()
    await Sweeps(slack.runtime).run("expire")
    samples = await _scrape(slack)
    assert samples[("mini_mentorship_outbox_backlog", frozenset({("kind", "card")}))] == 0  # 0, not absent
    assert _value(samples, "mini_mentorship_deliveries_total", kind="card") == 2
    assert _value(samples, "mini_mentorship_deliveries_total", kind="request_claimed") == 1
    assert _value(samples, "mini_mentorship_delivery_failures_total", kind="card") == 0
    assert _value(samples, "mini_mentorship_sweep_runs_total", sweep="expire", outcome="ok") == 1
    assert _value(samples, "mini_mentorship_sweep_duration_seconds_count", sweep="expire") == 1
    # Defined for the escalation work, so it is exposed (with no samples) before anything counts.
    assert "# TYPE mini_mentorship_claim_target_missed_total counter" in (await slack.get("/metrics")).text


async def test_healthz_reports_each_sweep_and_says_which_is_stale(
    slack: SlackHarness, clock: ManualClock
) -> None:
    # A web-only process: sweeps that never ran are reported, and are not a failure.
    answer = await slack.get("/healthz")
    body = answer.json()
    assert answer.status == 200 and body["ok"] is True and body["database"] == {"ok": True}
    assert {name: entry["status"] for name, entry in body["sweeps"].items()} == dict.fromkeys(
        SWEEP_ORDER, "never run"
    )

    await Sweeps(slack.runtime).run_all_once()
    clock.advance(seconds=14)  # under three deliver intervals (5 s)
    answer = await slack.get("/healthz")
    assert answer.status == 200 and answer.json()["sweeps"]["deliver"]["status"] == "ok"

    clock.advance(seconds=2)  # 16 s: deliver is stale, the 60 s sweeps are not
    answer = await slack.get("/healthz")
    body = answer.json()
    assert answer.status == 503 and body["ok"] is False
    assert body["problems"] == ["sweep deliver has not succeeded for 16 s (interval 5 s)"]
    assert body["sweeps"]["deliver"]["ok"] is False and body["sweeps"]["expire"]["ok"] is True

    await Sweeps(slack.runtime).run("deliver")
    assert (await slack.get("/healthz")).status == 200


async def test_healthz_never_run_counts_in_a_process_that_runs_the_sweeps(
    slack: SlackHarness, clock: ManualClock
) -> None:
    build_scheduler(Sweeps(slack.runtime))  # as `run` and `jobs` do (not started: the clock is manual)
    clock.advance(seconds=15)
    assert (await slack.get("/healthz")).status == 200  # up for exactly three deliver intervals
    clock.advance(seconds=1)
    answer = await slack.get("/healthz")
    assert answer.status == 503
    assert answer.json()["problems"] == ["sweep deliver has never run"]
    clock.advance(seconds=170)
    assert set((await slack.get("/healthz")).json()["problems"]) == {
        f"sweep {name} has never run" for name in SWEEP_ORDER
    }


async def test_no_token_warning_when_the_bot_token_is_in_the_environment(
    fake: FakeSlack,
    tmp_path: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bolt reads SLACK_BOT_TOKEN itself and used to warn that our client wins over it."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    caplog.set_level(logging.DEBUG)
    runtime = Runtime(
        slack_settings(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"), fake), clock=clock
    )
    try:
        build_app(runtime.settings, runtime=runtime)
    finally:
        await runtime.close()
    assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("slack_bolt")]


async def test_interaction_duration_times_the_listener_not_just_the_middleware(
    slack: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form's work runs before Slack gets its answer; the histogram must include it. (Bolt runs
    listeners after the middleware chain, so timing around a middleware's next() measured ~0.)"""
    import asyncio

    await slack.command(MENTOR, "profile")
    await slack.settle()
    saving = slack.runtime.mentorship.save_profile

    async def slow_save(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0.2)  # the database taking its time
        return await saving(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(slack.runtime.mentorship, "save_profile", slow_save)
    answer = await slack.submit(
        MENTOR, slack.latest_view("mm_profile"), {"skills": "python", "capacity": "2"}
    )
    assert answer.status == 200 and "Saved" in answer.text

    samples = await _scrape(slack)
    name = "mini_mentorship_interaction_duration_seconds"
    assert _value(samples, f"{name}_count", platform="slack", kind="view_submission") == 1
    assert _value(samples, f"{name}_sum", platform="slack", kind="view_submission") >= 0.2


async def test_a_restarted_clock_process_gets_three_intervals_before_old_runs_count(
    make_slack: MakeSlack, clock: ManualClock
) -> None:
    """The clock process was down 10 minutes (a deploy). Restarted, its first expire tick is a
    minute away, and its /healthz said 503 "has not succeeded for 600 s" meanwhile: a liveness
    probe restarted it before it could ever run, again and again."""
    before = await make_slack()
    await Sweeps(before.runtime).run_all_once()
    clock.advance(minutes=10)

    restarted = await make_slack()
    build_scheduler(Sweeps(restarted.runtime))  # as `jobs` does (not started: the clock is manual)
    answer = await restarted.get("/healthz")
    assert answer.status == 200, answer.json()["problems"]
    clock.advance(seconds=16)  # three deliver intervals since it started, and still no run
    answer = await restarted.get("/healthz")
    assert answer.status == 503
    assert answer.json()["problems"] == ["sweep deliver has not succeeded for 616 s (interval 5 s)"]
    await Sweeps(restarted.runtime).run("deliver")
    clock.advance(seconds=170)  # the 60 s sweeps, too, count once three of their intervals passed
    problems = (await restarted.get("/healthz")).json()["problems"]
    minutely = {f"sweep {name} has not succeeded for 786 s (interval 60 s)" for name in SWEEP_ORDER[:-1]}
    assert set(problems) == minutely | {"sweep deliver has not succeeded for 170 s (interval 5 s)"}


async def test_a_click_cut_short_by_shutdown_asks_the_clicker_to_try_again(
    slack_lite: SlackHarness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM ends `slack` after letting interactions in flight finish for a grace period. Slack
    got its 200 long before, so it won't retry a click still waiting on Slack after that: the
    clicker is told to try again and the log says so, instead of the click vanishing silently."""
    slack, fake = slack_lite, slack_lite.fake
    await _request(slack)
    monkeypatch.setattr("handlers.slack.SHUTDOWN_GRACE", 0.2)
    fake.fail_next("users.info", delay=3)  # who is clicking: Slack is slow to say
    answer = await slack.click_in(MENTOR, MENTORS, "mm_claim")
    assert answer.status == 200
    caplog.set_level(logging.INFO)
    await _bot(slack.app).close()  # what `serve` does when the process is told to stop

    assert "try again" in slack.reply_text(answer)
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "cut short" in warning.getMessage() and "try again" in warning.getMessage()
    assert not warning.exc_info
    async with slack.runtime.db.transaction() as session:
        [request] = (await session.scalars(select(Request))).all()
    assert request.status == "open"  # nothing half-done: the click simply didn't happen
