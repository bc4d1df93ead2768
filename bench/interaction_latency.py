"""Interaction latency: signed Claim clicks against the Slack app in HTTP mode, with the fake Slack
and PostgreSQL, at 1, 10 and 50 concurrent clicks on distinct requests.

For each click it measures
  ack          the HTTP answer to the signed POST /slack/events (Slack's 3-second limit), and
  card         click → the moment the fake Slack receives the chat.update of that request's card,
and, in the same run, the ack of a bare Bolt AsyncApp whose only listener acks (with Bolt's
defaults; with process_before_response=True as our app runs; and with Bolt's defaults on uvloop,
the event loop our app runs on). It prints the ratio the bar is
about (docs/quality.md): card p99 against a bare Bolt app's ack p99, at 50 and at 1 click. It also
prints the CPU time the server process spent per click (/proc/<pid>/stat).

The app is the real `mini-mentorship slack --http --port N`, a process of its own (the Slack app
and `runtime.delivery.run_forever()` side by side), measured twice: with Slack's real pacing of
1 message/s per channel (SLACK_CHANNEL_POST_INTERVAL=1, the default) and with pacing off (0). The
feed is ONE channel, so with pacing on, 50 card updates take ≥ 49 s whatever the code does; see
bench/README.md for which figure the bar is about. The load generator and the fake Slack share
this (parent) process.

    .venv/bin/python bench/interaction_latency.py                 # both pacings, PostgreSQL
    .venv/bin/python bench/interaction_latency.py --pacing off    # SLACK_CHANNEL_POST_INTERVAL=0 only
    .venv/bin/python bench/interaction_latency.py --engine sqlite
    .venv/bin/python bench/interaction_latency.py --quick         # a smoke test, not figures
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.common import postgres_scratch_url
from bot.config import Settings, load_settings
from bot.domain import Actor, Ok
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from fakes.slack_driver import SlackDriver, find_button, sign
from handlers.slack_sender import SlackSender
from storage import migrate

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
TEAM = "T1"
FEED = "CFEED"
MENTOR_POOL = 100  # × MENTOR_DEFAULT_CAPACITY (10) claims: enough for every level
CAPACITY = 10  # the most the setting allows; each click goes to the next mentor in turn
READY_TIMEOUT = 60.0
PROFILE_TO = ""  # --profile FILE: run the app under cProfile, stats written to FILE
CLI = Path(sys.executable).with_name("mini-mentorship")
FORM = {
    "title": "Help with my first pull request",
    "session_type": "code_review",
    "description": "I'd like someone to look at my first open-source pull request, please.",
    "duration": "30",
    "urgency": "normal",
}


# Statistics -------------------------------------------------------------------------------------


def ratio(part: float, whole: float) -> float:
    """part / whole, NaN when whole is 0 (a --quick run's few clicks can round a CPU figure to
    0 at /proc's 10 ms tick)."""
    return part / whole if whole else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between the closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


# Signed requests --------------------------------------------------------------------------------


def signed(body: bytes) -> dict[str, str]:
    """Slack's v0 signature over the body, as Slack sends it."""
    return {**sign(body, SECRET), "Content-Type": "application/x-www-form-urlencoded"}


_IDS = itertools.count(1)
_CLICKERS = itertools.count()


def next_mentor() -> str:
    """Mentors in turn, so no one reaches their capacity before the run ends."""
    return f"UM{next(_CLICKERS) % MENTOR_POOL:02d}"


def claim_payload(fake: FakeSlack, user: str, card: Card, key: str) -> dict[str, Any]:
    """The block_actions payload Slack sends when `user` clicks Claim on `card`."""
    n = next(_IDS)
    return {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "bench"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": f"trigger-{n}",
        "container": {"type": "message", "message_ts": card.ts, "channel_id": FEED, "is_ephemeral": False},
        "channel": {"id": FEED, "name": "mentors"},
        "message": {"ts": card.ts, "type": "message"},
        "response_url": fake.response_url(key),
        "actions": [
            {
                "type": "button",
                "action_id": card.action_id,
                "block_id": "b",
                "text": {"type": "plain_text", "text": "Claim"},
                "value": card.value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


@dataclass
class Click:
    """One click as the load generator saw it (monotonic seconds)."""

    key: str
    card_ts: str
    sent_at: float
    status: int = 0
    acked_at: float = 0.0

    @property
    def ack(self) -> float:
        return self.acked_at - self.sent_at


async def send(http: aiohttp.ClientSession, url: str, payload: dict[str, Any], click: Click) -> Click:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed(body)
    click.sent_at = time.monotonic()
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        click.status = response.status
    click.acked_at = time.monotonic()
    return click


# What the fake Slack received, with its arrival times ----------------------------------------------


class Arrivals:
    """Arrival times (the fake's own monotonic stamps) of card updates and response_url replies,
    read incrementally from `fake.calls` and `fake.ephemerals`."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.card_updated: dict[str, float] = {}  # card ts -> first chat.update
        self.replies: dict[str, list[tuple[float, str]]] = {}  # response_url key -> (at, text)
        self._calls = 0
        self._reply_calls: list[float] = []
        self._ephemerals = 0

    def refresh(self) -> None:
        calls = self.fake.calls
        for call in calls[self._calls :]:
            if call.method == "chat.update" and call.ok:
                self.card_updated.setdefault(str(call.args.get("ts")), call.at)
            elif call.method == "response_url" and call.ok:
                self._reply_calls.append(call.at)
        self._calls = len(calls)
        # Successful response_url posts are appended to `ephemerals` in the order of their calls.
        replies = [e for e in self.fake.ephemerals[self._ephemerals :]]
        self._ephemerals = len(self.fake.ephemerals)
        stamps = iter(self._reply_calls)
        self._reply_calls = []
        for entry in replies:
            if entry.get("source") != "response_url":
                continue
            at = next(stamps)
            self.replies.setdefault(str(entry.get("key")), []).append((at, str(entry.get("text") or "")))

    async def wait_for(self, done: Callable[[], bool], deadline: float, what: str) -> bool:
        """Poll until `done()` is true; False (and a note) if `deadline` passes first."""
        while True:
            self.refresh()
            if done():
                return True
            if time.monotonic() > deadline:
                print(f"    ! timed out waiting for {what}")
                return False
            await asyncio.sleep(0.005)


# The world: fake Slack, database, requests with their cards ----------------------------------------


@dataclass(frozen=True)
class Card:
    request_id: int
    ts: str
    action_id: str
    value: str


def mentors() -> list[str]:
    return [f"UM{i:02d}" for i in range(MENTOR_POOL)]


def settings_for(fake: FakeSlack, database_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake.url,
        "slack_mentor_channel": FEED,
        **extra,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def child_env(settings: Settings, post_interval: float) -> dict[str, str]:
    """The configuration of the server process: only what this run sets (no stray SLACK_*...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "DATABASE_"))}
    # The code of this checkout, whatever the venv's editable install points at.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(
        DATABASE_URL=settings.database_url,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=str(settings.slack_api_url),
        SLACK_MENTOR_CHANNEL=FEED,
        SLACK_CHANNEL_POST_INTERVAL=str(post_interval),
        MAX_OPEN_REQUESTS_PER_STUDENT=str(settings.max_open_requests_per_student),
        MENTOR_DEFAULT_CAPACITY=str(CAPACITY),
    )
    return env


def populate(fake: FakeSlack, students: int) -> None:
    for user in mentors():
        fake.add_user(user, name=f"mentor{user[2:]}")
    for i in range(students):
        fake.add_user(f"US{i:04d}", name=f"student{i}")
    for user in FORM_MENTORS:
        fake.add_user(user, name=f"scheduler{user[3:]}")
    fake.add_channel(FEED, members=[*mentors(), *FORM_MENTORS, "UBOT"], name="mentors")


def cards_of(fake: FakeSlack) -> dict[int, Card]:
    """Every feed card with a Claim button, by request id."""
    found: dict[int, Card] = {}
    for message in fake.messages.get(FEED, []):
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if str(element.get("action_id", "")).startswith("mm_claim"):
                    value = str(element.get("value"))
                    found[int(value)] = Card(int(value), str(message["ts"]), element["action_id"], value)
    return found


async def seed(settings: Settings, fake: FakeSlack, count: int, *, first_student: int = 0) -> list[Card]:
    """`count` open requests (one student each) with their cards posted, and nothing owed."""
    runtime = Runtime(settings)
    if runtime.db.is_postgres:
        await migrate.upgrade(runtime.db)
    else:
        await runtime.prepare()
    runtime.delivery.add_sender(SlackSender(settings, min_interval=0))
    today = runtime.clock.now().date()
    form = {
        **FORM,
        "available_from": today.isoformat(),
        "available_until": (today + timedelta(days=7)).isoformat(),
    }
    students = [
        Actor("slack", TEAM, f"US{i:04d}", f"student{i}", "UTC")
        for i in range(first_student, first_student + count)
    ]
    ids: list[int] = []
    for start in range(0, len(students), 25):
        results = await asyncio.gather(
            *(runtime.mentorship.create_request(s, form) for s in students[start : start + 25])
        )
        for result in results:
            assert isinstance(result, Ok), result
            ids.append(result.value.id)
    while (await runtime.delivery.run_once()).handled:
        pass
    await runtime.close()
    cards = cards_of(fake)
    missing = [i for i in ids if i not in cards]
    assert not missing, f"no card posted for requests {missing[:5]}"
    return [cards[i] for i in ids]


# The server under test, in a process of its own ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    kind: str
    port: int
    process: asyncio.subprocess.Process
    folder: tempfile.TemporaryDirectory[str] = field(repr=False)
    log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"


async def start_server(kind: str, settings: Settings, *, post_interval: float = 1.0) -> Server:
    """Start a server in a process of its own and wait until it answers HTTP: "app" is the real
    `mini-mentorship slack --http --port N` (SLACK_CHANNEL_POST_INTERVAL=`post_interval`);
    the others are a bare Bolt AsyncApp (this file, run with --serve; BARE_KINDS)."""
    port = free_port()
    folder = tempfile.TemporaryDirectory()  # cwd: no stray .env is read, no database file left behind
    if kind == "app" and PROFILE_TO:
        # The same CLI under cProfile; the stats are written when SIGTERM ends it gracefully.
        command = [sys.executable, "-m", "cProfile", "-o", PROFILE_TO, "-m", "bot", "slack", "--http"]
        command += ["--port", str(port)]
    elif kind == "app":
        command = [str(CLI), "slack", "--http", "--port", str(port)]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, "--port", str(port)]
    log = _log_file(Path(folder.name) / "server.log")
    process = await asyncio.create_subprocess_exec(
        *command, env=child_env(settings, post_interval), cwd=folder.name, stdout=log, stderr=log
    )
    server = Server(kind, port, process, folder, log)
    deadline = time.monotonic() + READY_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                await stop_server(server)
                raise RuntimeError(f"the {kind} server exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                # An unsigned POST: any HTTP answer (401) means it is listening.
                async with http.post(server.url, data=b"") as response:
                    await response.read()
                    return server
            if time.monotonic() > deadline:
                await stop_server(server)
                raise RuntimeError(f"the {kind} server did not start within {READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.1)


def _log_file(path: Path) -> IO[bytes]:
    return path.open("wb")  # closed by stop_server


async def stop_server(server: Server) -> None:
    """SIGTERM (the CLI shuts down gracefully), and show the server's log if it logged errors."""
    if server.process.returncode is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(server.process.wait(), 15)
        except TimeoutError:
            server.process.kill()
            await server.process.wait()
    server.log.close()
    text = (Path(server.folder.name) / "server.log").read_text(errors="replace")
    errors = [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]
    if errors or server.process.returncode not in (0, -signal.SIGTERM):
        print(f"    ! the {server.kind} server exited with {server.process.returncode}; its log:")
        print("      " + "\n      ".join(text.splitlines()[-30:]))
    server.folder.cleanup()


def _serve_bare(kind: str, port: int) -> None:
    """The child process of a bare Bolt AsyncApp with one listener that only acks."""
    import logging

    from aiohttp import web
    from slack_bolt.app.async_app import AsyncApp
    from slack_bolt.context.ack.async_ack import AsyncAck
    from slack_sdk.web.async_client import AsyncWebClient

    from handlers.slack_sender import api_url

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()

    async def serve() -> None:
        os.environ.pop("SLACK_BOT_TOKEN", None)  # Bolt reads it and warns that `client` wins
        bolt = AsyncApp(
            client=AsyncWebClient(token=settings.slack_bot_token, base_url=api_url(settings)),
            signing_secret=settings.slack_signing_secret or "",
            # Bolt's default (False) answers once a poll every 10 ms sees the ack; True answers when
            # the listener returns, as our app does. Both are measured.
            process_before_response=kind == "bare-pbr",
        )

        async def ack_only(ack: AsyncAck) -> None:
            await ack()

        bolt.action(re.compile(".*"))(ack_only)
        runner = web.AppRunner(bolt.web_app(path="/slack/events"), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def main() -> None:
        task = asyncio.ensure_future(serve())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    if kind == "bare-uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


# Measuring ----------------------------------------------------------------------------------------


@dataclass
class Level:
    """The figures of one server at one concurrency."""

    concurrency: int
    acks: list[float] = field(default_factory=list)
    cards: list[float] = field(default_factory=list)
    errors: int = 0
    missing_cards: int = 0
    cpu: float = 0.0  # CPU seconds the server process spent on this level

    @property
    def cpu_per_click(self) -> float:
        return self.cpu / len(self.acks) if self.acks else float("nan")

    def line(self, with_cards: bool) -> str:
        text = (
            f"  c={self.concurrency:<3} n={len(self.acks):<4} ack p50 {ms(percentile(self.acks, 50))}"
            f"  p99 {ms(percentile(self.acks, 99))}"
        )
        if with_cards:
            text += (
                f" | card updated p50 {ms(percentile(self.cards, 50))}  p99 {ms(percentile(self.cards, 99))}"
            )
        text += f" | server CPU {self.cpu_per_click * 1000:5.2f} ms/click"
        if self.errors or self.missing_cards:
            text += f"  ({self.errors} errors, {self.missing_cards} cards never updated)"
        return text


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_app(
    server: Server,
    fake: FakeSlack,
    cards: list[Card],
    plan: list[tuple[int, int]],
    *,
    card_timeout: float,
) -> list[Level]:
    """Claim clicks, `concurrency` at a time on distinct requests, each round waited out."""
    arrivals = Arrivals(fake)
    levels: list[Level] = []
    pool = iter(cards)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await warm_up(http, server, fake)
        for concurrency, rounds in plan:
            level = Level(concurrency)
            cpu_before = cpu_seconds(server.process.pid)
            for _ in range(rounds):
                batch = list(itertools.islice(pool, concurrency))
                assert len(batch) == concurrency, "not enough seeded requests"
                clicks = [Click(f"k{next(_IDS)}", card.ts, 0.0) for card in batch]
                payloads = [
                    claim_payload(fake, next_mentor(), card, click.key)
                    for card, click in zip(batch, clicks, strict=True)
                ]
                await asyncio.gather(
                    *(send(http, server.url, p, c) for p, c in zip(payloads, clicks, strict=True))
                )

                def answered(clicks: list[Click] = clicks) -> bool:
                    return all(
                        c.card_ts in arrivals.card_updated and c.key in arrivals.replies for c in clicks
                    )

                deadline = time.monotonic() + card_timeout
                await arrivals.wait_for(answered, deadline, f"{concurrency} card updates")
                for click in clicks:
                    level.acks.append(click.ack)
                    level.errors += click.status != 200
                    updated = arrivals.card_updated.get(click.card_ts)
                    if updated is None:
                        level.missing_cards += 1
                    else:
                        level.cards.append(updated - click.sent_at)
                    winner = any("You claimed" in text for _, text in arrivals.replies.get(click.key, []))
                    level.errors += not winner
                await settle(arrivals, fake)
            level.cpu = cpu_seconds(server.process.pid) - cpu_before
            levels.append(level)
    return levels


async def warm_up(http: aiohttp.ClientSession, server: Server, fake: FakeSlack) -> None:
    """Open connections and fill the app's caches (users.info, the mentors' channel members) with
    clicks on a request that doesn't exist: nothing is claimed, no card is touched."""
    ghost = Card(0, "0.000000", "mm_claim", "99999999")
    arrivals = Arrivals(fake)
    keys: list[str] = []
    for _ in range(2):
        round_keys = [f"w{next(_IDS)}" for _ in mentors()]
        payloads = [claim_payload(fake, u, ghost, k) for u, k in zip(mentors(), round_keys, strict=True)]
        await asyncio.gather(
            *(send(http, server.url, p, Click(p["response_url"], "", 0.0)) for p in payloads)
        )
        keys += round_keys
    # Their "couldn't find that request" replies are the last thing they cause.
    await arrivals.wait_for(
        lambda: all(k in arrivals.replies for k in keys), time.monotonic() + 30, "warm-up"
    )


async def settle(arrivals: Arrivals, fake: FakeSlack, quiet: float = 0.3) -> None:
    """Wait until the fake has had no call for `quiet` seconds (the round's DMs are out)."""
    while True:
        last = fake.calls[-1].at if fake.calls else 0.0
        if time.monotonic() - last >= quiet:
            arrivals.refresh()
            return
        await asyncio.sleep(quiet / 3)


async def measure_bare(server: Server, fake: FakeSlack, plan: list[tuple[int, int]]) -> list[Level]:
    levels: list[Level] = []
    ghost = Card(0, "0.000000", "mm_claim", "1")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm = [claim_payload(fake, user, ghost, "bare") for user in mentors()]
        for _ in range(2):
            await asyncio.gather(*(send(http, server.url, p, Click("w", "", 0.0)) for p in warm))
        for concurrency, rounds in plan:
            level = Level(concurrency)
            cpu_before = cpu_seconds(server.process.pid)
            for _ in range(rounds):
                clicks = [Click("bare", "", 0.0) for _ in range(concurrency)]
                payloads = [
                    claim_payload(fake, mentors()[i % MENTOR_POOL], ghost, "bare") for i in range(concurrency)
                ]
                await asyncio.gather(
                    *(send(http, server.url, p, c) for p, c in zip(payloads, clicks, strict=True))
                )
                level.acks += [c.ack for c in clicks]
                level.errors += sum(c.status != 200 for c in clicks)
            level.cpu = cpu_seconds(server.process.pid) - cpu_before
            levels.append(level)
    return levels


# Forms: a request posted, a session scheduled ---------------------------------------------------

FORMS = 30  # posts (and as many schedule submits), one at a time: each is a person filling a form
FORM_MENTORS = [f"UMF{i}" for i in range(4)]  # they claim and schedule the posts, in turn


@dataclass
class Forms:
    """Request post (form submit → card posted) and schedule submit (→ both DMs sent)."""

    post: Level = field(default_factory=lambda: Level(1))
    schedule: Level = field(default_factory=lambda: Level(1))


async def measure_forms(server: Server, fake: FakeSlack, students: list[str]) -> Forms:
    """Each student opens the request form and submits it (measured from the submit: its ack,
    the card in the feed, CPU until the student's DM is out too); then a mentor claims each
    request and schedules it (measured from the schedule submit until both DMs are out)."""
    base_url = server.url.removesuffix("/slack/events")
    driver = SlackDriver(fake, secret=SECRET, team=TEAM, base_url=base_url, first_id=10_000_000)
    await driver.open()
    arrivals = Arrivals(fake)
    forms = Forms()
    titles: list[str] = []
    try:
        for i, student in enumerate(students):
            form = await open_view(fake, student, "mm_request", driver.command(student))
            title = f"Bench form {i}: {FORM['title']}"
            values = {k: v for k, v in FORM.items() if k != "title"}
            calls, cpu_before, sent = len(fake.calls), cpu_seconds(server.process.pid), time.monotonic()
            answer = await driver.submit(student, form, {**values, "title": title})
            acked = time.monotonic()
            posted = await first_call(fake, calls, card_posted(title))
            await first_call(fake, calls, dm_sent)  # the student's "your request is posted"
            await settle(arrivals, fake)
            forms.post.cpu += cpu_seconds(server.process.pid) - cpu_before
            forms.post.acks.append(acked - sent)
            forms.post.errors += answer.status != 200 or answer.text != ""
            if posted is None:
                forms.post.missing_cards += 1
            else:
                forms.post.cards.append(posted - sent)
            titles.append(title)
        for i, title in enumerate(titles):
            mentor = FORM_MENTORS[i % len(FORM_MENTORS)]
            card = next(m for m in fake.messages[FEED] if title in json.dumps(m.get("blocks", [])))
            await driver.click(
                mentor, find_button(card["blocks"], "mm_claim"), channel=FEED, message_ts=card["ts"]
            )
            ts = card["ts"]

            def claimed(ts: str = ts) -> bool:
                card = next(m for m in fake.messages[FEED] if m["ts"] == ts)
                return "mm_schedule" in json.dumps(card.get("blocks", []))

            await arrivals.wait_for(claimed, time.monotonic() + 10, "a claimed card")
            await settle(arrivals, fake)
            card = next(m for m in fake.messages[FEED] if m["ts"] == ts)
            button = find_button(card["blocks"], "mm_schedule")
            view = await open_view(
                fake, mentor, "mm_schedule", driver.click(mentor, button, channel=FEED, message_ts=card["ts"])
            )
            # The mentors set no weekly availability: they pick a time, a different hour each.
            starts = (int(time.time()) // 3600 + 24 + i) * 3600
            calls, cpu_before, sent = len(fake.calls), cpu_seconds(server.process.pid), time.monotonic()
            answer = await driver.submit(mentor, view, {"starts_at": str(starts)})
            acked = time.monotonic()

            def both_told(start: int = calls) -> bool:
                return len([c for c in fake.calls[start:] if dm_sent(c)]) >= 2

            await arrivals.wait_for(both_told, time.monotonic() + 10, "the schedule DMs")
            await settle(arrivals, fake)
            dms = [
                c
                for c in fake.calls[calls:]
                if c.method == "chat.postMessage" and c.args.get("channel") != FEED
            ]
            forms.schedule.cpu += cpu_seconds(server.process.pid) - cpu_before
            forms.schedule.acks.append(acked - sent)
            forms.schedule.errors += answer.status != 200 or answer.text != "" or len(dms) < 2
            if dms:
                forms.schedule.cards.append(max(c.at for c in dms[:2]) - sent)
    finally:
        await driver.close()
    return forms


def dm_sent(call: Any) -> bool:
    return bool(call.method == "chat.postMessage" and call.args.get("channel") != FEED)


def card_posted(title: str) -> Callable[[Any], bool]:
    def posted(call: Any) -> bool:
        return bool(
            call.method == "chat.postMessage"
            and call.args.get("channel") == FEED
            and title in json.dumps(call.args)
        )

    return posted


async def open_view(fake: FakeSlack, user: str, callback_id: str, opener: Awaitable[Any]) -> dict[str, Any]:
    """Do what opens a form (a command, a click) and return the view the app opened for it."""
    before = set(fake.views)
    await opener
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fresh = [v for k, v in fake.views.items() if k not in before and v.get("callback_id") == callback_id]
        if fresh:
            return fresh[-1]
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{user}: no {callback_id} view opened")


async def first_call(
    fake: FakeSlack, start: int, match: Callable[[Any], bool], within: float = 10.0
) -> float | None:
    """The fake's arrival time of the first call since `start` that `match`es."""
    deadline = time.monotonic() + within
    seen = start
    while time.monotonic() < deadline:
        calls = fake.calls
        for call in calls[seen:]:
            if call.ok and match(call):
                return float(call.at)
        seen = len(calls)
        await asyncio.sleep(0.002)
    return None


def print_forms(forms: Forms, bare: Level) -> None:
    print("\nforms, one person at a time (pacing off), against the bare ack at c=1 (Bolt's defaults):")
    for name, level, what in (
        ("request post", forms.post, "card posted"),
        ("schedule submit", forms.schedule, "both DMs sent"),
    ):
        print(
            f"  {name:<16} n={len(level.acks):<3} ack p50 {ms(percentile(level.acks, 50))}"
            f" | {what} p50 {ms(percentile(level.cards, 50))}  p99 {ms(percentile(level.cards, 99))}"
            f" | server CPU {level.cpu_per_click * 1000:6.2f} ms = {ratio(level.cpu_per_click, bare.cpu_per_click):5.1f}×"
            f" the bare ack's {bare.cpu_per_click * 1000:.2f} ms"
            + (
                f"  ({level.errors} errors, {level.missing_cards} never posted)"
                if level.errors or level.missing_cards
                else ""
            )
        )


# The run ------------------------------------------------------------------------------------------

PLANS = {
    # (concurrency, rounds): ≥ 100 clicks per level without pacing; fewer with Slack's 1/s pacing,
    # where 50 updates of the one feed channel take 50 s per round.
    "off": [(1, 100), (10, 10), (50, 4)],
    "on": [(1, 20), (10, 3), (50, 2)],
}
# Real claims before the measured levels, not counted: the first claim of a process compiles
# its statements, prepares them in PostgreSQL and runs code paths for the first time (over
# 100 clicks at c=1 that added about 10 ms of CPU per click).
WARM_CLAIMS = 20
BARE_PLAN = [(1, 200), (10, 20), (50, 8)]
BARE_KINDS = {
    "bare": "Bolt's defaults",
    "bare-pbr": "process_before_response=True, as our app",
    "bare-uvloop": "Bolt's defaults on uvloop, as our app",
}
QUICK = {
    "off": [(1, 5), (10, 1), (50, 1)],
    "on": [(1, 3), (10, 1), (50, 1)],
    "bare": [(1, 20), (10, 2), (50, 2)],
}


async def run(engine: str, pacings: list[str], quick: bool = False) -> None:
    plans = QUICK if quick else {**PLANS, "bare": BARE_PLAN}
    with tempfile.TemporaryDirectory() as folder:
        url = (
            postgres_scratch_url("mm_bench_latency")
            if engine == "postgres"
            else f"sqlite+aiosqlite:///{folder}/latency.db"
        )
        needed = {p: sum(c * r for c, r in plans[p]) + (0 if quick else WARM_CLAIMS) for p in pacings}
        form_count = 3 if quick else FORMS
        async with FakeSlack(team_id=TEAM) as fake:
            populate(fake, sum(needed.values()) + form_count)
            form_students = [
                f"US{i:04d}" for i in range(sum(needed.values()), sum(needed.values()) + form_count)
            ]
            forms: Forms | None = None
            settings = settings_for(fake, url, max_open_requests_per_student=5)
            started = time.perf_counter()
            seeded: dict[str, list[Card]] = {}
            first = 0
            for pacing in pacings:
                seeded[pacing] = await seed(settings, fake, needed[pacing], first_student=first)
                first += needed[pacing]
            print(
                f"engine {engine}; {sum(needed.values())} open requests seeded with their cards "
                f"in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs"
            )

            bares: dict[str, list[Level]] = {}
            for kind, label in BARE_KINDS.items():
                bare_server = await start_server(kind, settings)
                try:
                    bares[kind] = await measure_bare(bare_server, fake, plans["bare"])
                finally:
                    await stop_server(bare_server)
                print(f"\nbare Bolt AsyncApp, one listener that only acks ({label}):")
                for level in bares[kind]:
                    print(level.line(with_cards=False))

            results: dict[str, list[Level]] = {}
            for pacing in pacings:
                interval = 0.0 if pacing == "off" else 1.0
                server = await start_server("app", settings, post_interval=interval)
                try:
                    measured = await measure_app(
                        server,
                        fake,
                        seeded[pacing],
                        [(1, 0 if quick else WARM_CLAIMS), *plans[pacing]],
                        card_timeout=30.0 if pacing == "off" else 120.0,
                    )
                    results[pacing] = measured[1:]  # the warm-up level is not a figure
                    if pacing == "off":
                        forms = await measure_forms(server, fake, form_students)
                finally:
                    await stop_server(server)
                print(
                    f"\n`mini-mentorship slack --http`, pacing {pacing} (SLACK_CHANNEL_POST_INTERVAL={interval:g}):"
                )
                for level in results[pacing]:
                    print(level.line(with_cards=True))

            print(
                "\nbars (docs/quality.md): server CPU per click ≤ 10× a bare ack's; card p99 at 50 "
                "concurrent clicks ≤ 10× the bare ack p99, at 1 click ≤ 3×; ack well inside 3 s"
            )
            for pacing, levels in results.items():
                print(f"  pacing {pacing}:")
                for level, *bare_levels in zip(levels, *(bares[k] for k in BARE_KINDS), strict=True):
                    card99, ack99 = percentile(level.cards, 99), percentile(level.acks, 99)
                    card_bar = 3.0 if level.concurrency == 1 else 10.0
                    print(
                        f"    c={level.concurrency:<3} card p99 {card99 * 1000:8.1f} ms, ack p99 "
                        f"{ack99 * 1000:6.1f} ms, CPU {level.cpu_per_click * 1000:6.2f} ms/click"
                    )
                    for label, bare in zip(BARE_KINDS.values(), bare_levels, strict=True):
                        bare99 = percentile(bare.acks, 99)
                        card_ratio = ratio(card99, bare99)
                        cpu_ratio = ratio(level.cpu_per_click, bare.cpu_per_click)
                        card_ok = card_ratio <= card_bar and not level.missing_cards
                        print(
                            f"      vs bare ({label}; ack p99 {bare99 * 1000:.1f} ms, CPU "
                            f"{bare.cpu_per_click * 1000:.2f} ms): card {card_ratio:6.1f}× "
                            f"{'ok' if card_ok else 'MISSES'} (≤ {card_bar:g}×)"
                            f"; CPU {cpu_ratio:5.1f}× {'ok' if cpu_ratio <= 10 else 'MISSES'} (≤ 10×)"
                        )
            if forms is not None:
                print_forms(forms, bares["bare"][0])
            for pacing, levels in results.items():
                errors = sum(level.errors for level in levels)
                print(f"  pacing {pacing:<3}: clicks without a 200 or without 'You claimed': {errors}")
            assert fake.validation_errors == [], fake.validation_errors[:3]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--pacing", choices=["both", "off", "on"], default="both")
    parser.add_argument("--quick", action="store_true", help="a few rounds only (a smoke test, not figures)")
    parser.add_argument("--profile", metavar="FILE", help="run the app under cProfile, stats to FILE")
    parser.add_argument("--serve", choices=list(BARE_KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve_bare(args.serve, args.port)
        return
    if args.profile:
        global PROFILE_TO
        PROFILE_TO = str(Path(args.profile).resolve())
    pacings = ["off", "on"] if args.pacing == "both" else [args.pacing]
    asyncio.run(run(args.engine, pacings, args.quick))


if __name__ == "__main__":
    main()
