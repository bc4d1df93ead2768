"""Scale-out: N `mini-mentorship slack --http` processes and M `mini-mentorship jobs` processes on
one PostgreSQL, signed Claim clicks alternated between the web processes (a round-robin load
balancer, done by the load generator), clicks per second for N = 1 and N = 2 and their ratio.

A click is done when the clicker has been told (response_url, or the ephemeral fallback) and the
request's card in the feed has been updated. `--window` clicks are kept in flight, each on its
own open request, each by the next of 100 mentors in turn (capacity 10 each).

With `--faults`, one run with N = 2 and M = 2 while things break: the fake Slack fails 20 % of
calls (429 with Retry-After: 1, 500, or answers only after a delay: see the note printed), one
web process is SIGKILLed and restarted, one jobs process is SIGKILLed for good, and PostgreSQL is
restarted once. Sessions scheduled beforehand have reminders falling due during the run. A click
that got no answer, a refused connection or "something went wrong" is clicked again (a second
Claim click is safe: the request is claimed once). Afterwards it counts, from what the fake Slack
received and what the database says: lost / duplicated clicks, cards, DMs and reminders, and the
failures with their reasons.

PostgreSQL is a throwaway cluster of this bench's own (`initdb` + `pg_ctl` from
/usr/lib/postgresql/*/bin, on a free port in a temporary folder, removed afterwards), so
restarting it disturbs no one else's database.

    .venv/bin/python bench/scale_out.py                    # N = 1 and 2, M = 1
    .venv/bin/python bench/scale_out.py --faults           # N = 2, M = 2, with faults
    .venv/bin/python bench/scale_out.py --clicks 150       # a shorter run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from sqlalchemy import func, select

from bench.interaction_latency import (
    FEED,
    MENTOR_POOL,
    TEAM,
    Card,
    child_env,
    claim_payload,
    free_port,
    mentors,
    populate,
    seed,
    settings_for,
    signed,
)
from bot.domain import Actor, Ok
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack_sender import SlackSender
from modals.slack import GENERIC_ERROR
from storage.db import Database
from storage.models import Notification, Request

READY_TIMEOUT = 60.0
ANSWER_TIMEOUT = 10.0  # a click not answered by then is clicked again
MAX_TRIES = 6
SETTLE_TIMEOUT = 300.0  # after the clicks: for retried deliveries (backoff, Retry-After) to land
FAULT_FRACTION = 0.2
FAULT_DELAY = 2.0  # the fake's "slow answer": up to this many seconds, then it answers
REMINDER_SESSIONS = 20


# A throwaway PostgreSQL cluster -----------------------------------------------------------------


class Cluster:
    """initdb + pg_ctl in a temporary folder, on a free port; run as `postgres` when we are root
    (initdb refuses root)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise SystemExit("no /usr/lib/postgresql/*/bin/pg_ctl: install PostgreSQL's server binaries")
        self.bin = Path(found[-1]).parent
        self.folder = Path(tempfile.mkdtemp(prefix="mm_scale_pg_"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        # Output to files, never to pipes: the server pg_ctl starts would hold a pipe open forever.
        with (self.folder / "pg_ctl.out").open("ab") as out:
            subprocess.run([*self._as, *args], check=True, stdout=out, stderr=out, cwd=self.folder)

    def _options(self) -> str:
        return f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300"

    def start(self) -> None:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self._ctl("start")

    def cpu_seconds(self) -> float:
        """CPU time of the whole server so far: the postmaster with its reaped backends, plus
        the live ones."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        total = _cpu(postmaster, children=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _ppid(int(entry.name)) == postmaster:
                total += _cpu(int(entry.name))
        return total

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def _ctl(self, action: str, *extra: str) -> None:
        log = str(self.folder / "log")
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            self._options(),
            "-l",
            log,
            *extra,
            "-w",
            action,
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _ppid(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[1]) if fields else 0


def _cpu(pid: int, *, children: bool = False) -> float:
    """User + system seconds of a process (and of its waited-for children, if asked)."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


# The processes under test -----------------------------------------------------------------------


@dataclass
class Proc:
    kind: str  # "web" | "jobs"
    env: dict[str, str]
    folder: Path
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    log: IO[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self) -> None:
        self.starts += 1
        if self.kind == "web":
            command = [sys.executable, "-m", "bot", "slack", "--http", "--port", str(self.port)]
        else:
            command = [sys.executable, "-m", "bot", "jobs"]
        self.log = (self.folder / f"{self.kind}{self.port}-{self.starts}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            *command, env=self.env, cwd=self.folder, stdout=self.log, stderr=self.log
        )
        if self.kind == "web":
            await self._wait_ready()

    async def start_supervised(self, tries: int = 5) -> int:
        """start(), again after a failed start-up (as a supervisor would): with the fake Slack
        failing calls, the start-up check of the token can fail. Returns the failed starts."""
        for failed in range(tries):
            try:
                await self.start()
                return failed
            except RuntimeError:
                await asyncio.sleep(1.0)
        raise RuntimeError(f"a web process failed to start {tries} times: {self.logs()}")

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise RuntimeError(f"a web process exited with {self.process.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.post(self.url, data=b"") as response:  # unsigned: 401 = listening
                        await response.read()
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("a web process did not start in time")

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.log is not None:
            self.log.close()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.folder.glob("*.log")))


def process_env(base: dict[str, str], database_url: str) -> dict[str, str]:
    env = dict(base)
    env.update(DATABASE_URL=database_url)
    return env


# Clicks -------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    card: Card
    clicker: str
    done_at: float = 0.0
    answered_at: float = 0.0
    sent_at: float = 0.0
    answer: str = ""
    tries: int = 0
    reasons: list[str] = field(default_factory=list)


class Watcher:
    """What the fake Slack received, indexed as it comes: replies by response_url key and by user
    (the ephemeral fallback), and the first card update after each moment, by card ts."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.by_key: dict[str, str] = {}
        self.by_user: dict[str, list[tuple[int, str]]] = {}
        self.card_updates: dict[str, list[float]] = {}
        self._calls = 0
        self._ephemerals = 0

    def refresh(self) -> None:
        for call in self.fake.calls[self._calls :]:
            if call.method == "chat.update" and call.ok:
                self.card_updates.setdefault(str(call.args.get("ts")), []).append(call.at)
        self._calls = len(self.fake.calls)
        for index, entry in enumerate(self.fake.ephemerals[self._ephemerals :], start=self._ephemerals):
            text = str(entry.get("text") or "")
            if entry.get("source") == "response_url":
                self.by_key.setdefault(str(entry.get("key")), text)
            elif entry.get("user"):
                self.by_user.setdefault(str(entry["user"]), []).append((index, text))
        self._ephemerals = len(self.fake.ephemerals)

    def answer(self, key: str, user: str, since_index: int) -> str | None:
        if key in self.by_key:
            return self.by_key[key]
        for index, text in self.by_user.get(user, []):
            if index >= since_index:
                return text
        return None

    def card_updated_after(self, ts: str, moment: float) -> bool:
        return any(at >= moment for at in self.card_updates.get(ts, []))


_KEYS = itertools.count(1)
_TARGET = itertools.count()
_CLICKER = itertools.count()


async def click(
    http: aiohttp.ClientSession, webs: list[Proc], fake: FakeSlack, watcher: Watcher, card: Card
) -> Outcome:
    """Claim `card` through the web processes in turn until someone tells the clicker it worked."""
    import json
    from urllib.parse import urlencode

    outcome = Outcome(card, f"UM{next(_CLICKER) % MENTOR_POOL:02d}")
    started = outcome.sent_at = time.monotonic()
    while outcome.tries < MAX_TRIES:
        outcome.tries += 1
        web = webs[next(_TARGET) % len(webs)]
        key = f"s{next(_KEYS)}"
        body = urlencode({"payload": json.dumps(claim_payload(fake, outcome.clicker, card, key))}).encode()
        since = len(fake.ephemerals)
        try:
            async with http.post(web.url, data=body, headers=signed(body)) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError) as exc:
            outcome.reasons.append(f"web process unreachable ({type(exc).__name__})")
            await asyncio.sleep(0.2)
            continue
        if status != 200:
            outcome.reasons.append(f"HTTP {status} from a web process")
            await asyncio.sleep(0.2)
            continue
        deadline = time.monotonic() + ANSWER_TIMEOUT
        answer = None
        while answer is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            answer = watcher.answer(key, outcome.clicker, since)
        if answer is None:
            outcome.reasons.append(f"no answer within {ANSWER_TIMEOUT:.0f} s")
            continue
        if answer == GENERIC_ERROR:
            outcome.reasons.append("told 'something went wrong'")
            await asyncio.sleep(0.5)
            continue
        outcome.answer = answer
        outcome.answered_at = time.monotonic()
        break
    # Done when the card shows it too (no deadline here: the settle phase counts what never came).
    await until(lambda: watcher.card_updated_after(card.ts, started), started + 60, 0.01)
    outcome.done_at = time.monotonic()
    return outcome


async def until(done: Any, deadline: float, every: float = 0.5) -> bool:
    """Poll `done()` until it is true (True) or `deadline` (monotonic) passes (False)."""
    while True:
        if done():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


async def refresher(watcher: Watcher) -> None:
    while True:
        watcher.refresh()
        await asyncio.sleep(0.005)


async def drive(
    webs: list[Proc], fake: FakeSlack, cards: list[Card], window: int, on_progress: Any = None
) -> tuple[list[Outcome], float]:
    """All `cards` clicked, `window` at a time; returns the outcomes and the seconds it took."""
    watcher = Watcher(fake)
    watcher.refresh()
    watching = asyncio.ensure_future(refresher(watcher))
    queue = iter(cards)
    outcomes: list[Outcome] = []
    started = time.monotonic()

    async def worker(http: aiohttp.ClientSession) -> None:
        for card in queue:
            outcomes.append(await click(http, webs, fake, watcher, card))
            if on_progress is not None:
                await on_progress(len(outcomes))

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(10)
            tries = sum(o.tries - 1 for o in outcomes)
            print(
                f"    … {len(outcomes)}/{len(cards)} clicks done after {time.monotonic() - started:.0f} s ({tries} retries)"
            )

    reporting = asyncio.ensure_future(report_progress())
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await asyncio.gather(*(worker(http) for _ in range(window)))
    finally:
        watching.cancel()
        reporting.cancel()
    return outcomes, time.monotonic() - started


# Seeding ------------------------------------------------------------------------------------------


async def seed_reminders(
    settings: Any, fake: FakeSlack, count: int, first_student: int
) -> tuple[list[int], datetime]:
    """`count` requests claimed and scheduled now, each with one reminder for student and mentor
    falling due at the next whole minute at least 20 s away (during the run that follows)."""
    now = datetime.now(UTC)
    due = (now + timedelta(seconds=80)).replace(second=0, microsecond=0)
    starts = due + timedelta(minutes=15)
    remind = settings.model_copy(update={"reminder_offsets": "15m", "mentor_default_capacity": 10})
    cards = await seed(remind, fake, count, first_student=first_student)
    runtime = Runtime(remind)
    runtime.delivery.add_sender(SlackSender(remind, min_interval=0))
    for i, card in enumerate(cards):
        mentor = Actor("slack", TEAM, f"UR{i:02d}", f"remindmentor{i}", "UTC", is_mentor=True)
        claimed = await runtime.mentorship.claim(mentor, card.request_id)
        assert isinstance(claimed, Ok), claimed
        scheduled = await runtime.mentorship.schedule(
            mentor, card.request_id, {"starts_at": starts.strftime("%Y-%m-%d %H:%M"), "meeting_url": ""}
        )
        assert isinstance(scheduled, Ok), scheduled
    while (await runtime.delivery.run_once()).handled:
        pass
    await runtime.close()
    return [c.request_id for c in cards], due


# Counting -----------------------------------------------------------------------------------------


def _metadata_kind(message: dict[str, Any]) -> tuple[str, Any]:
    payload = (message.get("metadata") or {}).get("event_payload") or {}
    return str(payload.get("kind") or ""), payload.get("request")


def tally(fake: FakeSlack) -> Counter[tuple[str, str, Any]]:
    """(channel, kind, request) -> messages the fake holds, from the metadata our sender tags."""
    counts: Counter[tuple[str, str, Any]] = Counter()
    for channel, messages in fake.messages.items():
        for message in messages:
            kind, request = _metadata_kind(message)
            if kind:
                counts[(channel, kind, request)] += 1
    return counts


async def leased(url: str) -> int:
    """Outbox rows still "sending" (leased)."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            count = await session.scalar(
                select(func.count()).select_from(Notification).where(Notification.status == "sending")
            )
    finally:
        await db.dispose()
    return int(count or 0)


async def database_report(
    url: str, request_ids: list[int]
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            statuses: Counter[str] = Counter(
                dict(
                    (
                        await session.execute(
                            select(Request.status, func.count())
                            .where(Request.id.in_(request_ids))
                            .group_by(Request.status)
                        )
                    ).all()
                )
            )
            outbox: Counter[str] = Counter(
                dict(
                    (
                        await session.execute(
                            select(Notification.status, func.count()).group_by(Notification.status)
                        )
                    ).all()
                )
            )
            # Failed and skipped rows with their reasons: a skip is a message no longer owed
            # (the state moved on), and the report says which, so none hides a loss.
            not_sent = Counter(
                f"{status} {kind}: {reason}"
                for status, kind, reason in (
                    await session.execute(
                        select(Notification.status, Notification.kind, Notification.failed_reason).where(
                            Notification.status.in_(("failed", "skipped"))
                        )
                    )
                ).all()
            )
            # Rows still owed at the end (a retry due later, with backoff): what they are and why.
            not_sent.update(
                f"still {status} {kind} after {attempts} attempt(s), last error: {reason}"
                for status, kind, attempts, reason in (
                    await session.execute(
                        select(
                            Notification.status,
                            Notification.kind,
                            Notification.attempts,
                            Notification.failed_reason,
                        ).where(Notification.status.in_(("pending", "sending")))
                    )
                ).all()
            )
    finally:
        await db.dispose()
    return statuses, outbox, not_sent


# The runs -----------------------------------------------------------------------------------------


async def throughput(args: argparse.Namespace) -> None:
    cluster = Cluster()
    cluster.start()
    folder = Path(tempfile.mkdtemp(prefix="mm_scale_"))
    try:
        url = cluster.url
        levels = [int(n) for n in args.web.split(",")]
        async with FakeSlack(team_id=TEAM) as fake:
            total = args.clicks * len(levels)
            populate(fake, total)
            settings = settings_for(fake, url, max_open_requests_per_student=5)
            started = time.perf_counter()
            cards = await seed(settings, fake, total)
            print(
                f"PostgreSQL {cluster.bin.parent.name} (own cluster, port {cluster.port}); {total} open "
                f"requests seeded with their cards in {time.perf_counter() - started:.1f} s; "
                f"{os.cpu_count()} CPUs; {args.jobs} jobs process(es); {args.window} clicks in flight"
            )
            env = process_env(child_env(settings, 0.0), url)
            rates: dict[int, float] = {}
            answered: dict[int, float] = {}
            for index, n in enumerate(levels):
                batch = cards[index * args.clicks : (index + 1) * args.clicks]
                webs = [Proc("web", env, folder, port=free_port()) for _ in range(n)]
                jobs = [Proc("jobs", env, folder) for _ in range(args.jobs)]
                await asyncio.gather(*(p.start() for p in [*webs, *jobs]))
                try:
                    await warm_up(webs, fake)
                    before = cpu_split(webs, jobs, cluster)
                    outcomes, seconds = await drive(webs, fake, batch, args.window)
                    used = {k: v - before[k] for k, v in cpu_split(webs, jobs, cluster).items()}
                finally:
                    await asyncio.gather(*(p.stop() for p in [*webs, *jobs]))
                done = [o for o in outcomes if o.answer.startswith("✅ You claimed")]
                rates[n] = len(done) / seconds
                span = max(o.answered_at for o in outcomes) - min(o.sent_at for o in outcomes)
                answered[n] = len(done) / span
                retried = sum(o.tries > 1 for o in outcomes)
                print(
                    f"  N={n} web, M={args.jobs} jobs: {len(done)}/{len(outcomes)} clicks claimed and "
                    f"card updated in {seconds:.2f} s: {rates[n]:6.1f} clicks/s (answered: {answered[n]:.1f}/s)"
                    + (f" ({retried} clicked again)" if retried else "")
                )
                print(
                    "      CPU seconds used meanwhile (of "
                    f"{seconds * (os.cpu_count() or 1):.1f} the machine had): "
                    + ", ".join(f"{k} {v:.1f}" for k, v in used.items())
                )
            if 1 in rates and 2 in rates:
                ratio = rates[2] / rates[1]
                verdict = "ok" if ratio >= 1.6 else "MISSES THE BAR"
                print(f"  2 web processes / 1: {ratio:.2f}×  (bar ≥ 1.6×)  {verdict}")
                print(f"  clicks answered per second, 2 / 1: {answered[2] / answered[1]:.2f}×")
            assert fake.validation_errors == [], fake.validation_errors[:3]
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def cpu_split(webs: list[Proc], jobs: list[Proc], cluster: Cluster) -> dict[str, float]:
    """CPU seconds so far: the web processes, the jobs processes, this process (the load
    generator and the fake Slack) and PostgreSQL."""
    return {
        "web": sum(_cpu(p.process.pid) for p in webs if p.process is not None),
        "jobs": sum(_cpu(p.process.pid) for p in jobs if p.process is not None),
        "load generator + fake Slack": time.process_time(),
        "PostgreSQL": cluster.cpu_seconds(),
    }


async def warm_up(webs: list[Proc], fake: FakeSlack) -> None:
    """Fill each process's caches (users.info, the channel's members) with clicks on a request
    that doesn't exist: nothing is claimed."""
    import json
    from urllib.parse import urlencode

    ghost = Card(0, "0.000000", "mm_claim", "99999999")
    async with aiohttp.ClientSession() as http:
        for web in webs:
            for user in mentors():
                body = urlencode({"payload": json.dumps(claim_payload(fake, user, ghost, "warm"))}).encode()
                async with http.post(web.url, data=body, headers=signed(body)) as response:
                    await response.read()
    await asyncio.sleep(1.0)


async def with_faults(args: argparse.Namespace) -> None:
    cluster = Cluster()
    cluster.start()
    folder = Path(tempfile.mkdtemp(prefix="mm_scale_"))
    processes: list[Proc] = []
    try:
        url = cluster.url
        async with FakeSlack(team_id=TEAM) as fake:
            populate(fake, args.clicks + REMINDER_SESSIONS)
            for i in range(REMINDER_SESSIONS):
                fake.add_user(f"UR{i:02d}", name=f"remindmentor{i}")
            fake.add_channel(
                FEED, members=[*mentors(), *(f"UR{i:02d}" for i in range(REMINDER_SESSIONS)), "UBOT"]
            )
            settings = settings_for(fake, url, max_open_requests_per_student=5)
            cards = await seed(settings, fake, args.clicks)
            reminded, due = await seed_reminders(settings, fake, REMINDER_SESSIONS, args.clicks)
            before = tally(fake)
            env = process_env(child_env(settings, 0.0), url)
            webs = [Proc("web", env, folder, port=free_port()) for _ in range(2)]
            jobs = [Proc("jobs", env, folder) for _ in range(2)]
            processes += [*webs, *jobs]
            await asyncio.gather(*(p.start() for p in [*webs, *jobs]))
            print(
                f"PostgreSQL {cluster.bin.parent.name} (own cluster, port {cluster.port}); {args.clicks} "
                f"requests to claim, {REMINDER_SESSIONS} scheduled sessions with reminders due at "
                f"{due:%H:%M:%S} UTC; 2 web + 2 jobs processes; {args.window} clicks in flight"
            )
            await warm_up(webs, fake)
            fake.fail_randomly(FAULT_FRACTION, seed=13, max_delay=FAULT_DELAY)
            events: list[str] = []
            fired: set[str] = set()
            t0 = time.monotonic()

            def at(text: str) -> None:
                events.append(f"  {time.monotonic() - t0:6.1f} s  {text}")

            async def restart_web() -> None:
                await asyncio.sleep(2.0)
                failed = await webs[0].start_supervised()
                at(
                    "web process 1 restarted"
                    + (f" (after {failed} failed start-up checks)" if failed else "")
                )

            restarts: list[asyncio.Task[None]] = []

            async def progress(done: int) -> None:
                share = done / args.clicks
                if share >= 0.2 and "web" not in fired:
                    fired.add("web")
                    webs[0].kill()
                    at("web process 1 SIGKILLed")
                    restarts.append(asyncio.ensure_future(restart_web()))
                if share >= 0.4 and "jobs" not in fired:
                    fired.add("jobs")
                    jobs[0].kill()
                    at("jobs process 1 SIGKILLed (not restarted)")
                if share >= 0.6 and "pg" not in fired:
                    fired.add("pg")
                    at("PostgreSQL restart begins")
                    await asyncio.to_thread(cluster.restart)
                    at("PostgreSQL back")

            at(f"fake Slack fails {FAULT_FRACTION:.0%} of calls from now on")
            outcomes, seconds = await drive(webs, fake, cards, args.window, progress)
            await asyncio.gather(*restarts)
            at(f"all {len(outcomes)} clicks answered; the fake keeps failing until the reminders are due")
            await until(lambda: datetime.now(UTC) >= due + timedelta(seconds=10), time.monotonic() + 120)
            fake.clear_faults()
            at("faults off; waiting for retried deliveries to land")
            claimed_ids = [o.card.request_id for o in outcomes]

            def settled() -> bool:
                counts = tally(fake)
                dms = sum(
                    1
                    for (ch, kind, req), n in counts.items()
                    if kind == "request_claimed" and req in claimed_ids
                )
                reminders = sum(
                    1 for (ch, kind, req), n in counts.items() if kind == "reminder" and req in reminded
                )
                feed = {str(m.get("ts")): str(m.get("text") or "") for m in fake.messages.get(FEED, [])}
                # Rows leased by a killed process come due again when its lease (2 min) runs out.
                cards_shown = all("Claimed" in feed.get(o.card.ts, "") for o in outcomes)
                return dms >= len(claimed_ids) and reminders >= 2 * len(reminded) and cards_shown

            deadline = time.monotonic() + SETTLE_TIMEOUT
            await until(settled, deadline)
            # Rows leased by the killed processes stay "sending" until their lease (2 min) runs
            # out; then a live worker looks for each message before sending it again. Wait for
            # that too, so that a message sent twice would be counted.
            at("everything shown; waiting for the dead processes' leases to run out and be retried")
            while True:
                if not await leased(url) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(2.0)
            await asyncio.sleep(3.0)  # anything late and doubled would show now
            at("settled" if settled() else f"gave up waiting after {SETTLE_TIMEOUT:.0f} s")
            await asyncio.gather(*(p.stop() for p in [*webs, *jobs]))
            statuses, outbox, not_sent = await database_report(url, claimed_ids)
            report(
                fake,
                outcomes,
                seconds,
                events,
                before,
                claimed_ids,
                reminded,
                cards,
                statuses,
                outbox,
                not_sent,
            )
    finally:
        await asyncio.gather(*(p.stop() for p in processes))
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def report(
    fake: FakeSlack,
    outcomes: list[Outcome],
    seconds: float,
    events: list[str],
    before: Counter[tuple[str, str, Any]],
    claimed_ids: list[int],
    reminded: list[int],
    cards: list[Card],
    statuses: Counter[str],
    outbox: Counter[str],
    not_sent: Counter[str],
) -> None:
    print("\n".join(events))
    counts = tally(fake)
    card_msgs = Counter({req: n for (ch, kind, req), n in counts.items() if ch == FEED and kind == "card"})
    feed = {str(m.get("ts")): m for m in fake.messages.get(FEED, [])}
    card_final = [str(feed.get(c.ts, {}).get("text") or "") for c in cards]
    dms = Counter({req: n for (ch, kind, req), n in counts.items() if kind == "request_claimed"})
    reminders: Counter[tuple[str, Any]] = Counter(
        {
            (ch, req): n - before.get((ch, kind, req), 0)
            for (ch, kind, req), n in counts.items()
            if kind == "reminder"
        }
    )
    answered = [o for o in outcomes if o.answer]
    good = [o for o in answered if "claimed" in o.answer.lower()]
    retried = [o for o in outcomes if o.tries > 1]
    reasons = Counter(r for o in outcomes for r in o.reasons)
    print(f"\n{len(outcomes)} clicks in {seconds:.1f} s ({len(outcomes) / seconds:.1f}/s under faults)")
    print("                      lost  duplicated  notes")
    print(
        f"  clicks              {len(outcomes) - len(good):4}  {'—':>10}  {len(answered)} answered, "
        f"{len(good)} told they claimed it, {len(retried)} clicked again; requests claimed in the "
        f"database: {statuses.get('claimed', 0)}/{len(claimed_ids)}"
    )
    print(
        f"  cards               {sum('Claimed' not in t for t in card_final):4}  "
        f"{sum(n - 1 for n in card_msgs.values() if n > 1):10}  {len(card_msgs)} cards, each in the "
        f"feed once; final text shows 'Claimed' on {sum('Claimed' in t for t in card_final)}"
    )
    print(
        f"  DMs (claimed)       {sum(1 for r in claimed_ids if dms.get(r, 0) == 0):4}  "
        f"{sum(n - 1 for r, n in dms.items() if r in claimed_ids and n > 1):10}  "
        f"students told a mentor claimed: {sum(1 for r in claimed_ids if dms.get(r, 0) >= 1)}/{len(claimed_ids)}"
    )
    expected = 2 * len(reminded)
    got = sum(1 for (ch, req), n in reminders.items() if req in reminded and n >= 1)
    print(
        f"  reminders           {expected - got:4}  "
        f"{sum(n - 1 for (ch, req), n in reminders.items() if req in reminded and n > 1):10}  "
        f"{got}/{expected} (student and mentor of {len(reminded)} sessions)"
    )
    print(f"  outbox rows by status: {dict(outbox)}")
    print(
        "  failed, skipped or still owed, with reason (outbox rows given up, no longer owed, or retried later):",
        dict(not_sent) or "none",
    )
    print("  clicks retried, by reason:", dict(reasons) or "none")
    faults = Counter(c.error or "" for c in fake.calls if not c.ok)
    print(
        f"  fake Slack calls failed: {sum(faults.values())} of {len(fake.calls)}: {dict(faults.most_common(6))}"
    )
    assert fake.validation_errors == [], fake.validation_errors[:3]


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--web", default="1,2", help="web process counts to compare (default 1,2)")
    parser.add_argument("--jobs", type=int, default=1, help="jobs processes beside them (default 1)")
    parser.add_argument("--clicks", type=int, default=300, help="clicks per level (default 300)")
    parser.add_argument("--window", type=int, default=50, help="clicks in flight (default 50)")
    parser.add_argument("--faults", action="store_true", help="N=2, M=2, with the faults listed above")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, _interrupted)  # so the finally blocks stop the processes and cluster
    asyncio.run(with_faults(args) if args.faults else throughput(args))


if __name__ == "__main__":
    main()
