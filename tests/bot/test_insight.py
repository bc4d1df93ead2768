"""The figures behind the charts, against hand-computed expectations, on SQLite and PostgreSQL:
weeks with gaps, instants either side of a week boundary, percentiles, tags, mentors, no data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import ManualClock
from bot.config import Settings
from bot.insight import (
    Aggregates,
    ClaimTimes,
    Figures,
    MentorLoad,
    TagDemand,
    WeekCounts,
    parse_range,
    percentile_cont,
)
from bot.runtime import Runtime
from storage.db import Database
from storage.models import Member, MentorProfile, MentorSession, MentorSkill, Request

NOW = datetime(2030, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday; its week starts Monday 2030-03-04
H = timedelta(hours=1)


class Seed:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.members: dict[str, int] = {}

    async def member(
        self, external_id: str, name: str, workspace: str = "T1", timezone: str | None = None
    ) -> int:
        async with self.db.transaction() as session:
            row = Member(
                platform="slack",
                workspace=workspace,
                external_id=external_id,
                display_name=name,
                timezone=timezone,
                created_at=NOW,
            )
            session.add(row)
            await session.flush()
            self.members[external_id] = row.id
            return row.id

    async def request(
        self,
        created: datetime,
        *,
        status: str = "open",
        urgency: str = "normal",
        tags: list[str] | None = None,
        claimed: datetime | None = None,
        completed: datetime | None = None,
        mentor: str | None = None,
        session_status: str | None = None,
        rating: int | None = None,
        workspace: str = "T1",
    ) -> None:
        async with self.db.transaction() as session:
            request = Request(
                platform="slack",
                workspace=workspace,
                student_id=self.members["S"],
                title="t",
                session_type="other",
                description="d",
                duration_minutes=30,
                available_from=created.date(),
                available_until=created.date(),
                urgency=urgency,
                tags=tags or [],
                status=status,
                created_at=created,
                expires_at=created + timedelta(days=7),
                claimed_by_id=self.members[mentor] if mentor else None,
                claimed_at=claimed,
                completed_at=completed,
            )
            session.add(request)
            await session.flush()
            if session_status is not None and mentor is not None:
                starts = (claimed or created) + H
                session.add(
                    MentorSession(
                        request_id=request.id,
                        mentor_id=self.members[mentor],
                        student_id=self.members["S"],
                        starts_at=starts,
                        ends_at=starts + H,
                        meeting_url="https://x",
                        status=session_status,
                        rating=rating,
                        created_at=starts,
                        updated_at=starts,
                    )
                )


async def figures(db: Database, weeks: int = 4, workspace: str = "T1") -> Figures:
    async with db.transaction() as session:
        return await Aggregates(session).figures("slack", workspace, NOW, weeks)


async def test_no_data_gives_empty_weeks_and_nothing_else(database: Database) -> None:
    result = await figures(database)
    assert result.empty
    assert result.since == date(2030, 2, 11)
    assert [w.week for w in result.weekly] == [
        date(2030, 2, 11),
        date(2030, 2, 18),
        date(2030, 2, 25),
        date(2030, 3, 4),
    ]
    assert all((w.posted, w.claimed, w.completed) == (0, 0, 0) for w in result.weekly)
    assert (result.claim_times, result.tags, result.mentors) == ([], [], [])


async def test_weeks_with_gaps_and_week_boundaries_in_utc(database: Database) -> None:
    seed = Seed(database)
    await seed.member("S", "Sam")
    await seed.member("M", "Mia")
    # Sunday 23:30 in Berlin is Sunday 22:30 UTC: still the week of Monday 2030-02-11.
    berlin = datetime(2030, 2, 17, 23, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    await seed.request(berlin)
    # Monday 00:30 in Berlin is Sunday 23:30 UTC: also that week, not the next one.
    await seed.request(datetime(2030, 2, 18, 0, 30, tzinfo=ZoneInfo("Europe/Berlin")))
    # Sunday 20:00 in New York is Monday 01:00 UTC: the week of 2030-02-18.
    await seed.request(
        datetime(2030, 2, 17, 20, 0, tzinfo=ZoneInfo("America/New_York")),
        status="completed",
        claimed=datetime(2030, 2, 25, 1, 0, tzinfo=UTC),
        completed=datetime(2030, 3, 4, 0, 0, tzinfo=UTC),
        mentor="M",
    )
    # Before the range: not counted (but its claim, inside the range, is).
    await seed.request(
        datetime(2030, 2, 10, 23, 59, tzinfo=UTC),
        status="claimed",
        claimed=datetime(2030, 3, 5, tzinfo=UTC),
        mentor="M",
    )
    # Another workspace: never counted.
    await seed.request(datetime(2030, 3, 5, tzinfo=UTC), workspace="T2")
    # A no-show ends its request as completed, but no session was held: claimed, not completed.
    await seed.request(
        datetime(2030, 2, 25, 9, 0, tzinfo=UTC),
        status="completed",
        claimed=datetime(2030, 2, 25, 10, 0, tzinfo=UTC),
        completed=datetime(2030, 3, 4, 12, 0, tzinfo=UTC),
        mentor="M",
        session_status="no_show",
    )
    result = await figures(database)
    assert result.weekly == [
        WeekCounts(date(2030, 2, 11), 2, 0, 0),
        WeekCounts(date(2030, 2, 18), 1, 0, 0),
        WeekCounts(date(2030, 2, 25), 1, 2, 0),
        WeekCounts(date(2030, 3, 4), 0, 1, 1),
    ]
    assert result.posted == 4 and not result.empty


async def test_time_to_claim_percentiles_per_urgency(database: Database) -> None:
    seed = Seed(database)
    await seed.member("S", "Sam")
    await seed.member("M", "Mia")
    base = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
    for hours in (1, 2, 3, 10):  # normal: claimed after 1, 2, 3 and 10 hours
        await seed.request(base, status="claimed", claimed=base + hours * H, mentor="M")
    await seed.request(
        base, status="claimed", urgency="high", claimed=base + timedelta(minutes=30), mentor="M"
    )
    await seed.request(base, urgency="low")  # never claimed: not in the distribution
    result = await figures(database)
    # percentile_cont over 1, 2, 3, 10 h: positions 0.3, 0.75, 1.5, 2.25, 2.7.
    assert result.claim_times == [
        ClaimTimes("high", 1, *(timedelta(minutes=30),) * 5),
        ClaimTimes(
            "normal",
            4,
            timedelta(hours=1.3),
            timedelta(hours=1.75),
            timedelta(hours=2.5),
            timedelta(hours=4.75),
            timedelta(hours=7.9),
        ),
    ]


async def test_top_tags_and_mentor_load(database: Database) -> None:
    seed = Seed(database)
    await seed.member("S", "Sam")
    await seed.member("M", "Mia")
    await seed.member("N", "Noor")
    day = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
    await seed.request(
        day,
        tags=["python", "career"],
        status="completed",
        claimed=day,
        completed=day + 2 * H,
        mentor="M",
        session_status="completed",
        rating=5,
    )
    await seed.request(
        day,
        tags=["python"],
        status="completed",
        claimed=day,
        completed=day + 2 * H,
        mentor="M",
        session_status="completed",
        rating=4,
    )
    await seed.request(
        day, tags=["python", "sql"], status="completed", claimed=day, mentor="N", session_status="no_show"
    )
    await seed.request(
        day,
        tags=["career"],
        status="completed",
        claimed=day,
        completed=day + 2 * H,
        mentor="N",
        session_status="completed",
    )
    await seed.request(day - timedelta(weeks=8), tags=["old"])  # outside the range
    result = await figures(database)
    assert result.tags == [TagDemand("python", 3), TagDemand("career", 2), TagDemand("sql", 1)]
    assert result.mentors == [MentorLoad("M", "Mia", 2, 0, 4.5, 2), MentorLoad("N", "Noor", 1, 1, None, 0)]


async def test_change_stamp_moves_with_the_data(database: Database) -> None:
    seed = Seed(database)
    await seed.member("S", "Sam")
    async with database.transaction() as session:
        before = await Aggregates(session).stamp("slack", "T1")
    await seed.request(NOW)
    async with database.transaction() as session:
        after = await Aggregates(session).stamp("slack", "T1")
        assert await Aggregates(session).stamp("slack", "T1") == after
    assert before != after


def test_ranges_and_percentiles() -> None:
    assert [parse_range(t) for t in ("", None, "4", "12w", "52", "7", "x")] == [12, 12, 4, 12, 52, None, None]
    assert parse_range("²") is None and parse_range("４") is None  # int() would take or choke on these
    assert percentile_cont([1.0, 2.0, 3.0, 10.0], 0.5) == 2.5
    assert percentile_cont([7.0], 0.9) == 7.0


async def test_report_summary_and_csv_from_aggregates(database: Database, settings: Settings) -> None:
    """The stats summary (bot/stats.py) over the same hand-made data: counts, median, rates,
    per-mentor figures with a request's last session counting, and one CSV row per request."""
    from bot.clock import ManualClock
    from bot.domain import Actor, Ok, Status
    from bot.stats import Stats

    seed = Seed(database)
    await seed.member("S", "Sam")
    await seed.member("M", "=Mia")  # a formula-looking name stays text in the CSV
    await seed.member("N", "Noor")
    day = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
    await seed.request(
        day, status="completed", claimed=day + H, mentor="M", session_status="completed", rating=5
    )
    await seed.request(
        day, status="completed", claimed=day + 3 * H, mentor="M", session_status="completed", rating=2
    )
    await seed.request(day, status="completed", claimed=day + 5 * H, mentor="N", session_status="no_show")
    await seed.request(day, status="claimed", claimed=day + 7 * H, mentor="N")
    await seed.request(day, status="expired", tags=["python"])
    stats = Stats(database, settings, ManualClock(NOW))
    result = await stats.report(Actor("slack", "T1", "U_ADMIN", "Ada", is_admin=True))
    assert isinstance(result, Ok)
    report = result.value
    assert report.total == 5
    assert {s: n for s, n in report.by_status.items() if n} == {
        Status.COMPLETED: 3,
        Status.CLAIMED: 1,
        Status.EXPIRED: 1,
    }
    assert report.median_time_to_claim == 4 * H  # 1, 3, 5, 7 hours
    # Two sessions held of four requests over: the no-show ended its request, but nobody met.
    assert report.completion_rate == 0.5 and report.no_shows == 1
    assert (report.average_rating, report.ratings) == (3.5, 2)
    assert [(m.name, m.claimed, m.completed, m.no_shows, m.average_rating) for m in report.mentors] == [
        ("=Mia", 2, 2, 0, 3.5),
        ("Noor", 2, 0, 1, None),
    ]
    lines = report.csv.decode().splitlines()
    assert len(lines) == 6 and lines[0].startswith("request_id,status,created_at")
    assert lines[1].split(",")[9] == "'=Mia" and lines[1].endswith(",completed,5")
    assert lines[5].split(",")[8] == "python"
    # Instants in ISO 8601, UTC, the same on both engines (made by the database).
    assert lines[1].split(",")[2] == "2030-03-04T08:00:00.000000+00:00"
    assert lines[1].split(",")[10] == "2030-03-04T09:00:00.000000+00:00"
    assert lines[1].split(",")[11] == "2030-03-04T10:00:00.000000+00:00"


async def test_the_csv_and_the_charts_tell_the_same_story(database: Database, settings: Settings) -> None:
    """Counting the CSV's rows by week and by tag gives the charts' figures."""
    from collections import Counter

    from bot.clock import ManualClock
    from bot.domain import Actor, Ok
    from bot.stats import Stats

    seed = Seed(database)
    await seed.member("S", "Sam")
    for days, tags in ((0, ["python"]), (1, ["python", "sql"]), (9, []), (16, ["sql"]), (21, ["go"])):
        await seed.request(datetime(2030, 2, 11, 23, 30, tzinfo=UTC) + timedelta(days=days), tags=tags)
    admin = Actor("slack", "T1", "U_ADMIN", "Ada", is_admin=True)
    stats = Stats(database, settings, ManualClock(NOW))
    report, figures = await stats.report(admin), await stats.figures(admin, 4)
    assert isinstance(report, Ok) and isinstance(figures, Ok)
    rows = [line.split(",") for line in report.value.csv.decode().splitlines()[1:]]
    weeks: Counter[date] = Counter()
    tags: Counter[str] = Counter()
    for row in rows:
        created = datetime.fromisoformat(row[2])
        day = created.date() - timedelta(days=created.weekday())
        if day >= figures.value.since:
            weeks[day] += 1
            tags.update(t for t in row[8].split(";") if t)
    assert {w.week: w.posted for w in figures.value.weekly if w.posted} == dict(weeks)
    assert {t.tag: t.requests for t in figures.value.tags} == dict(tags)


async def test_demand_against_supply_once_mentors_list_tags(database: Database) -> None:
    """Requests per tag against the mentors whose profile lists it; a tag nobody lists is 0."""
    seed = Seed(database)
    await seed.member("S", "Sam")
    for tags in (["python", "career"], ["python"], ["sql"]):
        await seed.request(NOW - timedelta(days=1), tags=tags)
    assert all(t.mentors is None for t in (await figures(database)).tags)  # no profiles yet
    await seed.member("M", "Mia")
    await seed.member("N", "Noor")
    await seed.member("X", "Elsewhere", workspace="T2")
    async with database.transaction() as session:
        for who, skills in (("M", ["python", "career"]), ("N", ["python"]), ("X", ["sql"])):
            member_id = seed.members[who]
            workspace = "T2" if who == "X" else "T1"
            session.add(
                MentorProfile(
                    member_id=member_id,
                    platform="slack",
                    workspace=workspace,
                    skills=skills,
                    capacity=3,
                    last_suggested_at=NOW,
                    updated_at=NOW,
                )
            )
            await session.flush()
            for tag in skills:
                session.add(MentorSkill(member_id=member_id, tag=tag, platform="slack", workspace=workspace))
    assert (await figures(database)).tags == [
        TagDemand("python", 2, 2),
        TagDemand("career", 1, 1),
        TagDemand("sql", 1, 0),  # listed only by a mentor of another workspace
    ]


async def test_report_adds_targets_demand_supply_and_mentor_load(
    database: Database, settings: Settings
) -> None:
    """Share claimed within target per urgency, demand against supply per tag over every request,
    and each mentor's load against capacity, against hand-computed figures."""
    from bot.clock import ManualClock
    from bot.domain import Actor, Ok
    from bot.insight import MentorCapacity, TargetShare
    from bot.stats import Stats

    seed = Seed(database)
    await seed.member("S", "Sam")
    await seed.member("M", "Mia")
    await seed.member("N", "Noor")
    await seed.member("P", "Pat")  # a profile, no claims
    await seed.member("R", "Rae")  # back since Monday from time away: not "away until" a past day
    start = NOW - timedelta(days=10)  # long before the range of any chart: counted all the same
    # High (4 h): claimed in 4 h exactly (within), in 5 h (missed), open for 10 days (missed),
    # open for 3 h (not decided yet), cancelled unclaimed (left out).
    await seed.request(
        start, urgency="high", status="claimed", claimed=start + 4 * H, mentor="M", tags=["python"]
    )
    await seed.request(
        start, urgency="high", status="scheduled", claimed=start + 5 * H, mentor="M", tags=["python", "sql"]
    )
    await seed.request(start, urgency="high", tags=["python"])
    await seed.request(NOW - 3 * H, urgency="high", tags=["go"])
    await seed.request(start, urgency="high", status="cancelled")
    # Normal (24 h): claimed in 2 h, completed since (within); expired unclaimed (missed).
    await seed.request(
        start, status="completed", claimed=start + 2 * H, mentor="N", session_status="completed"
    )
    await seed.request(start, status="expired", tags=["sql"])
    # Low (72 h): nothing decided.
    await seed.request(NOW - H, urgency="low")
    async with database.transaction() as session:
        away = {"P": date(2030, 3, 20), "R": date(2030, 3, 4)}
        for who, skills, capacity in (("M", ["python"], 2), ("P", ["python", "sql"], 4), ("R", ["go"], 1)):
            session.add(
                MentorProfile(
                    member_id=seed.members[who],
                    platform="slack",
                    workspace="T1",
                    skills=skills,
                    capacity=capacity,
                    away_until=away.get(who),
                    last_suggested_at=NOW,
                    updated_at=NOW,
                )
            )
            await session.flush()
            for tag in skills:
                session.add(
                    MentorSkill(member_id=seed.members[who], tag=tag, platform="slack", workspace="T1")
                )
    stats = Stats(database, settings, ManualClock(NOW))
    result = await stats.report(Actor("slack", "T1", "U_ADMIN", "Ada", is_admin=True))
    assert isinstance(result, Ok)
    report = result.value
    assert report.within_target == [
        TargetShare("high", 4 * H, decided=3, within=1),
        TargetShare("normal", 24 * H, decided=2, within=1),
        TargetShare("low", 72 * H, decided=0, within=0),
    ]
    assert [t.share for t in report.within_target] == [0.333, 0.5, None]
    assert report.tags == [TagDemand("python", 3, 2), TagDemand("sql", 2, 1), TagDemand("go", 1, 1)]
    # Mia carries 2 of her 2; Pat 0 of 4 (away); Rae 0 of 1, back; Noor, no profile and nothing
    # active, is not listed.
    assert report.capacity == [
        MentorCapacity("M", "Mia", 2, 2, None, True),
        MentorCapacity("P", "Pat", 0, 4, date(2030, 3, 20), True),
        MentorCapacity("R", "Rae", 0, 1, None, True),
    ]
    assert report.capacity[0].load_text == "2 of 2 active"
    summary = report.summary_csv.decode().splitlines()
    assert summary == [
        "urgency,claim_target_hours,requests_decided,claimed_within_target,share",
        "high,4,3,1,0.333",
        "normal,24,2,1,0.500",
        "low,72,0,0,",
        "",
        "tag,requests_posted,mentors_listing",
        "python,3,2",
        "sql,2,1",
        "go,1,1",
        "",
        "mentor,active,capacity,away_until,profile",
        "Mia,2,2,,yes",
        "Pat,0,4,2030-03-20,yes",
        "Rae,0,1,,yes",
    ]


async def test_the_csv_joins_any_tags_the_same_on_both_engines(
    database: Database, settings: Settings
) -> None:
    """Plain tags take PostgreSQL's fast path; quotes, backslashes and non-ASCII ones are parsed."""
    import csv
    import io

    from bot.clock import ManualClock
    from bot.domain import Actor, Ok
    from bot.stats import Stats

    cases = [
        ["python", "sql"],
        [],
        ["c++", "c#"],
        ['say "hi"', "back\\slash"],
        ["español", "日本語"],
        ["a", '", "', "b"],
        ["one"],
    ]
    seed = Seed(database)
    await seed.member("S", "Sam")
    for tags in cases:
        await seed.request(NOW, tags=tags)
    report = await Stats(database, settings, ManualClock(NOW)).report(
        Actor("slack", "T1", "A", is_admin=True)
    )
    assert isinstance(report, Ok)
    rows = list(csv.DictReader(io.StringIO(report.value.csv.decode(), newline="")))
    assert [row["tags"] for row in rows] == [";".join(tags) for tags in cases]


async def test_a_released_and_reclaimed_request_counts_for_the_mentor_who_holds_it(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Max claims and books a session, then releases it; Mia claims it. The per-mentor table
    counted it for Max (his cancelled session was the request's last) and not for Mia."""
    from bot.domain import Ok
    from tests.conftest import ADMIN, MENTOR, MENTOR_2, STUDENT, request_form

    m = runtime.mentorship
    created = await m.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    rid = created.value.id
    clock.advance(hours=1)
    assert isinstance(await m.claim(MENTOR_2, rid), Ok)
    assert isinstance(await m.schedule(MENTOR_2, rid, {"starts_at": "2030-01-08 15:00"}), Ok)
    assert isinstance(await m.release(MENTOR_2, rid), Ok)
    clock.advance(hours=1)
    assert isinstance(await m.claim(MENTOR, rid), Ok)
    report = await runtime.stats.report(ADMIN)
    assert isinstance(report, Ok)
    assert [(x.name, x.claimed, x.completed, x.no_shows) for x in report.value.mentors] == [
        ("Mia Mentor", 1, 0, 0)
    ]
    # The export shows Mia's claim with no session yet, not Max's cancelled one as if current.
    import csv
    import io

    [row] = list(csv.DictReader(io.StringIO(report.value.csv.decode(), newline="")))
    assert (row["status"], row["claimed_by"]) == ("claimed", "Mia Mentor")
    assert (row["session_starts_at"], row["session_status"], row["rating"]) == ("", "", "")
    # Once Mia books it, that session is the one exported.
    assert isinstance(await m.schedule(MENTOR, rid, {"starts_at": "2030-01-09 15:00"}), Ok)
    booked = await runtime.stats.report(ADMIN)
    assert isinstance(booked, Ok)
    [row] = list(csv.DictReader(io.StringIO(booked.value.csv.decode(), newline="")))
    # 15:00 in Mia's New York is 20:00 UTC.
    assert row["session_starts_at"].startswith("2030-01-09T20:00") and row["session_status"] == "scheduled"


async def test_a_mentor_who_left_is_not_counted_as_supply(runtime: Runtime, clock: ManualClock) -> None:
    """Mia, Max and Mo list python; Max and Mo have left the mentors (the platform says so). The
    tag's supply and the load table count Mia only, and Mo while he still holds a claim; their
    past figures stay. If the platform can't be asked, every profile counts, as before."""
    from collections.abc import Sequence

    from bot.domain import Actor, Ok
    from tests.conftest import ADMIN, MENTOR, MENTOR_2, STUDENT, request_form

    mo = Actor("slack", "T1", "U_MO", "Mo Mentor", "UTC", is_mentor=True)

    class Directory:
        def __init__(self, *gone: str) -> None:
            self.gone = set(gone)
            self.fails = False

        async def current_mentors(self, workspace: str, external_ids: Sequence[str]) -> set[str]:
            if self.fails:
                raise RuntimeError("the platform is down")
            return {e for e in external_ids if e not in self.gone}

    m = runtime.mentorship
    for who in (MENTOR, MENTOR_2, mo):
        assert isinstance(await m.save_profile(who, {"skills": "python", "capacity": "2"}), Ok)
    created = await m.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    assert isinstance(await m.claim(mo, created.value.id), Ok)
    directory = Directory(MENTOR_2.user_id, mo.user_id)
    m.use_directory("slack", directory)

    report = await runtime.stats.report(ADMIN)
    assert isinstance(report, Ok)
    assert {t.tag: t.mentors for t in report.value.tags}["python"] == 1
    assert sorted(c.name for c in report.value.capacity) == ["Mia Mentor", "Mo Mentor"]
    assert [(x.name, x.claimed) for x in report.value.mentors] == [("Mo Mentor", 1)]  # history stays
    charts = await runtime.stats.figures(ADMIN)
    assert isinstance(charts, Ok)
    assert {t.tag: t.mentors for t in charts.value.tags}["python"] == 1

    directory.fails = True
    unknown = await runtime.stats.report(ADMIN)
    assert isinstance(unknown, Ok)
    assert {t.tag: t.mentors for t in unknown.value.tags}["python"] == 3
    assert len(unknown.value.capacity) == 3


async def test_capacity_shows_away_by_the_mentors_own_date(database: Database, settings: Settings) -> None:
    """At 03:00 UTC on 7 March, Tokyo is on the 7th and Los Angeles on the 6th: a mentor away
    until the 7th is back in Tokyo and still away in Los Angeles."""
    from bot.domain import Actor, Ok
    from bot.insight import MentorCapacity
    from bot.stats import Stats

    seed = Seed(database)
    for who, name, zone_name in (("K", "Ken", "Asia/Tokyo"), ("L", "Lea", "America/Los_Angeles")):
        member_id = await seed.member(who, name, timezone=zone_name)
        async with database.transaction() as session:
            session.add(
                MentorProfile(
                    member_id=member_id,
                    platform="slack",
                    workspace="T1",
                    skills=["python"],
                    capacity=2,
                    away_until=date(2030, 3, 7),
                    last_suggested_at=NOW,
                    updated_at=NOW,
                )
            )
    stats = Stats(database, settings, ManualClock(datetime(2030, 3, 7, 3, 0, tzinfo=UTC)))
    result = await stats.report(Actor("slack", "T1", "U_ADMIN", "Ada", is_admin=True))
    assert isinstance(result, Ok)
    assert sorted(result.value.capacity, key=lambda c: c.external_id) == [
        MentorCapacity("K", "Ken", 0, 2, None, True),
        MentorCapacity("L", "Lea", 0, 2, date(2030, 3, 7), True),
    ]
