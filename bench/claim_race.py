"""Claim race: 50 mentors click Claim on the same request at the same moment, 20 times over (a new
request each time), as signed HTTP requests to the Slack app in HTTP mode, with the fake Slack and
PostgreSQL. Bar (docs/quality.md): exactly 1 winner, 49 told who has it, 0 errors.

Reports per race: winners (replies saying "You claimed" and the database's claimed_by, which must
agree), losers told "Already claimed by <the winner>", errors (a non-200 answer, no reply, or any
other reply); and over all clicks the p50/p99 of the ack (HTTP answer) and of click → the clicker's
ephemeral answer reaching Slack (the response_url post).

The app runs in its own process exactly as in bench/interaction_latency.py (the CLI's wiring,
with Slack's real 1 message/s pacing of the feed channel: each race updates the card once).

    .venv/bin/python bench/claim_race.py                  # PostgreSQL at TEST_POSTGRES_URL
    .venv/bin/python bench/claim_race.py --engine sqlite
    .venv/bin/python bench/claim_race.py --races 5 --clickers 20
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

import aiohttp
from sqlalchemy import select

from bench.common import postgres_scratch_url
from bench.interaction_latency import (
    MENTOR_POOL,
    TEAM,
    Arrivals,
    Click,
    claim_payload,
    mentors,
    percentile,
    populate,
    seed,
    send,
    settings_for,
    start_server,
    stop_server,
    warm_up,
)
from fakes.slack_api import FakeSlack
from storage.db import Database
from storage.models import Member, Request


async def run(engine: str, races: int, clickers: int) -> None:
    assert clickers <= MENTOR_POOL, f"at most {MENTOR_POOL} clickers"
    with tempfile.TemporaryDirectory() as folder:
        url = (
            postgres_scratch_url("mm_bench_race")
            if engine == "postgres"
            else f"sqlite+aiosqlite:///{folder}/race.db"
        )
        async with FakeSlack(team_id=TEAM) as fake:
            populate(fake, races)
            settings = settings_for(fake, url)
            cards = await seed(settings, fake, races)
            names = {user: str(fake.users[user]["name"]) for user in mentors()}
            server = await start_server("app", settings)
            acks: list[float] = []
            told: list[float] = []
            winners_per_race: list[int] = []
            db_winner_agrees = 0
            losers_told = 0
            errors = 0
            updates_per_card: Counter[str] = Counter()
            arrivals = Arrivals(fake)
            db = Database(url)
            started = time.perf_counter()  # reset after the warm-up
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                    await warm_up(http, server, fake)
                    started = time.perf_counter()
                    pool = mentors()
                    for race, card in enumerate(cards):
                        # A different half of the 100 mentors each race: nobody clicks in more
                        # than 10 races, so nobody is ever told they're at their limit of 10
                        # (the winner of one race would otherwise be, while the next is open).
                        users = [pool[(race * clickers + i) % len(pool)] for i in range(clickers)]
                        clicks = [Click(f"race-{card.request_id}-{u}", card.ts, 0.0) for u in users]
                        payloads = [
                            claim_payload(fake, u, card, c.key) for u, c in zip(users, clicks, strict=True)
                        ]
                        await asyncio.gather(
                            *(send(http, server.url, p, c) for p, c in zip(payloads, clicks, strict=True))
                        )

                        def answered(clicks: list[Click] = clicks, ts: str = card.ts) -> bool:
                            return ts in arrivals.card_updated and all(
                                c.key in arrivals.replies for c in clicks
                            )

                        await arrivals.wait_for(answered, time.monotonic() + 60, "the race's replies")
                        winners: list[str] = []
                        texts: dict[str, str] = {}
                        for user, click in zip(users, clicks, strict=True):
                            acks.append(click.ack)
                            replies = arrivals.replies.get(click.key, [])
                            if click.status != 200 or len(replies) != 1:
                                errors += 1
                                continue
                            at, text = replies[0]
                            told.append(at - click.sent_at)
                            texts[user] = text
                            if "You claimed" in text:
                                winners.append(user)
                        winners_per_race.append(len(winners))
                        if len(winners) == 1:
                            expected = f"Already claimed by {names[winners[0]]}."
                            for user, text in texts.items():
                                if user == winners[0]:
                                    continue
                                if text == expected:
                                    losers_told += 1
                                else:
                                    errors += 1
                            async with db.transaction() as session:
                                claimer = await session.scalar(
                                    select(Member.external_id)
                                    .join(Request, Request.claimed_by_id == Member.id)
                                    .where(Request.id == card.request_id)
                                )
                            db_winner_agrees += claimer == winners[0]
                    # Every card update the races caused has arrived by now (one per race).
                    arrivals.refresh()
                    for call in fake.calls_to("chat.update"):
                        updates_per_card[str(call.args.get("ts"))] += call.ok
            finally:
                await stop_server(server)
                await db.dispose()
            elapsed = time.perf_counter() - started

            print(f"engine {engine}; {races} races of {clickers} simultaneous Claim clicks ({elapsed:.1f} s)")
            distribution = Counter(winners_per_race)
            print(
                f"  winners per request   {dict(sorted(distribution.items()))} (winners: races)  "
                f"{'ok' if set(distribution) == {1} else 'MISSES THE BAR'}"
            )
            print(
                f"  database agrees       {db_winner_agrees} of {races} races (claimed_by = the told winner)"
            )
            print(f"  losers told who has it {losers_told} of {races * (clickers - 1)}")
            print(f"  errors                {errors}  {'ok' if errors == 0 else 'MISSES THE BAR'}")
            cards_once = sum(1 for card in cards if updates_per_card[card.ts] == 1)
            print(f"  cards updated once    {cards_once} of {races}")
            print(
                f"  ack                   p50 {percentile(acks, 50) * 1000:7.1f} ms  "
                f"p99 {percentile(acks, 99) * 1000:7.1f} ms  (n={len(acks)})"
            )
            print(
                f"  click → answer told   p50 {percentile(told, 50) * 1000:7.1f} ms  "
                f"p99 {percentile(told, 99) * 1000:7.1f} ms"
            )
            assert fake.validation_errors == [], fake.validation_errors[:3]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--races", type=int, default=20)
    parser.add_argument("--clickers", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.engine, args.races, args.clickers))


if __name__ == "__main__":
    main()
