"""Socket Mode, the setup the README recommends: the real `serve` connects to the fake Slack's
websocket with the app-level token, and the whole request flow works over it, counted in the
/metrics that METRICS_PORT serves in that mode."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import ManualClock
from bot.metrics import ops_app
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from fakes.slack_driver import SlackDriver
from handlers.slack import build_app, idle, serve
from storage.db import Database
from tests.conftest import make_settings
from tests.slack.harness import GENERAL, MENTOR, MENTORS, REQUEST_VALUES, STUDENT, populate


async def test_request_and_claim_over_socket_mode(database: Database, clock: ManualClock) -> None:
    async with FakeSlack(team_id="T1") as fake:
        populate(fake)
        settings = make_settings(
            database.url,
            slack_bot_token="xoxb-test-token",
            slack_signing_secret="unused-in-socket-mode",
            slack_app_token="xapp-1-test",
            slack_api_url=fake.url,
            slack_mentor_channel=MENTORS,
            slack_channel_post_interval=0,
        )
        runtime = Runtime(settings, clock=clock, db=database)
        app = build_app(settings, runtime=runtime)
        running = asyncio.ensure_future(serve(runtime, http=False, port=0))
        driver = SlackDriver(fake, secret="")  # builds payloads; Socket Mode carries them unsigned
        try:
            await fake.wait_for_socket()
            opened = fake.calls_to("apps.connections.open")
            assert opened and opened[0].ok  # asked with the xapp- token

            ack = await fake.socket_send("slash_commands", driver.command_body(STUDENT, "", GENERAL))
            assert ack["envelope_id"]
            await idle(app)
            form = driver.latest_view("mm_request")

            ack = await fake.socket_send("interactive", driver.submission(STUDENT, form, REQUEST_VALUES))
            assert "errors" not in str(ack.get("payload"))
            await idle(app)
            await runtime.delivery.run_once()
            card = fake.messages[MENTORS][0]
            assert REQUEST_VALUES["title"] in str(card["blocks"])

            claim = next(
                e
                for b in card["blocks"]
                if b["type"] == "actions"
                for e in b["elements"]
                if e["action_id"] == "mm_claim"
            )
            await fake.socket_send("interactive", driver.click_payload(MENTOR, claim, channel=MENTORS))
            await idle(app)
            await runtime.delivery.run_once()
            assert "Claimed" in str(fake.messages[MENTORS][0]["blocks"])
            assert fake.validation_errors == []

            # What METRICS_PORT serves in this mode: each interaction over the socket, by kind.
            async with TestClient(TestServer(ops_app(runtime))) as scraper:
                answer = await scraper.get("/metrics")
                text = await answer.text()
            counted = {
                sample.labels["kind"]: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "mini_mentorship_interaction_duration_seconds_count"
                and sample.labels["platform"] == "slack"
            }
            assert counted == {"command": 1, "view_submission": 1, "block_actions": 1}
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def test_bot_token_cannot_open_a_socket() -> None:
    """apps.connections.open takes only an app-level token, like Slack."""
    async with FakeSlack() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        try:
            await client.apps_connections_open(app_token="xoxb-not-an-app-token")
        except SlackApiError as exc:
            assert exc.response["error"] == "invalid_auth"
        else:
            raise AssertionError("a bot token opened a socket")
