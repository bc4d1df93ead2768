"""Drive the Slack app the way Slack does: real signed HTTP requests to POST /slack/events of the
app served over aiohttp on an ephemeral port (exactly as `serve` does in HTTP mode), with the
app's Web API calls going to FakeSlack.

Buttons are clicked and forms submitted *from what the app actually sent* (the blocks of a
message in the fake, the view it opened), so rendering and handling are tested together. The
payload builders live in fakes/slack_driver.py, shared with `mini-mentorship demo`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from slack_bolt.app.async_app import AsyncApp

from bot.config import Settings
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from fakes.slack_driver import Answer, SlackDriver, block_text, buttons, find_button
from fakes.slack_driver import sign as _sign
from handlers.slack import SlackSender, idle, web_app

__all__ = ["Answer", "SlackHarness", "block_text", "buttons", "find_button", "sign"]

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
TEAM = "T1"
MENTORS = "CMENTORS"
GENERAL = "CGENERAL"

STUDENT, OTHER, MENTOR, MENTOR_2, ADMIN = "USTUDENT", "UOTHER", "UMENTOR", "UMENTOR2", "UADMIN"


def populate(fake: FakeSlack) -> None:
    fake.add_user(STUDENT, name="sam", tz="Europe/Berlin", real_name="Sam Student")
    fake.add_user(OTHER, name="olive", tz="UTC")
    fake.add_user(MENTOR, name="mia", tz="America/New_York", real_name="Mia Mentor")
    fake.add_user(MENTOR_2, name="max", tz="UTC")
    fake.add_user(ADMIN, name="ada", tz="UTC", is_admin=True)
    fake.add_channel(MENTORS, members=[MENTOR, MENTOR_2, "UBOT"], name="mentors")
    fake.add_channel(GENERAL, members=[STUDENT, OTHER, MENTOR, MENTOR_2, ADMIN, "UBOT"], name="general")


def slack_settings(base: Settings, fake: FakeSlack, **overrides: Any) -> Settings:
    values = {
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake.url,
        "slack_mentor_channel": MENTORS,
        **overrides,
    }
    return base.model_copy(update=values)


def sign(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    return _sign(body, secret, timestamp)


class SlackHarness(SlackDriver):
    """The app served in-process, and a driver that talks to it like Slack."""

    def __init__(self, fake: FakeSlack, runtime: Runtime, app: AsyncApp) -> None:
        super().__init__(fake, secret=SECRET, team=TEAM)
        self.runtime = runtime
        self.app = app
        self._runner: web.AppRunner | None = None
        # Deliver without the 1 s per-channel pacing (tests assert behaviour, not time).
        runtime.delivery.add_sender(SlackSender(runtime.settings, min_interval=0))

    async def start(self) -> None:
        self._runner = web.AppRunner(web_app(self.app), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        await self.open()

    async def stop(self) -> None:
        await idle(self.app)
        await self.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def idle_only(self) -> None:
        """Finish background work without delivering (e.g. with the database away)."""
        await idle(self.app)

    async def settle(self) -> None:
        """Finish background work, deliver what is owed, and once more for what that caused."""
        for _ in range(3):
            await idle(self.app)
            stats = await self.runtime.delivery.run_once()
            await idle(self.app)
            if stats.handled == 0:
                return

    async def click(
        self, user: str, button: dict[str, Any], *, channel: str = MENTORS, **kwargs: Any
    ) -> Answer:
        return await super().click(user, button, channel=channel, **kwargs)

    def card(self, index: int = -1) -> dict[str, Any]:
        return self.fake.messages[MENTORS][index]


REQUEST_VALUES: dict[str, str | None] = {
    "title": "Mock interview for a backend role",
    "session_type": "interview_prep",
    "description": "I have an interview on Friday and want to practise system design questions.",
    "duration": "30",
    "available_from": "2030-01-07",
    "available_until": "2030-01-11",
    "urgency": "high",
    "tags": "python, interviews",
}
