"""Fuzzing the Slack endpoint: Hypothesis-generated slash commands, block_actions and
view_submission payloads (wrong types, missing keys, huge strings, unicode, ids of other people's
and other workspaces' requests), sent as real HTTP to POST /slack/events.

Signed properly, they must never get a 500, never crash a handler (no exception reaches aiohttp or
asyncio, and none of our handlers fails on a programming error such as TypeError or KeyError),
and never change anyone else's data: every payload comes from an attacker identity (a member who
is no mentor, or people of another workspace, some with the same user ids as ours), and the rows
of the people seeded here must stay exactly as they were. Unsigned, forged, tampered, stale or
garbled variants must get 401 and cause nothing at all: no Slack call, no row.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from sqlalchemy import Table, func, select

from bot.domain import Actor, Ok
from bot.messages import Action
from storage.models import AvailabilityWindow, FeedPost, Member, MentorSession, Notification, Request
from tests.conftest import request_form
from tests.slack.conftest import MakeSlack
from tests.slack.harness import ADMIN, MENTOR, MENTOR_2, OTHER, SECRET, STUDENT, SlackHarness, sign

FORM = "application/x-www-form-urlencoded"
MAX_BODY = 1024**2  # aiohttp's default client_max_size: larger bodies are answered 413

# Who sends the fuzz: (team, user). None: no team anywhere in the payload.
ATTACKERS: list[tuple[str | None, str]] = [
    ("T1", OTHER),  # a member of our workspace who is not a mentor
    ("T2", MENTOR),  # another workspace, same user id as our mentor (and in the mentors' channel)
    ("T2", STUDENT),  # another workspace, same user id as our student
    ("T2", "UOUTSIDER"),  # someone Slack's users.info doesn't know
    (None, MENTOR_2),  # no workspace at all (a mentor's id, so the mentor check passes)
]
# The seeded requests (ids in a fresh database): T1 open, claimed, scheduled; T3 open.
VICTIM_REQUESTS = [1, 2, 3, 4]
ACTION_IDS = [f"mm_{a.value}" for a in Action] + ["mm_rate.3", "mm_open_request", "mm_open_availability"]
CALLBACK_IDS = ["mm_request", "mm_schedule", "mm_availability", "mm_review"]
FIELDS = [
    "title",
    "session_type",
    "description",
    "duration",
    "available_from",
    "available_until",
    "urgency",
    "tags",
    "slot",
    "starts_at",
    "meeting_url",
    "note",
    "windows",
    "timezone",
    "rating",
    "review",
]

# Strategies -------------------------------------------------------------------------------------

huge = st.builds(
    lambda piece, n: piece * n,
    st.sampled_from(["x", "é", "🚀", "<!channel>", "\x00", "&lt;", "\u202e", "ｗ"]),
    st.integers(1_000, 60_000),
)
texts = st.one_of(
    st.text(max_size=40),
    huge,
    st.sampled_from(
        ["list", "stats", "availability", "help", "request", "new", " LIST  x", "stats\nlist", ""]
    ),
)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
request_ids = st.sampled_from([*VICTIM_REQUESTS, 0, -1, 2**31, 2**63, 10**40])  # past int4, int8
values = st.one_of(
    request_ids.map(str),
    st.builds(
        lambda rid, extra: f"{rid}:{extra}", request_ids, st.one_of(st.integers(-2, 9).map(str), texts)
    ),
    request_ids,
    junk,
)


def team_fields(team: str | None) -> dict[str, Any]:
    return {} if team is None else {"team": {"id": team, "domain": "x"}}


def user_field(user: str, team: str | None) -> dict[str, Any]:
    who: dict[str, Any] = {"id": user, "username": user.lower(), "name": user.lower()}
    if team is not None:
        who["team_id"] = team
    return {"user": who}


@st.composite
def slash_commands(draw: st.DrawFn, response_url: str) -> bytes:
    team, user = draw(st.sampled_from(ATTACKERS))
    body = draw(
        st.fixed_dictionaries(
            {
                "command": st.sampled_from(["/mini-session", "/mini-session", "/other"]),
                "user_id": st.just(user),
            },
            optional={
                "text": texts,
                "trigger_id": st.text(min_size=1, max_size=20),
                "response_url": st.just(response_url),
                "channel_id": texts,
                "user_name": texts,
                "api_app_id": texts,
                "junk": texts,
            },
        )
    )
    if team is not None:
        body["team_id"] = team
    return urlencode(body).encode()


@st.composite
def block_actions(draw: st.DrawFn, response_url: str) -> dict[str, Any]:
    team, user = draw(st.sampled_from(ATTACKERS))
    action = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"action_id": st.one_of(st.sampled_from(ACTION_IDS), texts), "value": values},
                optional={"type": st.just("button"), "block_id": junk, "text": junk, "action_ts": junk},
            ),
            junk,
        )
    )
    payload = draw(
        st.fixed_dictionaries(
            {"type": st.just("block_actions"), "actions": st.one_of(st.just([action]), junk)},
            optional={
                "trigger_id": st.text(min_size=1, max_size=20),
                "response_url": st.just(response_url),
                "container": st.one_of(
                    st.just({"type": "view", "view_id": "VHOME"}),
                    st.just({"type": "message", "message_ts": "1.0", "channel_id": "CMENTORS"}),
                    junk,
                ),
                "view": st.one_of(st.just({"id": "VHOME", "type": "home"}), junk),
                "channel": st.one_of(st.just({"id": "CMENTORS"}), junk),
                "message": junk,
            },
        )
    )
    return {**payload, **team_fields(team), **user_field(user, team)}


def element_states() -> st.SearchStrategy[Any]:
    """What Slack reports for one input element: any element type, plausible or junk values."""
    plausible = st.sampled_from(
        [
            "2030-01-08",
            "30",
            "interview_prep",
            "high",
            "1894118400",
            "Mon 10:00-17:00",
            "UTC",
            "5",
            "https://x.y",
        ]
    )
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("plain_text_input"), "value": st.one_of(plausible, texts, junk)}
        ),
        st.fixed_dictionaries(
            {"selected_option": st.fixed_dictionaries({"value": st.one_of(plausible, junk)})}
        ),
        st.fixed_dictionaries({"selected_date": st.one_of(plausible, junk)}),
        st.fixed_dictionaries({"selected_date_time": st.one_of(st.integers(), st.floats(), junk)}),
        junk,
    )


@st.composite
def view_submissions(draw: st.DrawFn) -> dict[str, Any]:
    team, user = draw(st.sampled_from(ATTACKERS))
    fields = draw(st.lists(st.sampled_from(FIELDS), max_size=8, unique=True))
    state: Any = {"values": {f: {f: draw(element_states())} for f in fields}}
    metadata = draw(
        st.one_of(
            st.builds(lambda rid, home: json.dumps({"r": rid, "home": home}), request_ids, junk),
            texts,
            junk,
        )
    )
    view = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"callback_id": st.one_of(st.sampled_from(CALLBACK_IDS), texts), "state": st.just(state)},
                optional={
                    "private_metadata": st.just(metadata),
                    "id": texts,
                    "type": st.just("modal"),
                    "blocks": st.one_of(
                        st.just([{"type": "input", "block_id": f} for f in fields]),
                        junk,
                    ),
                },
            ),
            junk,
        )
    )
    if isinstance(view, dict) and team is not None and draw(st.booleans()):
        view["app_installed_team_id"] = team  # Slack Connect: Bolt takes the team from here
    return {"type": "view_submission", "view": view, **team_fields(team), **user_field(user, team)}


Variant = str  # how the request is signed
VARIANTS = ["signed", "unsigned", "wrong_secret", "tampered", "stale", "future", "garbled"]
# Half the examples signed: those reach the handlers.
variants = st.one_of(st.just("signed"), st.sampled_from(VARIANTS))


def headers_for(variant: Variant, body: bytes, garbage: str) -> tuple[bytes, dict[str, str]]:
    """The body actually sent and its headers, for one signing variant."""
    now = int(time.time())
    if variant == "signed":
        return body, sign(body)
    if variant == "unsigned":
        return body, {}
    if variant == "wrong_secret":
        return body, sign(body, secret=SECRET + "x")
    if variant == "tampered":  # signed, then changed in transit
        return body + b"&x=1", sign(body)
    if variant == "stale":
        return body, sign(body, now - 301)
    if variant == "future":
        # Well past the 5-minute window: at +301 s a second ticking over before the app checks
        # brought it back inside, and the request was (rightly) judged on its body instead.
        return body, sign(body, now + 360)
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()  # not the v0 basestring
    return body, {"X-Slack-Request-Timestamp": garbage or str(now), "X-Slack-Signature": f"v0={digest}"}


# The world: a workspace with data that must not change ------------------------------------------


@dataclass
class World:
    slack: SlackHarness
    errors: list[logging.LogRecord] = field(default_factory=list)
    loop_errors: list[dict[str, Any]] = field(default_factory=list)


class Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.fixture
async def world(make_slack: MakeSlack) -> AsyncIterator[World]:
    slack = await make_slack(max_open_requests_per_student=5)
    m = slack.runtime.mentorship
    student = Actor("slack", "T1", STUDENT, "sam", "Europe/Berlin")
    mentor = Actor("slack", "T1", MENTOR, "mia", "America/New_York", is_mentor=True)
    elsewhere = Actor("slack", "T3", "UT3STUDENT", "tess", "UTC")
    slack.fake.add_user(elsewhere.user_id, name="tess")
    created = [await m.create_request(student, request_form(title=f"Victim {n}")) for n in range(3)]
    created.append(await m.create_request(elsewhere, request_form(title="Another workspace")))
    assert [r.value.id for r in created if isinstance(r, Ok)] == VICTIM_REQUESTS
    assert isinstance(await m.claim(mentor, 2), Ok)
    assert isinstance(await m.claim(mentor, 3), Ok)
    assert isinstance(await m.schedule(mentor, 3, {"starts_at": "2030-01-08 10:00"}), Ok)
    assert isinstance(await m.set_availability(mentor, {"windows": "Mon 10:00-17:00", "timezone": "UTC"}), Ok)
    admin = Actor("slack", "T1", ADMIN, "ada", "UTC", is_admin=True)
    await m.dashboard(admin)  # the admin is a member too
    await slack.settle()
    w = World(slack)
    handler = Collect(w.errors)
    logging.getLogger().addHandler(handler)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: w.loop_errors.append(context))
    yield w
    loop.set_exception_handler(previous)
    logging.getLogger().removeHandler(handler)


async def victims(slack: SlackHarness) -> list[Any]:
    """Every row of the seeded people: their members, requests, sessions, availability, feed
    posts and owed messages, all columns."""
    async with slack.runtime.db.transaction() as session:
        members = select(Member.id).where(Member.id <= 4)  # sam, mia, tess, ada: seeded first
        rows: list[Any] = []
        queries = [
            (Member.__table__, Member.id.in_(members)),
            (Request.__table__, Request.id.in_(VICTIM_REQUESTS)),
            (MentorSession.__table__, MentorSession.request_id.in_(VICTIM_REQUESTS)),
            (AvailabilityWindow.__table__, AvailabilityWindow.mentor_id.in_(members)),
            (FeedPost.__table__, FeedPost.request_id.in_(VICTIM_REQUESTS)),
            (Notification.__table__, Notification.request_id.in_(VICTIM_REQUESTS)),
        ]
        for table, where in queries:
            assert isinstance(table, Table)
            rows.append(
                (await session.execute(select(table).where(where).order_by(*table.primary_key))).all()
            )
        return rows


async def row_count(slack: SlackHarness) -> int:
    async with slack.runtime.db.transaction() as session:
        total = 0
        for model in (Member, Request, MentorSession, AvailabilityWindow, Notification):
            total += int(await session.scalar(select(func.count()).select_from(model)) or 0)
        return total


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


ALLOWED_FAILURES = (SlackApiError,)  # Slack refusing an argument it was given (a missing trigger)


def crashes(records: list[logging.LogRecord]) -> Iterator[str]:
    """Logged errors that mean a handler crashed, rather than refused or reported a problem."""
    for record in records:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ALLOWED_FAILURES):
            continue
        if isinstance(exc, ValueError) and str(exc) == "interaction without a user":
            continue  # the adapter's own refusal of a click that names nobody
        yield f"{record.name}: {record.getMessage()} {exc!r}"


async def send(w: World, body: bytes, content_type: str, variant: Variant, garbage: str) -> None:
    slack = w.slack
    before = await victims(slack)
    count, calls = await row_count(slack), len(slack.fake.calls)
    w.errors.clear()
    w.loop_errors.clear()
    sent, headers = headers_for(variant, body, garbage)
    answer = await slack.post(sent, content_type, headers)
    await slack.idle_only()
    if len(sent) > MAX_BODY:
        assert answer.status == 413, (answer.status, answer.text)  # refused before it is read
    elif variant == "signed":
        # Not UTF-8: Slack can't have signed it, so it counts as unsigned (401).
        allowed = {200, 400, 404} if _is_utf8(body) else {401}
        assert answer.status in allowed, (answer.status, answer.text)
    else:
        assert answer.status == 401, (variant, answer.status)
        assert (await row_count(slack), len(slack.fake.calls)) == (count, calls)
    assert await victims(slack) == before
    assert not list(crashes(w.errors)), list(crashes(w.errors))
    assert not w.loop_errors, w.loop_errors
    # Slack refusing a view opened with a missing or bogus trigger is Slack's business; any
    # other problem with what the app sent is the app's.
    problems = [p for p in slack.fake.validation_errors if "trigger_id" not in p]
    slack.fake.validation_errors.clear()
    assert not problems, problems


FUZZ = settings(
    # 60 keeps the suite fast; FUZZ_EXAMPLES=2000 for a deeper run.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
garbage_headers = st.sampled_from(["", "soon", "1e9", "-1", "١٢٣", "0x10", " 123"])


@FUZZ
@given(data=st.data(), variant=variants, garbage=garbage_headers)
async def test_fuzzed_slash_commands(
    world: World, data: st.DataObject, variant: Variant, garbage: str
) -> None:
    body = data.draw(slash_commands(world.slack.fake.response_url("fuzz")))
    await send(world, body, FORM, variant, garbage)


@FUZZ
@given(data=st.data(), variant=variants, garbage=garbage_headers)
async def test_fuzzed_block_actions(
    world: World, data: st.DataObject, variant: Variant, garbage: str
) -> None:
    payload = data.draw(block_actions(world.slack.fake.response_url("fuzz")))
    body = urlencode({"payload": json.dumps(payload)}).encode()
    await send(world, body, FORM, variant, garbage)


@FUZZ
@given(payload=view_submissions(), variant=variants, garbage=garbage_headers)
async def test_fuzzed_view_submissions(
    world: World, payload: dict[str, Any], variant: Variant, garbage: str
) -> None:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    await send(world, body, FORM, variant, garbage)


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=300), texts.map(lambda t: t.encode("utf-8", "surrogatepass"))),
    content_type=st.sampled_from([FORM, "application/json", "text/plain", "multipart/form-data", ""]),
    variant=variants,
    garbage=garbage_headers,
)
async def test_garbage_bodies(
    world: World, body: bytes, content_type: str, variant: Variant, garbage: str
) -> None:
    """Not even the shape of a Slack request: raw bytes, any content type."""
    await send(world, body, content_type, variant, garbage)
