"""The app's surroundings: /healthz, `serve` in HTTP mode, the App Home tab, help, the database
going away, and the manifest."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import build_app, manifest, runtime_of, serve
from handlers.slack_manifest import BOT_SCOPES
from storage.db import Database
from storage.models import Request
from tests.conftest import make_settings
from tests.slack.harness import (
    MENTOR,
    MENTORS,
    OTHER,
    REQUEST_VALUES,
    STUDENT,
    SlackHarness,
    block_text,
    find_button,
    slack_settings,
)
from tests.slack.test_flow import _request


async def test_healthz(slack_lite: SlackHarness) -> None:
    answer = await slack_lite.get("/healthz")
    assert answer.status == 200 and answer.json()["ok"] is True
    assert runtime_of(slack_lite.app) is slack_lite.runtime


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_in_http_mode(fake: FakeSlack, tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    runtime = Runtime(slack_settings(make_settings(url), fake, slack_app_token="xapp-ignored"), clock=clock)
    await runtime.prepare()
    port = _free_port()
    app = build_app(runtime.settings, runtime=runtime)  # as the CLI does before serve()
    sender = runtime.delivery.senders["slack"]
    task = asyncio.create_task(serve(runtime, http=True, port=port))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):  # until the socket is up (no timers: poll the port)
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        assert resp.status == 200 and (await resp.json())["ok"] is True
                        break
                await asyncio.sleep(0)
            else:
                raise AssertionError("serve never listened")
            async with session.post(f"http://127.0.0.1:{port}/slack/events", data=b"x") as resp:
                assert resp.status == 401
        # serve() reused the app built for this runtime: one sender, one set of caches.
        assert runtime.delivery.senders["slack"] is sender and runtime_of(app) is runtime
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()


async def test_help_and_unknown_subcommands(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    answer = await slack.command(STUDENT, "help")
    await slack.settle()
    text = slack.reply_text(answer)
    assert "/mini-session list" in text and "availability" not in text and "stats" not in text
    answer = await slack.command(MENTOR, "HELP")
    await slack.settle()
    assert "/mini-session availability" in slack.reply_text(answer)
    answer = await slack.command(STUDENT, "dance <!channel>")
    await slack.settle()
    text = slack.reply_text(answer)
    assert "I don't know “dance &lt;!channel&gt;”" in text and "/mini-session list" in text
    assert slack.fake.validation_errors == []


async def test_home_tab(slack_lite: SlackHarness) -> None:
    slack, fake = slack_lite, slack_lite.fake
    # Empty states say what to do.
    await slack.home_opened(STUDENT)
    await slack.home_opened(MENTOR)
    await slack.settle()
    student_home = block_text(fake.home_tabs[STUDENT]["blocks"])
    assert "You have no requests yet" in student_home and "Open requests" not in student_home
    mentor_home = block_text(fake.home_tabs[MENTOR]["blocks"])
    assert "No open requests right now" in mentor_home and "<#CMENTORS>" in mentor_home
    assert "You haven't set weekly availability" in mentor_home

    # "Request a session" on the home tab opens the form; submitting refreshes the tab.
    button = find_button(fake.home_tabs[STUDENT]["blocks"], "mm_open_request")
    await slack.click(STUDENT, button, home=True)
    await slack.settle()
    await slack.submit(STUDENT, slack.latest_view("mm_request"), REQUEST_VALUES)
    await slack.settle()
    refreshed = fake.home_tabs[STUDENT]["blocks"]
    assert "Mock interview for a backend role" in block_text(refreshed)
    find_button(refreshed, "mm_cancel")

    # A mentor claims from the home tab: the tab shows the result, the card is updated.
    await slack.home_opened(MENTOR)
    await slack.settle()
    claim = find_button(fake.home_tabs[MENTOR]["blocks"], "mm_claim")
    await slack.click(MENTOR, claim, home=True)
    await slack.settle()
    mentor_home = block_text(fake.home_tabs[MENTOR]["blocks"])
    assert "You claimed" in mentor_home and "Claimed by me" in mentor_home
    find_button(fake.home_tabs[MENTOR]["blocks"], "mm_schedule")
    assert "Claimed" in block_text(fake.messages[MENTORS][0]["blocks"])
    # A refusal on the home tab is shown there too.
    await slack.click(OTHER, claim, home=True)
    await slack.settle()
    assert "Only mentors can do that" in block_text(fake.home_tabs[OTHER]["blocks"])
    assert fake.validation_errors == []


async def test_database_unavailable(fake: FakeSlack, clock: ManualClock) -> None:
    """Every entry point answers, and the person is told to try again; nothing crashes."""
    url = "postgresql+psycopg://postgres@127.0.0.1:9/nothing"  # nothing listens on port 9
    settings: Settings = slack_settings(make_settings(url), fake)
    runtime = Runtime(settings, clock=clock, db=Database(url))
    slack = SlackHarness(fake, runtime, build_app(settings, runtime=runtime))
    await slack.start()
    try:
        answer = await slack.command(STUDENT, "list")
        assert answer.status == 200
        await slack.command(MENTOR, "availability")
        await slack.idle_only()
        assert "Something went wrong on our side" in slack.reply_text(answer)

        await slack.command(STUDENT)  # opening the form needs no database
        await slack.idle_only()
        view = slack.latest_view("mm_request")
        answer = await slack.submit(STUDENT, view, REQUEST_VALUES)
        body = answer.json()
        assert body["response_action"] == "errors"
        assert body["errors"] == {"title": "Something went wrong on our side — please try again in a moment."}

        await slack.home_opened(STUDENT)
        await slack.idle_only()
        assert "Something went wrong on our side" in block_text(fake.home_tabs[STUDENT]["blocks"])
        assert (await slack.get("/healthz")).status == 503
        assert fake.validation_errors == []
    finally:
        await slack.stop()
        await runtime.close()


async def test_manifest() -> None:
    text = manifest()
    assert "    - command: /mini-session\n" in text
    assert "socket_mode_enabled: true" in text and "request_url" not in text
    assert "home_tab_enabled: true" in text and "- app_home_opened" in text
    assert "  interactivity:\n    is_enabled: true" in text
    scopes = text.split("    bot:\n")[1].split("settings:")[0]
    assert [line.strip("- ").strip() for line in scopes.splitlines()] == sorted(BOT_SCOPES)
    assert set(BOT_SCOPES) == {
        "commands",
        "chat:write",
        "im:write",
        "users:read",
        "channels:read",
        "groups:read",
        "files:write",
        "channels:history",
        "groups:history",
        "im:history",
        "mpim:write",
        "mpim:history",
    }
    http = manifest(None, base_url="https://bot.example.org/")
    assert http.count('"https://bot.example.org/slack/events"') == 3 and "socket_mode_enabled: false" in http
    assert "\t" not in text and all(not line.endswith(" ") for line in text.splitlines())


async def test_stale_request_form_is_still_answered(slack_lite: SlackHarness) -> None:
    """A schedule form submitted after the claim was released is answered with the reason."""
    slack = slack_lite
    await _request(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    await slack.click_in(MENTOR, MENTORS, "mm_release")
    await slack.settle()
    answer = await slack.submit(MENTOR, view, {"starts_at": "1894028400"})
    body = answer.json()
    assert body["response_action"] == "update"
    assert "This request is open now, so there's nothing to do here." in block_text(body["view"]["blocks"])
    async with slack.runtime.db.transaction() as session:
        assert (await session.scalars(select(Request.status))).one() == "open"


async def test_url_verification(slack_lite: SlackHarness) -> None:
    body = b'{"token": "t", "challenge": "c-123", "type": "url_verification"}'
    answer = await slack_lite.post(body, "application/json")
    assert answer.status == 200 and "c-123" in answer.text


async def test_availability_round_trip(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    await slack.command(MENTOR, "availability")
    await slack.settle()
    view = slack.latest_view("mm_availability")
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs["timezone"]["initial_value"] == "America/New_York"  # from Slack's profile
    assert "initial_value" not in inputs["windows"]
    answer = await slack.submit(
        MENTOR, view, {"windows": "wed 18:00-20:00\nmon 9:30-11:00", "timezone": "Europe/Lisbon"}
    )
    assert "Mon 09:30-11:00, Wed 18:00-20:00" in block_text(answer.json()["view"]["blocks"])
    await slack.command(MENTOR, "availability")
    await slack.settle()
    inputs = {
        b["block_id"]: b["element"]
        for b in slack.latest_view("mm_availability")["blocks"]
        if b["type"] == "input"
    }
    assert inputs["windows"]["initial_value"] == "Mon 09:30-11:00, Wed 18:00-20:00"


async def test_rate_limited_modal_is_retried_after_retry_after(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    slack.fake.fail_next("views.open", status=429, retry_after=1)
    await slack.command(STUDENT)
    await slack.settle()
    assert [c.ok for c in slack.fake.calls_to("views.open")] == [False, True]
    opened = slack.fake.calls_to("views.open")
    assert opened[1].at - opened[0].at >= 0.9  # it waited for Retry-After
    slack.latest_view("mm_request")
