"""Burst drain: 300 requests posted at once into one feed channel whose Slack limit is N messages
per second (the fake answers 429 + Retry-After beyond it). Reports drain time against the
limit's minimum (300 / N; bar: ≤ 1.2×), and delivered and duplicate counts.

    .venv/bin/python bench/burst_drain.py                  # N = 10/s, SQLite
    .venv/bin/python bench/burst_drain.py --rate 1         # Slack's real ~1/s (takes 5 minutes)
    .venv/bin/python bench/burst_drain.py --engine postgres
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import postgres_scratch_url
from bot.config import Settings
from bot.domain import Actor, Ok
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from handlers.slack import SlackSender
from storage import migrate

FEED = "C_MENTORS"
BURST = 300


async def run(rate: float, engine: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = postgres_scratch_url() if engine == "postgres" else f"sqlite+aiosqlite:///{folder}/burst.db"
        async with FakeSlack(team_id="T1") as fake:
            students = [Actor("slack", "T1", f"U{i:04d}", f"Student {i}", "UTC") for i in range(BURST // 2)]
            for student in students:
                fake.add_user(student.user_id)
            fake.add_channel(FEED, members=["U_MENTOR"])
            fake.rate_limit("chat.postMessage", per_channel_per_second=rate)
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                database_url=url,
                slack_bot_token="xoxb-bench",
                slack_signing_secret="s",
                slack_api_url=fake.url,
                slack_mentor_channel=FEED,
                max_open_requests_per_student=2,
            )
            runtime = Runtime(settings)
            await migrate.upgrade(runtime.db)  # a fresh database on either engine
            # A hair over the limit's interval: Slack counts in a rolling second.
            runtime.delivery.add_sender(SlackSender(settings, min_interval=1.02 / rate))
            form = {
                "title": "Help with my first pull request",
                "session_type": "code_review",
                "description": "I'd like someone to look at my first open-source pull request.",
                "duration": "30",
                "urgency": "normal",
            }
            today = runtime.clock.now().date().isoformat()
            form.update(available_from=today, available_until=today)

            started = time.perf_counter()
            created = await asyncio.gather(
                *(runtime.mentorship.create_request(s, form) for s in students for _ in range(2))
            )
            accepted = time.perf_counter() - started
            assert all(isinstance(r, Ok) for r in created), [r for r in created if not isinstance(r, Ok)][:3]

            drain_started = time.perf_counter()
            while True:
                await runtime.delivery.run_once()
                if len(fake.messages.get(FEED, [])) >= BURST:
                    pending = await _pending(runtime)
                    if pending == 0:
                        break
                await asyncio.sleep(0.05)  # wait out a Retry-After pause
            drain = time.perf_counter() - drain_started

            cards = fake.messages.get(FEED, [])
            per_request = Counter(_request_of(m) for m in cards)
            duplicates = sum(count - 1 for count in per_request.values() if count > 1)
            limited = sum(1 for c in fake.calls_to("chat.postMessage") if c.error == "ratelimited")
            minimum = BURST / rate
            print(f"engine {engine}; limit {rate:g} message(s)/s per channel; burst of {BURST} requests")
            print(f"  requests accepted in  {accepted:6.2f} s")
            print(
                f"  feed drained in       {drain:6.2f} s (minimum {minimum:.1f} s) → {drain / minimum:.2f}× "
                f"(bar ≤ 1.2×) {'ok' if drain / minimum <= 1.2 else 'MISSES THE BAR'}"
            )
            print(
                f"  cards delivered       {len(per_request)} of {BURST}; duplicates {duplicates}; "
                f"429s received {limited}"
            )
            dms = sum(len(v) for k, v in fake.messages.items() if k.startswith("D"))
            print(f"  student DMs delivered {dms} of {BURST}")
            await runtime.close()


async def _pending(runtime: Runtime) -> int:
    from sqlalchemy import func, select

    from storage.models import Notification

    async with runtime.db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status.in_(["pending", "sending"]))
            )
            or 0
        )


def _request_of(message: dict[str, object]) -> str:
    for block in message.get("blocks", []) or []:  # type: ignore[attr-defined]
        for element in block.get("elements", []) or []:
            if element.get("action_id") == "mm_claim":
                return str(element.get("value"))
    return str(message.get("ts"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second per channel")
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.engine))


if __name__ == "__main__":
    main()
