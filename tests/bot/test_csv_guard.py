"""The CSV export's formula guard: a cell a spreadsheet would run as a formula is kept as text,
whether it starts with the ASCII sign, its full-width form, or invisible characters before it."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Actor, Ok
from bot.stats import Stats, _csv_safe
from storage.db import Database
from storage.models import Request
from tests.bot.test_insight import NOW, Seed


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\t=1",
        '＝HYPERLINK("http://x")',
        "＋1",
        "－1",
        "＠SUM(A1)",
        "\u200b=1",
        "\u200d\u200c=1",
        "\ufeff=1",
        "\u2060@x",
        " =1",
    ],
)
def test_formula_starts_are_guarded(text: str) -> None:
    assert _csv_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["Mock interview", "", "1+1", "a=b", "Ｐython", "\u200bplain"])
def test_plain_text_is_left_alone(text: str) -> None:
    assert _csv_safe(text) == text


GUARDED = ["=1+1", "-1", "\t=1", '＝HYPERLINK("http://x")', "\u200d\u200c=1", "\ufeff=1", " =1", "＠SUM(A1)"]
PLAIN = ["Mock interview", "1+1", "a=b", "Ｐython", "\u200bplain", 'say "hi", then\nleave']


async def test_the_export_guards_the_same_cells_on_both_engines(
    database: Database, settings: Settings
) -> None:
    """PostgreSQL writes the CSV itself (COPY, the guard in SQL); SQLite through Python's csv
    module: the same cells come out guarded, and quotes, commas and newlines survive."""
    seed = Seed(database)
    await seed.member("S", "=Sam")
    await seed.member("M", "+Mia")
    for _ in GUARDED + PLAIN:
        await seed.request(NOW, tags=["-tag", "ok"])
    async with database.transaction() as session:
        for request, title in zip(
            (await session.scalars(select(Request).order_by(Request.id))).all(), GUARDED + PLAIN, strict=True
        ):
            request.title = title
            request.claimed_by_id = seed.members["M"]
    admin = Actor("slack", "T1", "A", is_admin=True)
    report = await Stats(database, settings, ManualClock(NOW)).report(admin)
    assert isinstance(report, Ok)
    rows = list(csv.DictReader(io.StringIO(report.value.csv.decode(), newline="")))
    assert [row["title"] for row in rows] == [_csv_safe(title) for title in GUARDED + PLAIN]
    assert [row["title"][:1] for row in rows[: len(GUARDED)]] == ["'"] * len(GUARDED)
    # Byte for byte what Python's csv module writes, on both engines (PostgreSQL writes it in SQL).
    rewritten = io.StringIO()
    csv.writer(rewritten).writerows(csv.reader(io.StringIO(report.value.csv.decode(), newline="")))
    assert rewritten.getvalue().encode() == report.value.csv
    people = {(row["student"], row["claimed_by"], row["tags"]) for row in rows}
    assert people == {("'=Sam", "'+Mia", "'-tag;ok")}
