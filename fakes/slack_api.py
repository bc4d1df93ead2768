"""A faithful fake of the Slack Web API for tests.

``FakeSlack`` runs a small aiohttp server on ``127.0.0.1`` (ephemeral port) that the
*real* ``slack_sdk`` clients talk to, so tests exercise the actual HTTP, JSON and
retry behaviour of the SDK instead of mocks::

    async with FakeSlack() as fake:
        fake.add_user("U1", name="ada", tz="Europe/London")
        fake.add_channel("C1", members=["U1", "UBOT"])
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert fake.messages["C1"][0]["text"] == "hi"
        assert fake.validation_errors == []

What it gives a test:

* World state to set up: ``add_user`` and ``add_channel``. The bot user
  (``bot_user_id``, default ``UBOT``) exists from the start and is a bot.
  ``conversations.open`` with several users opens a group DM (one stable ``G…`` id per set
  of people); ``missing_scopes = {"mpim:write"}`` makes that answer ``missing_scope`` (an old
  install), and a deactivated user (``deleted=True``) makes it answer ``user_disabled``.
* What the app did: ``calls`` (every request, in order, also failed ones),
  ``messages`` (per channel id, incl. DM ids ``"D" + user_id``), ``views``,
  ``home_tabs``, ``ephemerals`` (``chat.postEphemeral`` and ``response_url``
  posts), ``files`` (completed uploads) and ``raw_mentions()``.
* Validation like Slack's: missing arguments, bad tokens and Block Kit limits
  are answered with Slack's error shapes (``invalid_arguments`` /
  ``invalid_blocks`` ...) *and* appended to ``validation_errors``, so a test
  can simply ``assert fake.validation_errors == []``.  Runtime errors the app
  must handle anyway (``channel_not_found``, ``message_not_found``,
  ``user_not_found``, ``cannot_dm_bot`` ...) are *not* validation errors; find
  them in ``calls`` (``ok=False``).
* Fault injection: ``fail_next`` (scripted 429 / 5xx / Slack errors / slow
  answers), ``rate_limit`` (a real rolling-window limiter per channel) and
  ``fail_randomly`` (seeded chaos).

Besides ``/api/<method>`` the server has two non-API endpoints, recorded in
``calls`` under pseudo method names: ``"upload"`` (the URL handed out by
``files.getUploadURLExternal``) and ``"response_url"`` (see ``response_url()``).
Faults with ``method=None`` apply to them as well.

How slack_sdk sends arguments (the fake accepts all of these): many methods
(``auth.test``, ``conversations.open``, ``files.getUploadURLExternal``,
``files.completeUploadExternal``...) are POSTs whose arguments travel in the
*query string* with an empty body, booleans as ``"1"``/``"0"``; ``chat.*`` and
``views.*`` send a JSON body; ``api_call(data=...)`` sends a form body.  The
token always arrives as ``Authorization: Bearer``; like Slack, a token inside a
JSON body is not honoured.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, WSMsgType, web

__all__ = ["Call", "FakeSlack"]

JSONDict = dict[str, Any]

# Arguments that slack_sdk (or a form post) may send as JSON-encoded strings.
_JSON_ARGS = ("blocks", "attachments", "view", "files", "metadata")

_TS_START = 1_700_000_000_000_100  # microseconds; first ts is "1700000000.000100"

_MENTION_RE = re.compile(
    r"<!(?:channel|here|everyone)(?:\|[^>]*)?>"
    r"|<!subteam\^[A-Za-z0-9]+(?:\|[^>]*)?>"
    r"|<@[UW][A-Za-z0-9]+(?:\|[^>]*)?>"
)
# With link_names=true Slack turns a bare "@here" etc. into a real ping.
_LINK_NAMES_RE = re.compile(r"(?<![\w<!&@])@(?:channel|here|everyone)\b")


@dataclass
class Call:
    """One request the app made to the fake (also failed and faulted ones)."""

    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    at: float  # time.monotonic() when the request arrived


@dataclass
class _Fault:
    method: str | None
    error: str | None
    status: int
    retry_after: int | None
    delay: float | None
    remaining: int


@dataclass
class _RandomFaults:
    rng: random.Random
    fraction: float
    methods: set[str] | None
    max_delay: float


class _SlackError(Exception):
    """Raised by a method handler to answer ``{"ok": false, "error": ...}``.

    ``problems`` are validation failures: they are appended to
    ``FakeSlack.validation_errors``.  Plain runtime errors have none.
    """

    def __init__(
        self, error: str, *, problems: list[str] | None = None, extra: JSONDict | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.problems = problems or []
        self.extra = extra or {}


def _invalid_arguments(problems: list[str]) -> _SlackError:
    return _SlackError(
        "invalid_arguments",
        problems=problems,
        extra={"response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]}},
    )


def _invalid_blocks(problems: list[str]) -> _SlackError:
    return _SlackError(
        "invalid_blocks",
        problems=problems,
        extra={"errors": problems, "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]}},
    )


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


# ---------------------------------------------------------------------------
# Block Kit validation
# ---------------------------------------------------------------------------

_BLOCK_TYPES = {"section", "divider", "header", "context", "actions", "input", "image", "rich_text"}
_SELECTS = {"static_select", "external_select", "users_select", "conversations_select", "channels_select"}
_MULTI_SELECTS = {"multi_" + s for s in _SELECTS}
_ELEMENT_TYPES = (
    {
        "button",
        "overflow",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "plain_text_input",
        "radio_buttons",
        "checkboxes",
        "number_input",
        "url_text_input",
        "email_text_input",
        "rich_text_input",
        "image",
    }
    | _SELECTS
    | _MULTI_SELECTS
)
# Which elements each container accepts (per the Block Kit reference).
_ACTIONS_ELEMENTS = (
    {
        "button",
        "overflow",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "radio_buttons",
        "checkboxes",
    }
    | _SELECTS
    | _MULTI_SELECTS
)
_SECTION_ACCESSORIES = (
    {
        "button",
        "overflow",
        "datepicker",
        "timepicker",
        "radio_buttons",
        "checkboxes",
        "image",
    }
    | _SELECTS
    | _MULTI_SELECTS
)
_INPUT_ELEMENTS = (
    {
        "plain_text_input",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "radio_buttons",
        "checkboxes",
        "number_input",
        "url_text_input",
        "email_text_input",
        "rich_text_input",
    }
    | _SELECTS
    | _MULTI_SELECTS
)

_MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}


class _BlockValidator:
    """Collects Block Kit problems as Slack words them: ``<what> [json-pointer:/path]``."""

    def __init__(self, surface: str, images: Mapping[str, str] | None = None) -> None:
        self.surface = surface  # "message", "modal" or "home"
        self.problems: list[str] = []
        # Uploaded files a `slack_file` may name: id -> image type ("png", ...) or "" if not an image.
        self.images: Mapping[str, str] = images or {}

    def _err(self, ptr: str, msg: str) -> None:
        self.problems.append(f"{msg} [json-pointer:{ptr}]")

    def _str(self, obj: JSONDict, key: str, ptr: str, *, max_len: int, required: bool = False) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self._err(ptr, f"missing required field: {key}")
            return
        if not isinstance(value, str):
            self._err(f"{ptr}/{key}", "must be a string")
        elif len(value) > max_len:
            self._err(f"{ptr}/{key}", f"must be less than {max_len + 1} characters")

    def text(self, obj: Any, ptr: str, *, max_len: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self._err(ptr, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self._err(f"{ptr}/type", "must be one of plain_text, mrkdwn")
            return
        if plain_only and kind != "plain_text":
            self._err(f"{ptr}/type", "must be plain_text")
        if "emoji" in obj and kind != "plain_text":
            self._err(f"{ptr}/emoji", "emoji is only allowed on plain_text")
        if "verbatim" in obj and kind != "mrkdwn":
            self._err(f"{ptr}/verbatim", "verbatim is only allowed on mrkdwn")
        text = obj.get("text")
        if not isinstance(text, str):
            self._err(f"{ptr}/text", "must be a string")
        elif not text:
            self._err(f"{ptr}/text", "must be more than 0 characters")
        elif len(text) > max_len:
            self._err(f"{ptr}/text", f"must be less than {max_len + 1} characters")

    def _opt_text(self, obj: JSONDict, key: str, ptr: str, *, max_len: int, plain_only: bool = True) -> None:
        if key in obj:
            self.text(obj[key], f"{ptr}/{key}", max_len=max_len, plain_only=plain_only)

    def _list(self, obj: JSONDict, key: str, ptr: str, *, max_items: int, min_items: int = 1) -> list[Any]:
        value = obj.get(key)
        if not isinstance(value, list):
            self._err(ptr, f"missing required field: {key}")
            return []
        if len(value) > max_items:
            self._err(f"{ptr}/{key}", f"no more than {max_items} items allowed")
        if len(value) < min_items:
            self._err(f"{ptr}/{key}", f"must provide at least {min_items} items")
        return value

    def blocks(self, blocks: Any, ptr: str) -> None:
        if not isinstance(blocks, list):
            self._err(ptr, "must be an array")
            return
        limit = _MAX_BLOCKS[self.surface]
        if len(blocks) > limit:
            self._err(ptr, f"no more than {limit} items allowed")
        seen_block_ids: set[str] = set()
        for i, block in enumerate(blocks):
            bptr = f"{ptr}/{i}"
            if not isinstance(block, dict):
                self._err(bptr, "must be an object")
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self._str(block, "block_id", bptr, max_len=255)
                if isinstance(block_id, str):
                    if block_id in seen_block_ids:
                        self._err(f"{bptr}/block_id", f"duplicate block_id {block_id!r}")
                    seen_block_ids.add(block_id)
            self.block(block, bptr)

    def block(self, block: JSONDict, ptr: str) -> None:
        kind = block.get("type")
        if kind not in _BLOCK_TYPES:
            self._err(f"{ptr}/type", f"unknown block type {kind!r}")
            return
        # Slack wants action_id unique among the elements of one block.
        action_ids: set[str] = set()
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self._err(ptr, "must provide either text or fields")
            self._opt_text(block, "text", ptr, max_len=3000, plain_only=False)
            if "fields" in block:
                for j, f in enumerate(self._list(block, "fields", ptr, max_items=10)):
                    self.text(f, f"{ptr}/fields/{j}", max_len=2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{ptr}/accessory", _SECTION_ACCESSORIES, action_ids)
        elif kind == "header":
            if "text" not in block:
                self._err(ptr, "missing required field: text")
            self._opt_text(block, "text", ptr, max_len=150)
        elif kind == "context":
            for j, el in enumerate(self._list(block, "elements", ptr, max_items=10)):
                eptr = f"{ptr}/elements/{j}"
                if isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, eptr, {"image"}, action_ids)
                else:
                    self.text(el, eptr, max_len=3000)
        elif kind == "actions":
            for j, el in enumerate(self._list(block, "elements", ptr, max_items=25)):
                self.element(el, f"{ptr}/elements/{j}", _ACTIONS_ELEMENTS, action_ids)
        elif kind == "input":
            if self.surface == "message":
                self._err(f"{ptr}/type", "input blocks are only allowed in modals and home tabs")
            if "label" not in block:
                self._err(ptr, "missing required field: label")
            self._opt_text(block, "label", ptr, max_len=2000)
            self._opt_text(block, "hint", ptr, max_len=2000)
            if "element" not in block:
                self._err(ptr, "missing required field: element")
            else:
                self.element(block["element"], f"{ptr}/element", _INPUT_ELEMENTS, action_ids)
        elif kind == "image":
            self._image(block, ptr)
            self._opt_text(block, "title", ptr, max_len=2000)
        elif kind == "rich_text":
            self._list(block, "elements", ptr, max_items=10_000, min_items=0)

    def _image(self, obj: JSONDict, ptr: str) -> None:
        if "image_url" not in obj and "slack_file" not in obj:
            self._err(ptr, "missing required field: image_url")
        if "image_url" in obj and "slack_file" in obj:
            self._err(ptr, "must provide either image_url or slack_file, not both")
        self._str(obj, "image_url", ptr, max_len=3000)
        self._str(obj, "alt_text", ptr, max_len=2000, required=True)
        if "slack_file" in obj:
            self._slack_file(obj["slack_file"], f"{ptr}/slack_file")

    def _slack_file(self, obj: Any, ptr: str) -> None:
        """A Slack file object: exactly one of `url` / `id`, naming a png, jpg, jpeg or gif file
        the poster can see (here: one the bot uploaded)."""
        if not isinstance(obj, dict) or ("url" in obj) == ("id" in obj):
            self._err(ptr, "must be a slack file object with either url or id")
            return
        file_id = obj.get("id")
        if file_id is None:
            url = obj.get("url")
            file_id = next((f for f in self.images if isinstance(url, str) and f"/{f}" in url), None)
        kind = self.images.get(file_id) if isinstance(file_id, str) else None
        if kind is None:
            self._err(ptr, "invalid slack file: not found")
        elif kind not in ("png", "jpg", "jpeg", "gif"):
            self._err(ptr, "invalid slack file: only png, jpg, jpeg and gif images are supported")

    def element(self, el: Any, ptr: str, allowed: set[str], action_ids: set[str]) -> None:
        if not isinstance(el, dict):
            self._err(ptr, "must be an element object")
            return
        kind = el.get("type")
        if kind not in _ELEMENT_TYPES:
            self._err(f"{ptr}/type", f"unknown element type {kind!r}")
            return
        if kind not in allowed:
            self._err(f"{ptr}/type", f"element type {kind!r} is not allowed here")
        if kind == "image":
            self._image(el, ptr)
            return
        action_id = el.get("action_id")
        if action_id is not None:
            self._str(el, "action_id", ptr, max_len=255)
            if isinstance(action_id, str):
                if action_id in action_ids:
                    self._err(f"{ptr}/action_id", f"duplicate action_id {action_id!r} in block")
                action_ids.add(action_id)
        self._opt_text(el, "placeholder", ptr, max_len=150)
        if "confirm" in el:
            self._confirm(el["confirm"], f"{ptr}/confirm")

        if kind == "button":
            if "text" not in el:
                self._err(ptr, "missing required field: text")
            self._opt_text(el, "text", ptr, max_len=75)
            self._str(el, "value", ptr, max_len=2000)
            self._str(el, "url", ptr, max_len=3000)
            if "style" in el and el["style"] not in ("primary", "danger"):
                self._err(f"{ptr}/style", "must be one of primary, danger")
        elif kind in ("static_select", "multi_static_select"):
            self._select_options(el, ptr)
        elif kind in ("external_select", "multi_external_select"):
            for key in ("initial_option",):
                if key in el:
                    self._option(el[key], f"{ptr}/{key}", mrkdwn_ok=False)
        elif kind == "overflow":
            for j, opt in enumerate(self._list(el, "options", ptr, max_items=5)):
                self._option(opt, f"{ptr}/options/{j}", mrkdwn_ok=False)
        elif kind in ("radio_buttons", "checkboxes"):
            options = self._list(el, "options", ptr, max_items=10)
            for j, opt in enumerate(options):
                self._option(opt, f"{ptr}/options/{j}", mrkdwn_ok=True)
            self._initial_options(el, ptr, options)
        elif kind == "datepicker" and "initial_date" in el:
            try:
                date.fromisoformat(str(el["initial_date"]))
            except ValueError:
                self._err(f"{ptr}/initial_date", "must be a date in the format YYYY-MM-DD")
        elif kind == "timepicker" and "initial_time" in el:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(el["initial_time"])):
                self._err(f"{ptr}/initial_time", "must be a time in the format HH:mm")
        elif kind == "datetimepicker" and "initial_date_time" in el:
            if not isinstance(el["initial_date_time"], int):
                self._err(f"{ptr}/initial_date_time", "must be a UNIX timestamp integer")
        elif kind == "plain_text_input":
            self._length_bound(el, "min_length", ptr, low=0)
            self._length_bound(el, "max_length", ptr, low=1)
            lo, hi = el.get("min_length"), el.get("max_length")
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                self._err(f"{ptr}/min_length", "must be less than or equal to max_length")
            initial = el.get("initial_value")
            if initial is not None:
                if not isinstance(initial, str):
                    self._err(f"{ptr}/initial_value", "must be a string")
                elif isinstance(hi, int) and len(initial) > hi:
                    self._err(f"{ptr}/initial_value", "must not be longer than max_length")
        elif kind == "number_input" and not isinstance(el.get("is_decimal_allowed"), bool):
            self._err(ptr, "missing required field: is_decimal_allowed")

    def _length_bound(self, el: JSONDict, key: str, ptr: str, *, low: int) -> None:
        if key not in el:
            return
        value = el[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 3000:
            self._err(f"{ptr}/{key}", f"must be an integer between {low} and 3000")

    def _select_options(self, el: JSONDict, ptr: str) -> None:
        has_options, has_groups = "options" in el, "option_groups" in el
        if has_options == has_groups:
            self._err(ptr, "must provide exactly one of options, option_groups")
            return
        options: list[Any] = []
        if has_options:
            options = self._list(el, "options", ptr, max_items=100)
            for j, opt in enumerate(options):
                self._option(opt, f"{ptr}/options/{j}", mrkdwn_ok=False)
        else:
            for g, group in enumerate(self._list(el, "option_groups", ptr, max_items=100)):
                gptr = f"{ptr}/option_groups/{g}"
                if not isinstance(group, dict):
                    self._err(gptr, "must be an option group object")
                    continue
                if "label" not in group:
                    self._err(gptr, "missing required field: label")
                self._opt_text(group, "label", gptr, max_len=75)
                group_options = self._list(group, "options", gptr, max_items=100)
                for j, opt in enumerate(group_options):
                    self._option(opt, f"{gptr}/options/{j}", mrkdwn_ok=False)
                options.extend(group_options)
        self._initial_options(el, ptr, options)

    def _initial_options(self, el: JSONDict, ptr: str, options: list[Any]) -> None:
        # Slack rejects an initial option that is not one of the options.
        def key(opt: Any) -> tuple[Any, Any]:
            if not isinstance(opt, dict):
                return (None, None)
            text = opt.get("text")
            return (opt.get("value"), text.get("text") if isinstance(text, dict) else None)

        known = {key(o) for o in options}
        initial: list[tuple[str, Any]] = []
        if "initial_option" in el:
            initial.append((f"{ptr}/initial_option", el["initial_option"]))
        if "initial_options" in el:
            values = el["initial_options"]
            if isinstance(values, list):
                initial.extend((f"{ptr}/initial_options/{j}", v) for j, v in enumerate(values))
            else:
                self._err(f"{ptr}/initial_options", "must be an array")
        for iptr, opt in initial:
            if key(opt) not in known:
                self._err(iptr, "must match one of the provided options")

    def _option(self, opt: Any, ptr: str, *, mrkdwn_ok: bool) -> None:
        if not isinstance(opt, dict):
            self._err(ptr, "must be an option object")
            return
        if "text" not in opt:
            self._err(ptr, "missing required field: text")
        self._opt_text(opt, "text", ptr, max_len=75, plain_only=not mrkdwn_ok)
        self._str(opt, "value", ptr, max_len=150, required=True)
        self._opt_text(opt, "description", ptr, max_len=75, plain_only=not mrkdwn_ok)
        self._str(opt, "url", ptr, max_len=3000)

    def _confirm(self, confirm: Any, ptr: str) -> None:
        if not isinstance(confirm, dict):
            self._err(ptr, "must be a confirmation dialog object")
            return
        for key, max_len in (("title", 100), ("confirm", 30), ("deny", 30)):
            if key not in confirm:
                self._err(ptr, f"missing required field: {key}")
            self._opt_text(confirm, key, ptr, max_len=max_len)
        if "text" not in confirm:
            self._err(ptr, "missing required field: text")
        self._opt_text(confirm, "text", ptr, max_len=300, plain_only=False)

    def view(self, view: Any, ptr: str) -> None:
        if not isinstance(view, dict):
            self._err(ptr, "must be a view object")
            return
        if view.get("type") != self.surface:
            self._err(f"{ptr}/type", f"must be {self.surface!r}")
        if self.surface == "modal":
            if "title" not in view:
                self._err(ptr, "missing required field: title")
            for key in ("title", "submit", "close"):
                self._opt_text(view, key, ptr, max_len=24)
            blocks = view.get("blocks")
            has_inputs = isinstance(blocks, list) and any(
                isinstance(b, dict) and b.get("type") == "input" for b in blocks
            )
            if has_inputs and "submit" not in view:
                self._err(ptr, "missing required field: submit (a modal with input blocks needs one)")
        self._str(view, "private_metadata", ptr, max_len=3000)
        self._str(view, "callback_id", ptr, max_len=255)
        self._str(view, "external_id", ptr, max_len=255)
        if "blocks" not in view:
            self._err(ptr, "missing required field: blocks")
        else:
            self.blocks(view["blocks"], f"{ptr}/blocks")


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------

Handler = Callable[[dict[str, Any]], JSONDict]


class FakeSlack:
    """The fake Slack Web API server; see the module docstring."""

    def __init__(self, *, bot_user_id: str = "UBOT", team_id: str = "T1") -> None:
        # Tokens Slack no longer accepts (revoked, or from another app): every call answers invalid_auth.
        self.revoked_tokens: set[str] = set()
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.bot_id = "B" + bot_user_id.removeprefix("U")

        self.calls: list[Call] = []
        self.validation_errors: list[str] = []
        self.users: dict[str, JSONDict] = {}
        self.channels: dict[str, JSONDict] = {}
        self.messages: dict[str, list[JSONDict]] = {}
        self.views: dict[str, JSONDict] = {}
        self.home_tabs: dict[str, JSONDict] = {}
        self.ephemerals: list[JSONDict] = []
        self.files: list[JSONDict] = []
        # Scopes the install lacks (an old install from before the manifest asked for them):
        # the methods needing them answer ``missing_scope``. Only ``mpim:write`` is modelled.
        self.missing_scopes: set[str] = set()

        self._faults: list[_Fault] = []
        self._random: _RandomFaults | None = None
        self._rate_limits: dict[str, float] = {}
        self._rate_windows: dict[tuple[str, str], deque[float]] = {}
        self._ts_counter = _TS_START
        self._id_counter = 0
        self._external_ids: dict[str, str] = {}
        self._pending_uploads: dict[str, JSONDict] = {}
        self._runner: web.AppRunner | None = None
        self._origin: str | None = None
        self._stopping = asyncio.Event()
        # Socket Mode: connected app websockets, and acks awaited by envelope id.
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self._socket_acks: dict[str, asyncio.Future[JSONDict]] = {}

        self._handlers: dict[str, Handler] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.members": self._conversations_members,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_open,  # same arguments and checks as views.open
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }
        self.add_user(bot_user_id, name="bot", is_bot=True)

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        # Uploads can be larger than aiohttp's 1 MiB default body limit.
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response_url/{key}", self._handle_response_url)
        app.router.add_get("/socket-mode/{n}", self._handle_socket)
        self._stopping = asyncio.Event()  # fresh: a restart may run on another event loop
        self._socket_ready = asyncio.Event()
        # Short shutdown_timeout: stop() must not wait on slow (delayed) handlers.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._origin = f"http://{host}:{port}"

    async def stop(self) -> None:
        # Wake handlers sleeping in an injected delay so shutdown is instant.
        self._stopping.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Base URL for ``AsyncWebClient(base_url=...)``, e.g. ``http://127.0.0.1:PORT/api/``."""
        return f"{self._require_origin()}/api/"

    def _require_origin(self) -> str:
        if self._origin is None:
            raise RuntimeError(
                "FakeSlack is not started; use `await fake.start()` or `async with FakeSlack()`"
            )
        return self._origin

    # -- world state ---------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        tz: str = "UTC",
        is_admin: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        real_name: str | None = None,
        display_name: str | None = None,
    ) -> None:
        """Add (or replace) a workspace member. ``name`` defaults to the lower-cased id."""
        name = name or user_id.lower()
        zone = ZoneInfo(tz)  # raises for an unknown zone: a broken test setup
        now = datetime.now(zone)
        offset = now.utcoffset()
        real = real_name if real_name is not None else name.replace(".", " ").title()
        display = display_name if display_name is not None else name
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real,
            "deleted": deleted,
            "tz": tz,
            "tz_label": now.tzname() or tz,
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "is_admin": is_admin,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "profile": {
                "display_name": display,
                "display_name_normalized": display,
                "real_name": real,
                "real_name_normalized": real,
            },
        }

    def add_channel(
        self, channel_id: str, *, members: list[str], name: str | None = None, is_private: bool = False
    ) -> None:
        """Add (or replace) a channel; ``members`` are user ids (add the bot id if it should be in it)."""
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name or channel_id.lower(),
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": is_private,
            "is_archived": False,
            "members": list(members),
        }
        self.messages.setdefault(channel_id, [])

    # -- fault injection -----------------------------------------------------

    def fail_next(
        self,
        method: str | None,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        delay: float | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (any method if None) misbehave.

        * ``status=429`` -> HTTP 429, ``Retry-After: retry_after or 1``, body
          ``{"ok": false, "error": error or "ratelimited"}``.
        * ``status>=500`` -> that status with a text body (not JSON).
        * ``error`` with status 200 -> ``{"ok": false, "error": error}``.
        * ``delay`` -> sleep first; with nothing else set, the call then succeeds
          normally (like a slow Slack: it still acts even if the client gave up).
        * nothing set at all -> ``{"ok": false, "error": "internal_error"}``.

        The recorded ``Call.error`` is the Slack error, or ``"http_<status>"``
        for non-JSON answers.

        Scripted faults are consumed first-in, first-out.
        """
        if error is None and status == 200 and delay is None:
            error = "internal_error"
        self._faults.append(_Fault(method, error, status, retry_after, delay, times))

    def rate_limit(self, method: str, *, per_channel_per_second: float) -> None:
        """Allow at most ``per_channel_per_second`` calls of ``method`` per rolling second per ``channel``."""
        if per_channel_per_second <= 0:
            raise ValueError("per_channel_per_second must be positive")
        self._rate_limits[method] = per_channel_per_second

    def fail_randomly(
        self, fraction: float, *, seed: int = 0, methods: set[str] | None = None, max_delay: float = 0.2
    ) -> None:
        """Fail about ``fraction`` of calls (of ``methods``, or all) with 429 / 500 / a delay.

        Deterministic for a seed: the n-th matching call always gets the same
        fate, whatever happened to earlier calls.  Delays last up to
        ``max_delay`` seconds and the call then succeeds.
        """
        self._random = _RandomFaults(random.Random(seed), fraction, methods, max_delay)

    def clear_faults(self) -> None:
        """Drop scripted, random and rate-limit faults."""
        self._faults.clear()
        self._random = None
        self._rate_limits.clear()
        self._rate_windows.clear()

    def _next_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method is None or fault.method == method:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        chaos = self._random
        if chaos is None or (chaos.methods is not None and method not in chaos.methods):
            return None
        # Always draw three numbers so one call's fate never shifts the next one's.
        hit, kind, scale = chaos.rng.random(), chaos.rng.randrange(3), chaos.rng.random()
        if hit >= chaos.fraction:
            return None
        if kind == 0:
            return _Fault(method, "ratelimited", 429, 1, None, 1)
        if kind == 1:
            return _Fault(method, None, 500, None, None, 1)
        return _Fault(method, None, 200, None, chaos.max_delay * (0.5 + scale / 2), 1)

    async def _apply_fault(self, fault: _Fault | None) -> tuple[web.Response, str] | None:
        """Sleep for an injected delay; return the faulty response, or None to continue normally."""
        if fault is None:
            return None
        if fault.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), fault.delay)
        if fault.status == 429:
            error = fault.error or "ratelimited"
            headers = {"Retry-After": str(fault.retry_after or 1)}
            return web.json_response({"ok": False, "error": error}, status=429, headers=headers), error
        if fault.status >= 500:
            text = f"{fault.status} Server Error (injected by FakeSlack)"
            return web.Response(status=fault.status, text=text), f"http_{fault.status}"
        if fault.status != 200:
            error = fault.error or f"http_{fault.status}"
            return web.json_response({"ok": False, "error": error}, status=fault.status), error
        if fault.error:
            return web.json_response({"ok": False, "error": fault.error}), fault.error
        return None

    def _check_rate_limit(self, method: str, args: dict[str, Any]) -> int | None:
        """Return a Retry-After (seconds) if this call exceeds the method's limit, else count it."""
        per_second = self._rate_limits.get(method)
        if per_second is None:
            return None
        # Capacity per window; a rate below 1/s becomes one call per 1/rate seconds.
        capacity = max(1, math.floor(per_second))
        window = capacity / per_second
        channel = str(args.get("channel") or args.get("channel_id") or "")
        seen = self._rate_windows.setdefault((method, channel), deque())
        now = time.monotonic()
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= capacity:
            return max(1, math.ceil(seen[0] + window - now))
        seen.append(now)
        return None

    # -- observations --------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def raw_mentions(self) -> list[str]:
        """Every unescaped ``<!channel>``/``<!here>``/``<!everyone>``/``<!subteam^…>``/``<@U…>`` sent.

        Scans all string values of all recorded calls' arguments, in call order.
        For calls with ``link_names`` set it also reports bare ``@channel``,
        ``@here`` and ``@everyone``, which Slack then turns into real pings.
        """
        found: list[str] = []
        for call in self.calls:
            link_names = _truthy(call.args.get("link_names", False))
            for text in _strings(call.args):
                found.extend(_MENTION_RE.findall(text))
                if link_names:
                    found.extend(_LINK_NAMES_RE.findall(text))
        return found

    def response_url(self, key: str = "") -> str:
        """A URL on this server that behaves like an interaction's ``response_url``."""
        if not key:
            key = f"r{self._next_id()}"
        return f"{self._require_origin()}/response_url/{quote(key, safe='')}"

    # -- HTTP plumbing -------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = Call(method, {}, ok=False, error=None, at=time.monotonic())
        self.calls.append(call)
        try:
            call.args, token = await self._read_args(request)
        except _SlackError as exc:
            return self._error_response(call, exc)

        faulty = await self._apply_fault(self._next_fault(method))
        if faulty is not None:
            call.error = faulty[1]
            return faulty[0]
        if self._stopping.is_set():
            return web.Response(status=503, text="shutting down")

        handler = self._handlers.get(method)
        try:
            if handler is None:
                raise _SlackError("unknown_method", problems=[f"unknown API method {method!r}"])
            self._check_token(token, app_level=method == "apps.connections.open")
            retry_after = self._check_rate_limit(method, call.args)
            if retry_after is not None:
                call.error = "ratelimited"
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(retry_after)},
                )
            body = handler(call.args)
        except _SlackError as exc:
            return self._error_response(call, exc)
        call.ok = True
        return web.json_response({"ok": True, **body})

    def _error_response(self, call: Call, exc: _SlackError) -> web.Response:
        call.error = exc.error
        self.validation_errors.extend(f"{call.method}: {p}" for p in exc.problems)
        return web.json_response({"ok": False, "error": exc.error, **exc.extra})

    async def _read_args(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        # slack_sdk puts many POST arguments in the query string, so merge everything.
        args: dict[str, Any] = {k: v for k, v in request.query.items()}
        body_token: str | None = None
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _SlackError("invalid_json", problems=["request body is not valid JSON"]) from None
                if not isinstance(body, dict):
                    raise _SlackError("invalid_json", problems=["JSON body must be an object"])
                args.update(body)
                args.pop("token", None)  # Slack ignores a token inside a JSON body
            else:
                form = await request.post()
                for key, value in form.items():
                    args[key] = value.file.read() if isinstance(value, web.FileField) else value
        body_token = args.pop("token", None)
        for key in _JSON_ARGS:
            if isinstance(args.get(key), str):
                # Undecodable values stay strings; the method handler reports them.
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else body_token
        return args, (token if isinstance(token, str) else None)

    def _check_token(self, token: str | None, *, app_level: bool = False) -> None:
        if not token:
            raise _SlackError("not_authed", problems=["no token (expected an Authorization: Bearer header)"])
        # Socket Mode wants the app-level token (xapp-…); every other method a bot/user token.
        expected = "xapp-" if app_level else "xox"
        if token in self.revoked_tokens:
            raise _SlackError("invalid_auth", problems=["this token was revoked (fake: revoked_tokens)"])
        if not token.startswith(expected):
            raise _SlackError("invalid_auth", problems=[f"token {token[:8]!r}... is not a {expected}… token"])

    # -- Socket Mode -----------------------------------------------------------

    def _apps_connections_open(self, args: dict[str, Any]) -> JSONDict:
        assert self._origin is not None
        return {"url": self._origin.replace("http://", "ws://", 1) + f"/socket-mode/{self._next_id()}"}

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        """One Socket Mode connection: hello, then envelopes out and acknowledgements back."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A1"},
            }
        )
        self._socket_ready.set()
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    ack = json.loads(frame.data)
                    waiter = self._socket_acks.pop(str(ack.get("envelope_id")), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(ack)
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._socket_ready.clear()
        return ws

    async def socket_send(self, kind: str, payload: JSONDict, *, wait_seconds: float = 10.0) -> JSONDict:
        """Deliver a `slash_commands`, `interactive` or `events_api` envelope to the connected
        app, as Slack does in Socket Mode; returns the app's acknowledgement (with any payload)."""
        await asyncio.wait_for(self._socket_ready.wait(), wait_seconds)
        envelope_id = f"env-{self._next_id()}"
        waiter: asyncio.Future[JSONDict] = asyncio.get_running_loop().create_future()
        self._socket_acks[envelope_id] = waiter
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return await asyncio.wait_for(waiter, wait_seconds)

    async def wait_for_socket(self, wait_seconds: float = 10.0) -> None:
        await asyncio.wait_for(self._socket_ready.wait(), wait_seconds)

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        call = Call("upload", {"file_id": file_id}, ok=False, error=None, at=time.monotonic())
        self.calls.append(call)
        faulty = await self._apply_fault(self._next_fault("upload"))
        if faulty is not None:
            call.error = faulty[1]
            return faulty[0]
        pending = self._pending_uploads.get(file_id)
        if pending is None:
            call.error = "file_not_found"
            return web.Response(status=404, text="file_not_found")
        content = await _read_upload_body(request)
        call.args.update({"filename": pending["filename"], "length": len(content)})
        if len(content) != pending["length"]:
            self.validation_errors.append(
                f"upload: {file_id} got {len(content)} bytes, "
                f"files.getUploadURLExternal announced {pending['length']}"
            )
        pending["content"] = content
        call.ok = True
        # Slack answers with text/plain, which slack_sdk reads as text.
        return web.Response(text=f"OK - {len(content)}")

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        call = Call("response_url", {}, ok=False, error=None, at=time.monotonic())
        self.calls.append(call)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            call.error = "invalid_payload"
            self.validation_errors.append("response_url: body must be a JSON object")
            return web.Response(status=400, text="invalid_payload")
        call.args = payload
        faulty = await self._apply_fault(self._next_fault("response_url"))
        if faulty is not None:
            call.error = faulty[1]
            return faulty[0]
        try:
            if not (payload.get("text") or payload.get("blocks") or _truthy(payload.get("delete_original"))):
                raise _SlackError("no_text", problems=["response_url post needs text or blocks"])
            self._validate_message(payload)
        except _SlackError as exc:
            call.error = exc.error
            self.validation_errors.extend(f"response_url: {p}" for p in exc.problems)
            return web.Response(status=400, text=exc.error)
        self.ephemerals.append(
            {
                "source": "response_url",
                "key": key,
                "channel": None,
                "user": None,
                "text": payload.get("text"),
                "blocks": payload.get("blocks"),
                "response_type": payload.get("response_type", "ephemeral"),
                "replace_original": _truthy(payload.get("replace_original", False)),
                "delete_original": _truthy(payload.get("delete_original", False)),
                "thread_ts": payload.get("thread_ts"),
            }
        )
        call.ok = True
        return web.Response(text="ok")

    # -- helpers for handlers --------------------------------------------------

    def _next_ts(self) -> str:
        micros = self._ts_counter
        self._ts_counter += 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self) -> int:
        self._id_counter += 1
        return self._id_counter

    @staticmethod
    def _require(args: dict[str, Any], *names: str) -> None:
        missing = [n for n in names if args.get(n) in (None, "")]
        if missing:
            raise _invalid_arguments([f"missing required field: {n}" for n in missing])

    def _dm_for(self, user_id: str) -> str:
        """Open (or reuse) the bot's DM with a user; raises Slack's errors for bad users."""
        user = self.users.get(user_id)
        if user is None:
            raise _SlackError("user_not_found")
        if user["is_bot"]:
            raise _SlackError("cannot_dm_bot")
        if user["deleted"]:
            raise _SlackError("user_disabled")
        channel_id = "D" + user_id
        if channel_id not in self.channels:
            self.channels[channel_id] = {
                "id": channel_id,
                "is_channel": False,
                "is_group": False,
                "is_im": True,
                "is_mpim": False,
                "is_private": True,
                "is_archived": False,
                "user": user_id,
                "members": [user_id, self.bot_user_id],
            }
            self.messages.setdefault(channel_id, [])
        return channel_id

    def _resolve_channel(self, channel: Any) -> str:
        """A channel id as Slack would accept it: a known channel, a user id or a DM id."""
        if not isinstance(channel, str) or not channel:
            raise _SlackError("channel_not_found")
        if channel in self.channels:
            return channel
        if channel in self.users:  # posting to a user id goes to the bot's DM with them
            return self._dm_for(channel)
        if channel.startswith("D") and channel[1:] in self.users:
            return self._dm_for(channel[1:])
        raise _SlackError("channel_not_found")

    def _find_message(self, channel: str, ts: Any) -> JSONDict:
        for message in self.messages.get(channel, []):
            if message["ts"] == ts:
                return message
        raise _SlackError("message_not_found")

    def _validate_message(self, args: dict[str, Any]) -> None:
        """Shared checks for anything that renders as a message."""
        text = args.get("text")
        if text is not None and not isinstance(text, str):
            raise _invalid_arguments(["text must be a string [json-pointer:/text]"])
        if isinstance(text, str) and len(text) > 40_000:
            raise _SlackError("msg_too_long", problems=[f"text is {len(text)} characters (max 40000)"])
        validator = _BlockValidator("message", self._images())
        if "blocks" in args:
            if not isinstance(args["blocks"], list):
                raise _SlackError("invalid_blocks_format", problems=["blocks must be a JSON array"])
            validator.blocks(args["blocks"], "/blocks")
        attachments = args.get("attachments")
        if attachments is not None:
            if not isinstance(attachments, list):
                raise _SlackError("invalid_attachments", problems=["attachments must be a JSON array"])
            for i, attachment in enumerate(attachments):
                if isinstance(attachment, dict) and "blocks" in attachment:
                    validator.blocks(attachment["blocks"], f"/attachments/{i}/blocks")
        if validator.problems:
            raise _invalid_blocks(validator.problems)

    def _images(self) -> dict[str, str]:
        return {f["id"]: f["image_type"] for f in self.files}

    def _validate_view(self, view: Any, surface: str) -> JSONDict:
        if not isinstance(view, dict):
            raise _invalid_arguments(["view must be a JSON object [json-pointer:/view]"])
        validator = _BlockValidator(surface, self._images())
        validator.view(view, "/view")
        if validator.problems:
            raise _invalid_arguments(validator.problems)
        return view

    def _store_view(
        self, view: JSONDict, *, view_id: str | None = None, previous: JSONDict | None = None
    ) -> JSONDict:
        """Save a view the way Slack echoes it back (id, hash, state...)."""
        view_id = view_id or f"V{self._next_id():08d}"
        external_id = view.get("external_id") or ""
        if external_id:
            owner = self._external_ids.get(external_id)
            if owner is not None and owner != view_id:
                raise _SlackError("duplicate_external_id")
            self._external_ids[external_id] = view_id
        stored: JSONDict = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{self._next_id():08d}",
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": external_id,
            "root_view_id": previous["root_view_id"] if previous else view_id,
            "previous_view_id": previous.get("previous_view_id") if previous else None,
            "app_id": "A" + self.bot_id,
            "bot_id": self.bot_id,
        }
        self.views[view_id] = stored
        return stored

    # -- method handlers -----------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> JSONDict:
        return {
            "url": "https://fake-workspace.slack.com/",
            "team": "Fake Workspace",
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel")
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            raise _SlackError("no_text", problems=["chat.postMessage needs text, blocks or attachments"])
        self._validate_message(args)
        channel = self._resolve_channel(args["channel"])
        message: JSONDict = {
            "type": "message",
            "ts": self._next_ts(),
            "text": args.get("text") or "",
            "blocks": args.get("blocks") or [],
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "thread_ts": args.get("thread_ts"),
        }
        for key in ("attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        self.messages.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": message["ts"], "message": _without_none(message)}

    def _chat_update(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel", "ts")
        if not any(k in args for k in ("text", "blocks", "attachments")):
            raise _SlackError("no_text", problems=["chat.update needs text, blocks or attachments"])
        self._validate_message(args)
        channel = self._resolve_channel(args["channel"])
        message = self._find_message(channel, args["ts"])
        # Like Slack: fields left out keep their previous value; blocks=[] clears.
        if "text" in args:
            message["text"] = args["text"] or ""
        for key in ("blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel,
            "ts": message["ts"],
            "text": message["text"],
            "message": _without_none(message),
        }

    def _chat_delete(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel", "ts")
        channel = self._resolve_channel(args["channel"])
        message = self._find_message(channel, args["ts"])
        self.messages[channel].remove(message)
        return {"channel": channel, "ts": message["ts"]}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel", "user")
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            raise _SlackError("no_text", problems=["chat.postEphemeral needs text, blocks or attachments"])
        self._validate_message(args)
        channel = self._resolve_channel(args["channel"])
        info = self.channels[channel]
        if not info["is_im"] and args["user"] not in info["members"]:
            raise _SlackError("user_not_in_channel")
        message_ts = self._next_ts()
        self.ephemerals.append(
            {
                "source": "chat.postEphemeral",
                "key": None,
                "channel": channel,
                "user": args["user"],
                "text": args.get("text"),
                "blocks": args.get("blocks"),
                "response_type": "ephemeral",
                "replace_original": False,
                "delete_original": False,
                "thread_ts": args.get("thread_ts"),
                "message_ts": message_ts,
            }
        )
        return {"message_ts": message_ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel", "message_ts")
        channel = self._resolve_channel(args["channel"])
        message = self._find_message(channel, args["message_ts"])
        link = f"https://fake-workspace.slack.com/archives/{channel}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _conversations_open(self, args: dict[str, Any]) -> JSONDict:
        if args.get("channel"):
            channel = self._resolve_channel(args["channel"])
            return {"channel": self._channel_info(channel), "no_op": True, "already_open": True}
        users = args.get("users")
        if isinstance(users, str):
            users = [u.strip() for u in users.split(",") if u.strip()]
        if not users:
            raise _SlackError(
                "users_list_not_supplied", problems=["conversations.open needs users or channel"]
            )
        if len(users) > 8:
            raise _SlackError("too_many_users")
        if len(users) == 1:
            existed = "D" + users[0] in self.channels
            channel = self._dm_for(users[0])
        else:
            # A group DM (mpim) of these people and the bot: one stable id per set of people.
            if "mpim:write" in self.missing_scopes:
                raise _SlackError(
                    "missing_scope", extra={"needed": "mpim:write", "provided": "chat:write,im:write"}
                )
            for user in users:
                if user not in self.users:
                    raise _SlackError("user_not_found")
                if self.users[user]["is_bot"]:
                    raise _SlackError("cannot_dm_bot")
                if self.users[user]["deleted"]:
                    raise _SlackError("user_disabled")
            members = sorted({*users, self.bot_user_id})
            channel = "G" + hashlib.sha1(",".join(members).encode()).hexdigest()[:10].upper()
            existed = channel in self.channels
            if not existed:
                self.channels[channel] = {
                    "id": channel,
                    "name": "mpdm-" + "--".join(members),
                    "is_channel": False,
                    "is_group": False,
                    "is_im": False,
                    "is_mpim": True,
                    "is_private": True,
                    "is_archived": False,
                    "members": members,
                }
                self.messages.setdefault(channel, [])
        result: JSONDict = {"channel": {"id": channel}}
        if _truthy(args.get("return_im", False)):
            result["channel"] = self._channel_info(channel)
        if existed:
            result.update(no_op=True, already_open=True)
        return result

    def _channel_info(self, channel: str) -> JSONDict:
        info = {k: v for k, v in self.channels[channel].items() if k != "members"}
        info["is_member"] = self.bot_user_id in self.channels[channel]["members"]
        return info

    def _paginate(self, items: list[Any], args: dict[str, Any]) -> tuple[list[Any], JSONDict]:
        """Slack cursor pagination: opaque base64 cursors, ``next_cursor`` "" on the last page."""
        try:
            limit = int(args.get("limit") or 100)
        except (TypeError, ValueError):
            raise _invalid_arguments(["limit must be an integer"]) from None
        if not 1 <= limit <= 1000:
            raise _SlackError("invalid_limit", problems=[f"limit {limit} not in 1..1000"])
        offset = 0
        cursor = args.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor), validate=True).decode()
                if not decoded.startswith("offset:"):
                    raise ValueError(decoded)
                offset = int(decoded.removeprefix("offset:"))
            except ValueError:
                raise _SlackError(
                    "invalid_cursor", problems=[f"cursor {cursor!r} was not issued by Slack"]
                ) from None
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return page, {"next_cursor": next_cursor}

    def _conversations_members(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel")
        channel = self._resolve_channel(args["channel"])
        members, meta = self._paginate(self.channels[channel]["members"], args)
        return {"members": members, "response_metadata": meta}

    def _conversations_info(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel")
        channel = self._resolve_channel(args["channel"])
        info = self._channel_info(channel)
        if _truthy(args.get("include_num_members", False)):
            info["num_members"] = len(self.channels[channel]["members"])
        return {"channel": info}

    def _conversations_history(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "channel")
        channel = self._resolve_channel(args["channel"])
        # Newest first, top-level messages and thread parents only, like Slack.
        top = [
            _without_none(m)
            for m in reversed(self.messages.get(channel, []))
            if not m.get("thread_ts") or m["thread_ts"] == m["ts"]
        ]
        page, meta = self._paginate(top, args)
        return {"messages": page, "has_more": bool(meta["next_cursor"]), "response_metadata": meta}

    def _users_info(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "user")
        user = self.users.get(args["user"])
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": json.loads(json.dumps(user))}

    def _users_list(self, args: dict[str, Any]) -> JSONDict:
        members, meta = self._paginate(list(self.users.values()), args)
        return {"members": json.loads(json.dumps(members)), "response_metadata": meta}

    def _views_open(self, args: dict[str, Any]) -> JSONDict:
        if not (args.get("trigger_id") or args.get("interactivity_pointer")):
            raise _invalid_arguments(["missing required field: trigger_id"])
        self._require(args, "view")
        view = self._validate_view(args["view"], "modal")
        return {"view": self._store_view(view)}

    def _views_update(self, args: dict[str, Any]) -> JSONDict:
        if not (args.get("view_id") or args.get("external_id")):
            raise _invalid_arguments(["missing required field: view_id or external_id"])
        self._require(args, "view")
        view_id = args.get("view_id") or self._external_ids.get(args["external_id"])
        current = self.views.get(view_id) if view_id else None
        if current is None:
            raise _SlackError("not_found")
        view = self._validate_view(args["view"], current["type"])
        if args.get("hash") and args["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        stored = self._store_view(view, view_id=current["id"], previous=current)
        for user, home in self.home_tabs.items():
            if home["id"] == stored["id"]:
                self.home_tabs[user] = stored
        return {"view": stored}

    def _views_publish(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "user_id", "view")
        if args["user_id"] not in self.users:
            raise _SlackError("user_not_found")
        view = self._validate_view(args["view"], "home")
        current = self.home_tabs.get(args["user_id"])
        if current and args.get("hash") and args["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        stored = self._store_view(view, view_id=current["id"] if current else None)
        self.home_tabs[args["user_id"]] = stored
        return {"view": stored}

    def _files_get_upload_url(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "filename", "length")
        try:
            length = int(args["length"])
        except (TypeError, ValueError):
            raise _invalid_arguments(["length must be an integer"]) from None
        if length < 0:
            raise _invalid_arguments(["length must not be negative"])
        file_id = f"F{self._next_id():08d}"
        self._pending_uploads[file_id] = {
            "filename": args["filename"],
            "length": length,
            "alt_txt": args.get("alt_txt"),
            "snippet_type": args.get("snippet_type"),
            "content": None,
        }
        return {"upload_url": f"{self._require_origin()}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> JSONDict:
        self._require(args, "files")
        files = args["files"]
        if not isinstance(files, list) or not all(isinstance(f, dict) and f.get("id") for f in files):
            raise _invalid_arguments(['files must be a JSON array like [{"id": "F…", "title": "…"}]'])
        channels: list[str] = []
        if args.get("channel_id"):
            channels.append(self._resolve_channel(args["channel_id"]))
        if args.get("channels"):
            channels.extend(self._resolve_channel(c.strip()) for c in str(args["channels"]).split(","))
        uploads = []
        for f in files:
            pending = self._pending_uploads.get(f["id"])
            if pending is None or pending["content"] is None:
                raise _SlackError("file_not_found")
            uploads.append((f, pending))
        results = []
        for f, pending in uploads:
            del self._pending_uploads[f["id"]]
            title = f.get("title") or pending["filename"]
            self.files.append(
                {
                    "id": f["id"],
                    "filename": pending["filename"],
                    "title": title,
                    "content": pending["content"],
                    "alt_txt": pending["alt_txt"],
                    # What the bytes are (Slack looks at them, not at the name).
                    "image_type": _image_type(pending["content"]),
                    "channel_id": args.get("channel_id"),
                    "channels": channels,
                    "initial_comment": args.get("initial_comment"),
                    "thread_ts": args.get("thread_ts"),
                }
            )
            results.append(
                {
                    "id": f["id"],
                    "name": pending["filename"],
                    "title": title,
                    "size": len(pending["content"]),
                    "permalink": f"https://fake-workspace.slack.com/files/{self.bot_user_id}/{f['id']}",
                }
            )
        # Sharing a file posts a message carrying it (and the initial comment).
        for channel in channels:
            self.messages.setdefault(channel, []).append(
                {
                    "type": "message",
                    "ts": self._next_ts(),
                    "text": args.get("initial_comment") or "",
                    "blocks": [],
                    "user": self.bot_user_id,
                    "bot_id": self.bot_id,
                    "thread_ts": args.get("thread_ts"),
                    "files": [{"id": r["id"], "name": r["name"], "title": r["title"]} for r in results],
                }
            )
        return {"files": results}


def _without_none(message: JSONDict) -> JSONDict:
    return {k: v for k, v in message.items() if v is not None}


def _strings(value: Any) -> Iterator[str]:
    """Every string inside nested dicts/lists (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _image_type(content: bytes) -> str:
    signatures = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg", b"GIF87a": "gif", b"GIF89a": "gif"}
    return next((kind for magic, kind in signatures.items() if content.startswith(magic)), "")


async def _read_upload_body(request: web.Request) -> bytes:
    """The uploaded bytes: a raw body (what slack_sdk sends) or the first multipart file part."""
    if request.content_type != "multipart/form-data":
        return await request.read()
    reader = await request.multipart()
    first: bytes | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue  # nested multipart: not something Slack clients send
        data = bytes(await part.read())
        if part.filename:
            return data
        if first is None:
            first = data
    return first or b""
