"""Drive the Slack app the way Slack does: real signed HTTP requests to POST /slack/events of the
app served over aiohttp on an ephemeral port (exactly as `serve` does in HTTP mode), with the
app's Web API calls going to FakeSlack.

Buttons are clicked and forms submitted *from what the app actually sent* (the blocks of a
message in the fake, the view it opened), so rendering and handling are tested together.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp

from bot.config import Settings
from bot.runtime import Runtime
from handlers.slack import SlackSender, idle, web_app
from tests.fakes.slack_api import FakeSlack

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
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Answer:
    status: int
    text: str
    sent: dict[str, Any] | None = None  # the payload / command body that got this answer

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def buttons(blocks: list[dict[str, Any]] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(block_id, element) of every button in some blocks."""
    for index, block in enumerate(blocks or []):
        if block.get("type") == "actions":
            for element in block["elements"]:
                if element.get("type") == "button":
                    yield str(block.get("block_id") or f"b{index}"), element


def find_button(
    blocks: list[dict[str, Any]] | None, action_id: str, value: str | None = None
) -> dict[str, Any]:
    for _, element in buttons(blocks):
        if element["action_id"] == action_id and (value is None or element.get("value") == value):
            return element
    found = [(e["action_id"], e.get("value")) for _, e in buttons(blocks)]
    raise AssertionError(f"no button {action_id} ({value}) among {found}")


def block_text(blocks: list[dict[str, Any]] | None) -> str:
    """Every text in some blocks, joined (for `in` assertions)."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                out.append(value["text"])
            for item in value.values():
                if isinstance(item, dict | list):
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(blocks or [])
    return "\n".join(out)


class SlackHarness:
    def __init__(self, fake: FakeSlack, runtime: Runtime, app: AsyncApp) -> None:
        self.fake = fake
        self.runtime = runtime
        self.app = app
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        # Deliver without the 1 s per-channel pacing (tests assert behaviour, not time).
        runtime.delivery.add_sender(SlackSender(runtime.settings, min_interval=0))

    async def start(self) -> None:
        self._runner = web.AppRunner(web_app(self.app), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        await idle(self.app)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # Raw HTTP --------------------------------------------------------------------------------

    async def post(self, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Answer:
        assert self._session is not None
        all_headers = {"Content-Type": content_type, **(sign(body) if headers is None else headers)}
        async with self._session.post(
            f"{self.base_url}/slack/events", data=body, headers=all_headers
        ) as resp:
            return Answer(resp.status, await resp.text())

    async def get(self, path: str) -> Answer:
        assert self._session is not None
        async with self._session.get(f"{self.base_url}{path}") as resp:
            return Answer(resp.status, await resp.text())

    async def interact(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        answer = await self.post(body, "application/x-www-form-urlencoded", headers)
        answer.sent = payload
        return answer

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

    # What Slack sends ------------------------------------------------------------------------

    def command_body(self, user: str, text: str = "", channel: str = GENERAL) -> dict[str, str]:
        n = next(self._ids)
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/mini-session",
            "text": text,
            "api_app_id": "A1",
            "response_url": self.fake.response_url(f"cmd-{n}"),
            "trigger_id": f"trigger-{n}",
        }

    async def command(self, user: str, text: str = "", channel: str = GENERAL) -> Answer:
        sent = self.command_body(user, text, channel)
        answer = await self.post(urlencode(sent).encode(), "application/x-www-form-urlencoded")
        answer.sent = dict(sent)
        return answer

    def click_payload(
        self,
        user: str,
        button: dict[str, Any],
        *,
        channel: str | None = None,
        message_ts: str = "1.000000",
        home: bool = False,
    ) -> dict[str, Any]:
        n = next(self._ids)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM, "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A1",
            "token": "legacy-verification-token",
            "trigger_id": f"trigger-{n}",
            "actions": [
                {
                    "type": "button",
                    "action_id": button["action_id"],
                    "block_id": "b",
                    "text": button["text"],
                    "value": button.get("value", ""),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        if home:
            payload["container"] = {"type": "view", "view_id": "VHOME"}
            payload["view"] = {"id": "VHOME", "type": "home", "team_id": TEAM, "blocks": []}
        else:
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": channel, "name": "x"}
            payload["message"] = {"ts": message_ts, "type": "message"}
            payload["response_url"] = self.fake.response_url(f"click-{n}")
        return payload

    async def click(
        self, user: str, button: dict[str, Any], *, channel: str = MENTORS, **kwargs: Any
    ) -> Answer:
        return await self.interact(self.click_payload(user, button, channel=channel, **kwargs))

    async def click_in(
        self, user: str, channel: str, action_id: str, value: str | None = None, *, index: int = -1
    ) -> Answer:
        """Click a button of a message the app posted in `channel` (the newest by default)."""
        message = self.fake.messages[channel][index]
        button = find_button(message["blocks"], action_id, value)
        return await self.click(user, button, channel=channel, message_ts=message["ts"])

    def latest_view(self, callback_id: str) -> dict[str, Any]:
        views = [v for v in self.fake.views.values() if v.get("callback_id") == callback_id]
        assert views, f"no view {callback_id} was opened"
        return views[-1]

    @staticmethod
    def element_state(element: dict[str, Any], value: str | None) -> dict[str, Any]:
        kind = element["type"]
        if kind in ("plain_text_input", "url_text_input"):
            if value is None:
                value = element.get("initial_value")
            return {"type": kind, "value": value}
        if kind == "static_select":
            if value is None:
                return {"type": kind, "selected_option": element.get("initial_option")}
            option = next((o for o in element["options"] if o["value"] == value), None)
            return {
                "type": kind,
                "selected_option": option or {"text": {"type": "plain_text", "text": value}, "value": value},
            }
        if kind == "datepicker":
            return {
                "type": kind,
                "selected_date": value if value is not None else element.get("initial_date"),
            }
        if kind == "datetimepicker":
            return {
                "type": kind,
                "selected_date_time": int(value) if value else element.get("initial_date_time"),
            }
        raise AssertionError(f"unexpected element {kind}")

    def submission(self, user: str, view: dict[str, Any], values: dict[str, str | None]) -> dict[str, Any]:
        """What Slack sends when `user` submits `view` with `values` (others keep their initial)."""
        state: dict[str, Any] = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            element = block["element"]
            state[block["block_id"]] = {
                element["action_id"]: self.element_state(element, values.get(block["block_id"]))
            }
        unknown = set(values) - set(state)
        assert not unknown, f"the view has no fields {unknown}"
        return {
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A1",
            "token": "legacy-verification-token",
            "trigger_id": f"trigger-{next(self._ids)}",
            "view": {**view, "state": {"values": state}},
        }

    async def submit(self, user: str, view: dict[str, Any], values: dict[str, str | None]) -> Answer:
        return await self.interact(self.submission(user, view, values))

    async def home_opened(self, user: str) -> Answer:
        body = json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": TEAM,
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": f"Ev{next(self._ids)}",
                "event_time": int(time.time()),
                "event": {
                    "type": "app_home_opened",
                    "user": user,
                    "channel": f"D{user}",
                    "tab": "home",
                    "event_ts": f"{time.time():.6f}",
                },
            }
        ).encode()
        return await self.post(body, "application/json")

    # Observations ----------------------------------------------------------------------------

    def dms(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.fake.messages.get(f"D{user}", []) if m.get("blocks")]

    def card(self, index: int = -1) -> dict[str, Any]:
        return self.fake.messages[MENTORS][index]

    def replies(self, answer: Answer) -> list[dict[str, Any]]:
        """What the app sent back through the response_url of one interaction."""
        assert answer.sent is not None
        key = str(answer.sent["response_url"]).rsplit("/", 1)[1]
        return [e for e in self.fake.ephemerals if e.get("key") == key]

    def reply_text(self, answer: Answer) -> str:
        return "\n".join(
            str(e.get("text") or "") + "\n" + block_text(e.get("blocks")) for e in self.replies(answer)
        )


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
