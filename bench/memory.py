"""Memory: RSS of `mini-mentorship run` (a subprocess: Slack in HTTP mode + Discord + the jobs),
idle after start and after 10,000 handled interactions. Bar (docs/quality.md): one process running
Slack, Discord and jobs idles under 150 MB RSS.

Two runs by default, each a fresh process and database:
  off      the real CLI, no DISCORD_TOKEN: Discord stays off (discord.py is not even imported);
  simcord  the same `run` (bot.cli.main) with Discord's gateway swapped for SimCord: the real
           discord.py client logs in, syncs its commands and idles against an in-memory Discord
           that lives in the same process (so its memory is counted too: an upper bound).
SLACK_API_URL points at a FakeSlack run by this script; the interactions are signed HTTP requests
to http://127.0.0.1:3000/slack/events (`run` serves Slack's HTTP mode on port 3000, which must be
free). RSS is read from /proc/<pid>/status (VmRSS; VmHWM is the peak).

The 10,000 interactions, spread over 1,000 distinct people (so per-user caches fill up):
  100 request forms submitted, 200 Claim clicks on them (half win, half are told who has it),
  1,000 `/mini-session` (opens the form), 3,000 `/mini-session list`, 3,000 `/mini-session help`,
  2,700 App Home opens. 20 simulated people at a time, each waiting for the visible outcome of
  an interaction (its reply, modal or Home tab) before the next, as a person would. With
  --open-loop they don't wait (an overload test: acks come at once, the work queues up).

    .venv/bin/python bench/memory.py                    # PostgreSQL at TEST_POSTGRES_URL
    .venv/bin/python bench/memory.py --engine sqlite    # the zero-setup default database
    .venv/bin/python bench/memory.py --discord off --open-loop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.common import postgres_scratch_url
from fakes.slack_api import FakeSlack
from fakes.slack_driver import SlackDriver, sign
from modals import slack as ui

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
TEAM = "T1"
FEED = "CFEED"
PORT = 3000  # `mini-mentorship run` serves Slack's HTTP mode on this port
BASE = f"http://127.0.0.1:{PORT}"
PEOPLE = 1000
MENTORS = 100
IN_FLIGHT = 20
BAR_MB = 150.0
OUTCOME_TIMEOUT = 60.0
CLI = Path(sys.executable).with_name("mini-mentorship")


# Reading the process ------------------------------------------------------------------------------


def status_mb(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon and RssFile from /proc/<pid>/status, in MB (10^6 bytes)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) * 1024 / 1e6
    return values


async def settled_rss(pid: int, *, window: float = 3.0, limit: float = 60.0) -> dict[str, float]:
    """Poll RSS until it has not grown for `window` seconds (background work done), then read it."""
    deadline = time.monotonic() + limit
    last = status_mb(pid)["VmRSS"]
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = status_mb(pid)["VmRSS"]
        if now > last + 0.1:
            stable_since = time.monotonic()
        last = max(last, now)
        if time.monotonic() - stable_since >= window:
            break
    return status_mb(pid)


# What Slack sends ---------------------------------------------------------------------------------


def signed_headers(body: bytes, content_type: str) -> dict[str, str]:
    return {**sign(body, SECRET), "Content-Type": content_type}


class Outcomes:
    """What the app visibly did, read incrementally from the fake Slack: replies per response_url
    key, modals opened per trigger_id, Home tabs published per user."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.replies: dict[str, str] = {}
        self.opened: set[str] = set()
        self.published: dict[str, int] = {}
        self._calls = 0
        self._ephemerals = 0

    def refresh(self) -> None:
        calls = self.fake.calls
        for call in calls[self._calls :]:
            if call.method == "views.open" and call.ok:
                self.opened.add(str(call.args.get("trigger_id")))
            elif call.method == "views.publish" and call.ok:
                user = str(call.args.get("user_id"))
                self.published[user] = self.published.get(user, 0) + 1
        self._calls = len(calls)
        for entry in self.fake.ephemerals[self._ephemerals :]:
            if entry.get("source") == "response_url":
                self.replies[str(entry.get("key"))] = str(entry.get("text") or "")
        self._ephemerals = len(self.fake.ephemerals)


class Traffic:
    """Sends signed requests like Slack and, like a person, waits for each one's visible outcome
    (a reply, a modal, the Home tab) before the next: the app is measured handling the load,
    not queueing it."""

    def __init__(self, fake: FakeSlack, http: aiohttp.ClientSession, *, open_loop: bool = False) -> None:
        self.fake = fake
        self.http = http
        self.open_loop = open_loop
        self.pending: list[tuple[Callable[[], bool], Callable[[], bool]]] = []
        self.ids = itertools.count(1)
        self.driver = SlackDriver(fake, secret=SECRET, team=TEAM)  # builds what Slack sends
        self.statuses: dict[int, int] = {}
        self.outcomes = Outcomes(fake)
        self.unanswered = 0
        self.failed = 0  # answered "Something went wrong…"

    async def post(self, body: bytes, content_type: str) -> None:
        async with self.http.post(
            f"{BASE}/slack/events", data=body, headers=signed_headers(body, content_type)
        ) as response:
            await response.read()
            self.statuses[response.status] = self.statuses.get(response.status, 0) + 1

    async def until(self, done: Callable[[], bool], failed: Callable[[], bool] = lambda: False) -> None:
        """Wait for an interaction's outcome (`done`), then count it if it is a failure. In
        open-loop mode, don't wait: `drain()` checks every outcome at the end."""
        if self.open_loop:
            self.pending.append((done, failed))
            return
        deadline = time.monotonic() + OUTCOME_TIMEOUT
        while True:
            self.outcomes.refresh()
            if done():
                self.failed += failed()
                return
            if time.monotonic() > deadline:
                self.unanswered += 1
                return
            await asyncio.sleep(0.005)

    async def drain(self, limit: float) -> None:
        """Open-loop mode: wait (up to `limit` seconds) for the outcomes of everything sent."""
        deadline = time.monotonic() + limit
        while self.pending and time.monotonic() < deadline:
            self.outcomes.refresh()
            waiting: list[tuple[Callable[[], bool], Callable[[], bool]]] = []
            for done, failed in self.pending:
                if done():
                    self.failed += failed()
                else:
                    waiting.append((done, failed))
            self.pending = waiting
            await asyncio.sleep(0.1)
        self.unanswered += len(self.pending)
        self.pending = []

    async def replied(self, key: str) -> None:
        await self.until(
            lambda: key in self.outcomes.replies,
            lambda: ui.GENERIC_ERROR in self.outcomes.replies.get(key, ""),
        )

    async def command(self, user: str, text: str) -> None:
        body = self.driver.command_body(user, text)
        key, trigger = body["response_url"].rsplit("/", 1)[1], body["trigger_id"]
        await self.post(urlencode(body).encode(), "application/x-www-form-urlencoded")
        if text:
            await self.replied(key)
        else:  # the form opens, or the reason it does not is told (at the request cap)
            await self.until(
                lambda: trigger in self.outcomes.opened or key in self.outcomes.replies,
                lambda: ui.GENERIC_ERROR in self.outcomes.replies.get(key, ""),
            )

    async def interact(self, payload: dict[str, Any]) -> None:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        await self.post(body, "application/x-www-form-urlencoded")

    def _who(self, user: str) -> dict[str, Any]:
        return {
            "team": {"id": TEAM, "domain": "bench"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A1",
            "token": "legacy",
            "trigger_id": f"trigger-{next(self.ids)}",
        }

    async def submit_request(self, user: str, today: date, n: int) -> None:
        """A request form submitted; the answer to the POST is its outcome (the form closes)."""
        view = {**ui.request_modal(today, metadata={"home": False}), "id": f"V{n}"}
        values = {
            "title": f"Help with topic {n}",
            "session_type": "code_review",
            "description": f"I'd like a second pair of eyes on my project number {n}, please.",
            "duration": "30",
            "available_from": today.isoformat(),
            "available_until": (today + timedelta(days=5)).isoformat(),
            "urgency": "normal",
            "tags": "python",
        }
        state = {
            block["block_id"]: {
                block["element"]["action_id"]: SlackDriver.element_state(
                    block["element"], values.get(block["block_id"])
                )
            }
            for block in view["blocks"]
            if block.get("type") == "input"
        }
        await self.interact(
            {"type": "view_submission", **self._who(user), "view": {**view, "state": {"values": state}}}
        )

    async def claim(self, user: str, request_id: int) -> None:
        key = f"click-{next(self.ids)}"
        await self.interact(
            {
                "type": "block_actions",
                **self._who(user),
                "container": {"type": "message", "message_ts": "1.0", "channel_id": FEED},
                "channel": {"id": FEED, "name": "mentors"},
                "message": {"ts": "1.0", "type": "message"},
                "response_url": self.fake.response_url(key),
                "actions": [
                    {
                        "type": "button",
                        "action_id": "mm_claim",
                        "block_id": "b",
                        "text": {"type": "plain_text", "text": "Claim"},
                        "value": str(request_id),
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        )
        await self.replied(key)

    async def home_opened(self, user: str) -> None:
        self.outcomes.refresh()
        before = self.outcomes.published.get(user, 0)
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": TEAM,
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": f"Ev{next(self.ids)}",
                "event_time": int(time.time()),
                "event": {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"},
            }
        ).encode()
        await self.post(body, "application/json")
        await self.until(lambda: self.outcomes.published.get(user, 0) > before)


@dataclass(frozen=True)
class Job:
    kind: str  # submit | claim | open | list | help | home
    user: str
    number: int = 0


async def pooled(traffic: Traffic, jobs: list[Job], in_flight: int) -> None:
    """Send `jobs` with `in_flight` requests outstanding at any time."""
    queue = iter(jobs)
    today = date.today()

    async def worker() -> None:
        for job in queue:
            if job.kind == "submit":
                await traffic.submit_request(job.user, today, job.number)
            elif job.kind == "claim":
                await traffic.claim(job.user, job.number)
            elif job.kind == "home":
                await traffic.home_opened(job.user)
            else:
                await traffic.command(job.user, "" if job.kind == "open" else job.kind)

    await asyncio.gather(*(worker() for _ in range(in_flight)))


# The run ------------------------------------------------------------------------------------------


def people() -> tuple[list[str], list[str]]:
    mentors = [f"UM{i:03d}" for i in range(MENTORS)]
    others = [f"UP{i:04d}" for i in range(PEOPLE - MENTORS)]
    return mentors, others


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


async def wait_healthy(process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60.0
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"mini-mentorship run exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{BASE}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError("mini-mentorship run did not become healthy in time")


async def run(engine: str, discord: str, open_loop: bool) -> None:
    if not port_free(PORT):
        raise SystemExit(f"port {PORT} is busy; `mini-mentorship run` serves Slack there")
    mentors, others = people()
    with tempfile.TemporaryDirectory() as folder:
        url = (
            postgres_scratch_url("mm_bench_memory")
            if engine == "postgres"
            else f"sqlite+aiosqlite:///{folder}/memory.db"
        )
        async with FakeSlack(team_id=TEAM) as fake:
            for user in [*mentors, *others]:
                fake.add_user(user, tz=random.Random(user).choice(["UTC", "Europe/Berlin", "Asia/Tokyo"]))
            fake.add_channel(FEED, members=[*mentors, "UBOT"], name="mentors")
            fake.add_channel("CGENERAL", members=[*mentors, *others, "UBOT"], name="general")
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "DATABASE_"))
            }
            env.update(
                DATABASE_URL=url,
                SLACK_BOT_TOKEN=TOKEN,
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_API_URL=fake.url,
                SLACK_MENTOR_CHANNEL=FEED,
                # The code of this checkout, whatever the venv's editable install points at.
                PYTHONPATH=str(Path(__file__).resolve().parents[1]),
            )
            if engine == "postgres":
                migrate = await asyncio.create_subprocess_exec(
                    str(CLI),
                    "migrate",
                    env=env,
                    cwd=folder,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                assert await migrate.wait() == 0, "mini-mentorship migrate failed"
            if discord == "simcord":
                # Placeholders: the SimCord guild's ids replace them when the bot starts.
                env.update(DISCORD_TOKEN="simcord", DISCORD_MENTOR_CHANNEL_ID="1", DISCORD_MENTOR_ROLE_ID="2")
                env.update(DISCORD_GUILD_ID="1000")
                command = [sys.executable, str(Path(__file__).resolve()), "--launch-with-simcord"]
            else:
                command = [str(CLI), "run"]
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                *command, env=env, cwd=folder, stderr=asyncio.subprocess.PIPE
            )
            log_lines: list[bytes] = []
            reader = asyncio.ensure_future(_collect(process, log_lines))
            try:
                try:
                    await wait_healthy(process)
                except RuntimeError:
                    await asyncio.wait_for(reader, 5.0)  # what it said before it stopped
                    sys.stderr.write(b"".join(log_lines[-40:]).decode(errors="replace"))
                    raise
                print(
                    f"`mini-mentorship run`: Slack (HTTP) + {DISCORD_MODES[discord]} + jobs; engine {engine}"
                    f"{'; open loop' if open_loop else ''}; healthy after {time.monotonic() - started:.1f} s"
                )
                idle = await settled_rss(process.pid, window=5.0)
                print(
                    f"  idle after start        VmRSS {idle['VmRSS']:6.1f} MB  (anon {idle['RssAnon']:.1f}, "
                    f"file {idle['RssFile']:.1f}); bar < {BAR_MB:.0f} MB "
                    f"{'ok' if idle['VmRSS'] < BAR_MB else 'MISSES THE BAR'}"
                )

                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as http:
                    traffic = Traffic(fake, http, open_loop=open_loop)
                    rng = random.Random(42)
                    students = others[:50]
                    forms = [Job("submit", u, n) for n, u in enumerate(s for s in students for _ in range(2))]
                    t0 = time.monotonic()
                    await pooled(traffic, forms, IN_FLIGHT)
                    handled = len(forms)
                    # Each request claimed by two mentors: one wins, one is told who has it.
                    everyone = [*mentors, *others]
                    mix = [Job("claim", m, r) for r in range(1, 101) for m in rng.sample(mentors, 2)]
                    for kind, count in (("open", 1000), ("list", 3000), ("help", 3000), ("home", 2700)):
                        mix += [Job(kind, rng.choice(everyone)) for _ in range(count)]
                    rng.shuffle(mix)
                    for start in range(0, len(mix), 2000):
                        await pooled(traffic, mix[start : start + 2000], IN_FLIGHT)
                        handled += len(mix[start : start + 2000])
                        rss = status_mb(process.pid)["VmRSS"]
                        print(f"    {handled:6,} interactions answered; VmRSS {rss:6.1f} MB")
                    if open_loop:
                        await traffic.drain(600.0)
                    elapsed = time.monotonic() - t0
                after = await settled_rss(process.pid, window=5.0)
                answered = sum(traffic.statuses.values())
                replies = sum(1 for e in fake.ephemerals if e.get("source") == "response_url")
                print(
                    f"  {answered:,} interactions in {elapsed:.1f} s ({answered / elapsed:.0f}/s); "
                    f"HTTP statuses {traffic.statuses}; {replies:,} ephemeral replies "
                    f"({traffic.failed} of them 'something went wrong'), {traffic.unanswered} never answered, "
                    f"{len(fake.home_tabs)} home tabs, {len(fake.views)} modals, "
                    f"{len(fake.messages.get(FEED, []))} feed cards so far"
                )
                print(
                    f"  after 10,000, settled   VmRSS {after['VmRSS']:6.1f} MB  (anon {after['RssAnon']:.1f}, "
                    f"file {after['RssFile']:.1f}); peak VmHWM {after['VmHWM']:.1f} MB; bar < {BAR_MB:.0f} MB "
                    f"{'ok' if after['VmRSS'] < BAR_MB else 'MISSES THE BAR'}"
                )
            finally:
                logged = len(log_lines)  # what it logged while serving, not while shutting down
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(process.wait(), 15)
                    except TimeoutError:
                        process.kill()
                        await process.wait()
                await reader
            errors = [line for line in log_lines[:logged] if b" ERROR " in line]
            print(
                f"  process exited with {process.returncode}; {len(errors)} ERROR lines in its log while "
                f"serving, {sum(b' ERROR ' in line for line in log_lines[logged:])} while shutting down"
            )
            if errors:
                dump = Path(folder).parent / "mm_bench_memory.log"
                dump.write_bytes(b"".join(log_lines))
                print(f"    the process's log: {dump}")


async def _collect(process: asyncio.subprocess.Process, lines: list[bytes]) -> None:
    assert process.stderr is not None
    async for line in process.stderr:
        lines.append(line)


DISCORD_MODES = {
    "off": "Discord off (no DISCORD_TOKEN: discord.py not even imported)",
    "simcord": "Discord on SimCord (in-process fake Discord, counted in the RSS too)",
}


def launch_with_simcord() -> None:
    """`mini-mentorship run` itself (bot.cli.main), with Discord's gateway swapped for SimCord: the
    real discord.py client logs in, syncs its commands and idles, against an in-memory Discord
    (a guild with a mentors' channel, a Mentor role and 50 members) that lives in this process."""
    import simcord

    import bot.cli
    import handlers.discord
    from bot.cli import main as cli
    from bot.runtime import Runtime

    async def serve_on_simcord(runtime: Runtime) -> None:
        bot = handlers.discord.build_bot(runtime.settings, runtime=runtime)
        async with simcord.run(bot) as env:
            guild = env.create_guild("Bootcamp", id=runtime.settings.discord_guild_id)
            mentor = guild.create_role("Mentor")
            feed = guild.create_text_channel("mentors")
            runtime.settings.discord_mentor_channel_id = feed.id
            runtime.settings.discord_mentor_role_id = mentor.id
            for i in range(50):
                guild.add_member(env.create_user(f"user{i}"), roles=[mentor] if i < 10 else [])
            await env.settle()
            await asyncio.Event().wait()

    handlers.discord.serve = serve_on_simcord
    # SimCord drives its clock through asyncio's own loop (its timer heap), which uvloop does not
    # have: this run is on asyncio's loop, the one without uvloop installed.
    bot.cli.event_loop_factory = lambda: None
    raise SystemExit(cli(["run"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--open-loop",
        action="store_true",
        help="send without waiting for outcomes (an overload test: the app acks at once, the work queues)",
    )
    parser.add_argument(
        "--discord",
        choices=["off", "simcord", "both"],
        default="both",
        help="Discord off (no token) or on SimCord; both: one run each (default)",
    )
    parser.add_argument("--launch-with-simcord", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.launch_with_simcord:
        launch_with_simcord()
    for discord in ["off", "simcord"] if args.discord == "both" else [args.discord]:
        asyncio.run(run(args.engine, discord, args.open_loop))
        print()


if __name__ == "__main__":
    main()
