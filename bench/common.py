"""Helpers shared by the benchmarks (never imported by the bot or the tests)."""

from __future__ import annotations

import os

import psycopg
from sqlalchemy.engine import make_url

from bot.outbox import Delivered, FeedRef, Outgoing

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_scratch_url(name: str = "mm_bench") -> str:
    """A fresh PostgreSQL database beside TEST_POSTGRES_URL, dropped and recreated."""
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


class CountingSender:
    """A platform that accepts everything instantly: measures our side only."""

    min_interval = 0.0

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.sent = 0

    def channel_key(self, outgoing: Outgoing) -> str:
        return "feed" if outgoing.recipient is None else outgoing.recipient.external_id

    async def deliver(self, outgoing: Outgoing) -> Delivered:
        self.sent += 1
        if outgoing.recipient is None and outgoing.feed_ref is None:
            return Delivered(FeedRef("C_FEED", f"{outgoing.request.id}.000"))
        return Delivered()
