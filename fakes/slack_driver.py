"""Drive a Slack app the way Slack does: real signed HTTP requests to its POST /slack/events,
built from what the app actually sent to the fake Slack (the blocks of a message, the view it
opened), so rendering and handling are exercised together.

Used by `mini-mentorship demo` and, through tests/slack/harness.py, by the tests.
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

from fakes.slack_api import FakeSlack


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature headers for `body`."""
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
    """Every text in some blocks, joined (for `in` checks)."""
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


class SlackDriver:
    """Sends what Slack would send to the app at `base_url`, as the people of `fake`'s workspace."""

    def __init__(
        self, fake: FakeSlack, *, secret: str, team: str = "T1", base_url: str = "", first_id: int = 1
    ) -> None:
        self.fake = fake
        self.secret = secret
        self.team = team
        self.base_url = base_url
        self._session: aiohttp.ClientSession | None = None
        # Trigger and response_url ids; a caller that also sends its own payloads starts these
        # elsewhere (the app drops an interaction whose trigger id it has seen).
        self._ids = itertools.count(first_id)

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # Raw HTTP --------------------------------------------------------------------------------

    async def post(self, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Answer:
        assert self._session is not None, "call open() first"
        all_headers = {
            "Content-Type": content_type,
            **(sign(body, self.secret) if headers is None else headers),
        }
        async with self._session.post(
            f"{self.base_url}/slack/events", data=body, headers=all_headers
        ) as resp:
            return Answer(resp.status, await resp.text())

    async def get(self, path: str) -> Answer:
        assert self._session is not None, "call open() first"
        async with self._session.get(f"{self.base_url}{path}") as resp:
            return Answer(resp.status, await resp.text())

    async def interact(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        answer = await self.post(body, "application/x-www-form-urlencoded", headers)
        answer.sent = payload
        return answer

    # What Slack sends ------------------------------------------------------------------------

    def _user(self, user: str) -> dict[str, str]:
        return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": self.team}

    def command_body(self, user: str, text: str = "", channel: str = "CGENERAL") -> dict[str, str]:
        n = next(self._ids)
        return {
            "token": "legacy-verification-token",
            "team_id": self.team,
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

    async def command(self, user: str, text: str = "", channel: str = "CGENERAL") -> Answer:
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
            "team": {"id": self.team, "domain": "fake"},
            "user": self._user(user),
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
            payload["view"] = {"id": "VHOME", "type": "home", "team_id": self.team, "blocks": []}
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

    async def click(self, user: str, button: dict[str, Any], *, channel: str, **kwargs: Any) -> Answer:
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
            "team": {"id": self.team, "domain": "fake"},
            "user": self._user(user),
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
                "team_id": self.team,
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

    def replies(self, answer: Answer) -> list[dict[str, Any]]:
        """What the app sent back through the response_url of one interaction."""
        assert answer.sent is not None
        key = str(answer.sent["response_url"]).rsplit("/", 1)[1]
        return [e for e in self.fake.ephemerals if e.get("key") == key]

    def reply_text(self, answer: Answer) -> str:
        return "\n".join(
            str(e.get("text") or "") + "\n" + block_text(e.get("blocks")) for e in self.replies(answer)
        )
