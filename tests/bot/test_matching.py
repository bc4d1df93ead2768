"""Matching on post: the ranking rule (Hypothesis), and the suggested mentors named on the card
and DM'd — never someone away, full, no longer a mentor, or the student (on both engines)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.clock import ManualClock
from bot.domain import Actor, Ok, RequestView
from bot.matching import rank
from bot.notifications import card as draw_card
from bot.runtime import Runtime
from storage.mentor_profiles import CandidateRow
from storage.models import Member, Notification
from tests.bot.test_workflow import scheduled
from tests.conftest import MENTOR, MENTOR_2, STUDENT, request_form

TODAY = date(2030, 1, 7)
NOW = datetime(2030, 1, 7, 12, tzinfo=UTC)
TAGS = ("python", "interviews", "career", "go")


class Directory:
    """The platform's answer to "who is a mentor now", as an adapter would give it."""

    def __init__(self, *gone: str) -> None:
        self.gone = set(gone)
        self.asked: list[list[str]] = []

    async def current_mentors(self, workspace: str, external_ids: Sequence[str]) -> set[str]:
        self.asked.append(list(external_ids))
        return {e for e in external_ids if e not in self.gone}


rows = st.builds(
    CandidateRow,
    member_id=st.integers(1, 10_000),
    external_id=st.sampled_from(["U1", "U2", "U3", "U_STUDENT"]),
    display_name=st.just("x"),
    skills=st.lists(st.sampled_from(TAGS), max_size=4, unique=True).map(tuple),
    capacity=st.integers(1, 10),
    away_until=st.one_of(st.none(), st.dates(TODAY - timedelta(days=3), TODAY + timedelta(days=3))),
    last_suggested_at=st.datetimes(datetime(2029, 1, 1), datetime(2030, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    load=st.integers(0, 10),
    weekdays=st.frozensets(st.integers(0, 6)),
)


@given(st.lists(rows, max_size=30), st.lists(st.sampled_from(TAGS), max_size=3, unique=True))
def test_ranking_never_suggests_away_full_or_self(candidates: list[CandidateRow], tags: list[str]) -> None:
    ranked = rank(
        candidates,
        tags=tags,
        weekdays=frozenset({0, 1}),
        student_external_id="U_STUDENT",
        now=NOW,
        default_timezone="UTC",
    )
    for row in ranked:
        assert row.load < row.capacity
        assert row.away_until is None or row.away_until <= TODAY
        assert row.external_id != "U_STUDENT"
    # Shared tags first, then availability, then the lowest load.
    keys = [(-len(set(tags) & set(r.skills)), -bool(r.weekdays & {0, 1}), r.load) for r in ranked]
    assert keys == sorted(keys)


@given(st.integers(2, 8), st.randoms(use_true_random=False))
def test_ties_go_to_the_least_recently_suggested(n: int, rnd: object) -> None:
    base = datetime(2029, 6, 1, tzinfo=UTC)
    same = [
        CandidateRow(i, f"U{i}", "x", ("python",), 3, None, base + timedelta(hours=i), 0, frozenset())
        for i in range(1, n + 1)
    ]
    shuffled = list(same)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    ranked = rank(
        shuffled,
        tags=["python"],
        weekdays=frozenset(),
        student_external_id="U0",
        now=NOW,
        default_timezone="UTC",
    )
    assert [r.member_id for r in ranked] == list(range(1, n + 1))


def mentor(user_id: str, name: str) -> Actor:
    return Actor("slack", "T1", user_id, name, "UTC", is_mentor=True)


MIA, MAX, MO, FULL, GONE, PAT = (
    mentor("U_MIA", "Mia"),
    mentor("U_MAX", "Max"),
    mentor("U_MO", "Mo"),
    mentor("U_FULL", "Full"),
    mentor("U_GONE", "Gone"),
    mentor("U_PAT", "Pat"),
)


async def profile(runtime: Runtime, who: Actor, skills: str, capacity: str = "3", away: str = "") -> None:
    saved = await runtime.mentorship.save_profile(
        who, {"skills": skills, "capacity": capacity, "away_until": away}
    )
    assert isinstance(saved, Ok), saved


async def test_suggested_mentors_named_on_card_and_dmd(runtime: Runtime) -> None:
    directory = Directory("U_GONE")
    runtime.mentorship.use_directory("slack", directory)
    await profile(runtime, MIA, "python, interviews")
    await profile(runtime, MAX, "python")
    await profile(runtime, PAT, "cooking")
    await profile(runtime, MO, "python, interviews", away="2030-02-01")
    await profile(runtime, FULL, "python, interviews", capacity="1")
    await profile(runtime, GONE, "python, interviews")
    # Full is at capacity: give them a claimed request first.
    other = Actor("slack", "T1", "U_OTHER", "Olive", "UTC")
    first = await runtime.mentorship.create_request(other, request_form(tags="cooking"))
    assert isinstance(first, Ok)
    assert isinstance(await runtime.mentorship.claim(FULL, first.value.id), Ok)

    created = await runtime.mentorship.create_request(STUDENT, request_form(tags="python, interviews"))
    assert isinstance(created, Ok)
    view = created.value
    assert [name for _, name in view.suggested] == ["Mia", "Max", "Pat"]
    assert view.matched_tags == ("python", "interviews")
    assert "U_GONE" in directory.asked[-1]  # asked, and left out
    card = draw_card(view)
    suggested = dict(card.fields)["Suggested"]
    assert [getattr(p, "name", None) for p in suggested if hasattr(p, "external_id")] == ["Mia", "Max", "Pat"]
    async with runtime.db.transaction() as session:
        dms = (
            await session.scalars(
                select(Notification.member_id).where(
                    Notification.kind == "match_suggested", Notification.request_id == view.id
                )
            )
        ).all()
    assert len(dms) == 3


async def test_a_request_posted_again_is_matched_like_a_new_one(runtime: Runtime, clock: ManualClock) -> None:
    """Post again after expiry: the copy names and DMs the mentors who fit, as the first post did."""
    await profile(runtime, MIA, "python, interviews")
    created = await runtime.mentorship.create_request(STUDENT, request_form(tags="python, interviews"))
    assert isinstance(created, Ok)
    clock.set(created.value.expires_at)
    assert await runtime.mentorship.expire_due() == 1
    again = await runtime.mentorship.repost(STUDENT, created.value.id)
    assert isinstance(again, Ok)
    assert [name for _, name in again.value.suggested] == ["Mia"]
    async with runtime.db.transaction() as session:
        offered = (
            await session.scalars(
                select(Notification.request_id).where(Notification.kind == "match_suggested")
            )
        ).all()
    assert sorted(offered) == [created.value.id, again.value.id]


async def test_the_student_is_never_suggested_and_nobody_matching_says_so(runtime: Runtime) -> None:
    student_mentor = mentor("U_STUDENT", "Sam")
    await profile(runtime, student_mentor, "python")
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    assert created.value.suggested == () and created.value.matched is False


async def test_fair_rotation_between_equal_mentors(runtime: Runtime) -> None:
    runtime.settings.match_notify_count = 1
    await profile(runtime, MIA, "python")
    await profile(runtime, MAX, "python")
    firsts = []
    for i in range(4):
        who = Actor("slack", "T1", f"U_S{i}", f"S{i}", "UTC")
        created = await runtime.mentorship.create_request(who, request_form(tags="python"))
        assert isinstance(created, Ok)
        firsts.append(created.value.suggested[0][1])
        runtime.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    assert firsts in (["Mia", "Max", "Mia", "Max"], ["Max", "Mia", "Max", "Mia"])


async def _posted_dm_text(runtime: Runtime, request_id: int) -> str:
    from bot.notifications import Kind, compose

    async with runtime.db.transaction() as session:
        note = (
            await session.scalars(
                select(Notification).where(
                    Notification.kind == "request_posted", Notification.request_id == request_id
                )
            )
        ).one()
    got = await runtime.mentorship.get_request(STUDENT, request_id)
    assert isinstance(got, Ok)
    message = compose(Kind.REQUEST_POSTED, note.payload, got.value, got.value.student, runtime.clock.now())
    return " ".join(getattr(part, "text", "") for line in message.lines for part in line)


async def test_expectations_on_submit(runtime: Runtime) -> None:
    await profile(runtime, MIA, "python", capacity="10")
    await profile(runtime, MAX, "interviews", capacity="10")
    await profile(runtime, PAT, "cooking")
    first = await runtime.mentorship.create_request(STUDENT, request_form(available_from="2030-01-09"))
    assert isinstance(first, Ok)
    text = await _posted_dm_text(runtime, first.value.id)
    assert "2 mentors list these tags." in text and "usually claimed" not in text  # too few to say
    for i in range(5):  # five similar requests, each claimed after 3 hours
        who = Actor("slack", "T1", f"U_P{i}", f"P{i}", "UTC")
        made = await runtime.mentorship.create_request(who, request_form(available_from="2030-01-09"))
        assert isinstance(made, Ok)
        runtime.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
        assert isinstance(await runtime.mentorship.claim(MIA, made.value.id), Ok)
    assert isinstance(await runtime.mentorship.cancel(STUDENT, first.value.id), Ok)
    again = await runtime.mentorship.create_request(STUDENT, request_form(available_from="2030-01-09"))
    assert isinstance(again, Ok)
    assert "Requests like this are usually claimed within 3 hours." in await _posted_dm_text(
        runtime, again.value.id
    )


async def test_mentors_who_left_do_not_crowd_out_the_ones_who_stayed(runtime: Runtime) -> None:
    """Profiles outlive a mentor's membership: four who left the channel (load 0, never suggested
    again, so first among equals for ever) must not leave every python request with nobody."""
    runtime.settings.match_notify_count = 1
    gone = [mentor(f"U_LEFT{i}", f"Left{i}") for i in range(4)]
    runtime.mentorship.use_directory("slack", Directory(*(g.user_id for g in gone)))
    for who in gone:
        await profile(runtime, who, "python")
    await profile(runtime, MIA, "python")
    for i in range(2):
        who = Actor("slack", "T1", f"U_S{i}", f"S{i}", "UTC")
        created = await runtime.mentorship.create_request(who, request_form(tags="python"))
        assert isinstance(created, Ok)
        assert [name for _, name in created.value.suggested] == ["Mia"]


async def test_away_mentors_do_not_fill_the_pool_of_a_request_without_tags(
    runtime: Runtime, clock: ManualClock
) -> None:
    """A request without tags is matched from the least recently suggested profiles; mentors
    away for the term are never suggested, so they are always the least recent. Twenty of them
    must not hide Mia, who is here and was suggested an hour ago."""
    await profile(runtime, MIA, "python")
    made = await runtime.mentorship.create_request(
        Actor("slack", "T1", "U_O", "O", "UTC"), request_form(tags="python")
    )
    assert isinstance(made, Ok) and [n for _, n in made.value.suggested] == ["Mia"]
    for i in range(20):
        await profile(runtime, mentor(f"U_AWAY{i}", f"Away{i}"), "cooking", away="2030-03-01")
    clock.advance(timedelta(hours=1))
    created = await runtime.mentorship.create_request(STUDENT, request_form(tags=""))
    assert isinstance(created, Ok)
    assert [name for _, name in created.value.suggested] == ["Mia"]


class SlowDirectory(Directory):
    """A platform slow to answer (Discord rate-limiting its member fetches): blocks until let go."""

    def __init__(self) -> None:
        super().__init__()
        self.asking = asyncio.Event()
        self.answer = asyncio.Event()

    async def current_mentors(self, workspace: str, external_ids: Sequence[str]) -> set[str]:
        self.asking.set()
        await self.answer.wait()
        return await super().current_mentors(workspace, external_ids)


async def test_a_slow_platform_holds_no_database_lock_while_matching(runtime: Runtime) -> None:
    """While the platform is asked who is still a mentor, other people's clicks go through
    (docs/matching.md: asked before the write transaction opens; SQLite has one writer)."""
    await profile(runtime, MIA, "python")
    waiting = await runtime.mentorship.create_request(
        Actor("slack", "T1", "U_O", "O", "UTC"), request_form(tags="cooking")
    )
    assert isinstance(waiting, Ok)
    slow = SlowDirectory()
    runtime.mentorship.use_directory("slack", slow)
    posting = asyncio.create_task(runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    await asyncio.wait_for(slow.asking.wait(), 5)
    try:
        claimed = await asyncio.wait_for(runtime.mentorship.claim(MAX, waiting.value.id), 3)
        assert isinstance(claimed, Ok)
    finally:
        slow.answer.set()
        posted = await posting
    assert isinstance(posted, Ok) and [n for _, n in posted.value.suggested] == ["Mia"]


async def test_mentors_who_left_do_not_fill_the_pool_of_a_request_without_tags(
    runtime: Runtime, clock: ManualClock
) -> None:
    """A request without tags is matched from the 20 least recently suggested profiles. Twenty
    people who lost the mentor role keep their profiles and are never suggested again, so they
    are always the least recent: they must not hide Mia, who is a mentor and free."""
    await profile(runtime, MIA, "python")
    made = await runtime.mentorship.create_request(
        Actor("slack", "T1", "U_O", "O", "UTC"), request_form(tags="python")
    )
    assert isinstance(made, Ok) and [n for _, n in made.value.suggested] == ["Mia"]
    gone = [mentor(f"U_LEFT{i}", f"Left{i}") for i in range(20)]
    for who in gone:
        await profile(runtime, who, "cooking")
    runtime.mentorship.use_directory("slack", Directory(*(g.user_id for g in gone)))
    clock.advance(timedelta(hours=1))
    for who in (STUDENT, Actor("slack", "T1", "U_S2", "S2", "UTC")):
        created = await runtime.mentorship.create_request(who, request_form(tags=""))
        assert isinstance(created, Ok)
        assert [name for _, name in created.value.suggested] == ["Mia"]


async def test_the_student_is_not_counted_among_the_mentors_listing_the_tags(runtime: Runtime) -> None:
    """Sam mentors python too: his own profile is not 'a mentor who lists these tags' for him."""
    await profile(runtime, mentor(STUDENT.user_id, "Sam"), "python")
    created = await runtime.mentorship.create_request(STUDENT, request_form(tags="python"))
    assert isinstance(created, Ok)
    text = await _posted_dm_text(runtime, created.value.id)
    assert "1 mentor lists" not in text, text


async def test_mentors_at_capacity_do_not_fill_the_pool_of_a_request_without_tags(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Twenty mentors took one session each from the feed (their limit) and so are never
    suggested: they are the least recently suggested, and must not hide Mia, who has room."""
    waiting = []
    for i in range(10):
        who = Actor("slack", "T1", f"U_P{i}", f"P{i}", "UTC")
        for _ in range(2):
            made = await runtime.mentorship.create_request(who, request_form(tags="cooking"))
            assert isinstance(made, Ok)
            waiting.append(made.value.id)
    for i, request_id in enumerate(waiting):
        busy = mentor(f"U_BUSY{i}", f"Busy{i}")
        await profile(runtime, busy, "cooking", capacity="1")
        assert isinstance(await runtime.mentorship.claim(busy, request_id), Ok)
    await profile(runtime, MIA, "python")
    made = await runtime.mentorship.create_request(
        Actor("slack", "T1", "U_O", "O", "UTC"), request_form(tags="python")
    )
    assert isinstance(made, Ok) and [n for _, n in made.value.suggested] == ["Mia"]
    clock.advance(timedelta(hours=1))
    created = await runtime.mentorship.create_request(STUDENT, request_form(tags=""))
    assert isinstance(created, Ok)
    assert [name for _, name in created.value.suggested] == ["Mia"]


async def test_the_card_stops_suggesting_the_mentor_who_released_it(runtime: Runtime) -> None:
    """Mia was suggested, claimed and released: back in the feed, the card named her as the fit
    who had just handed it back. Max, still a fit, stays named."""
    await profile(runtime, MIA, "python")
    await profile(runtime, MAX, "python")
    created = await runtime.mentorship.create_request(STUDENT, request_form(tags="python"))
    assert isinstance(created, Ok) and {n for _, n in created.value.suggested} == {"Mia", "Max"}
    assert isinstance(await runtime.mentorship.claim(MIA, created.value.id), Ok)
    released = await runtime.mentorship.release(MIA, created.value.id)
    assert isinstance(released, Ok)
    assert [name for _, name in released.value.suggested] == ["Max"]
    assert released.value.matched_tags == ("python",)


async def _repost(runtime: Runtime, request_id: int) -> tuple[RequestView, list[str]]:
    """The copy, and the external ids of the mentors suggested for it."""
    again = await runtime.mentorship.repost(STUDENT, request_id)
    assert isinstance(again, Ok), again
    async with runtime.db.transaction() as session:
        dmd = (
            await session.scalars(
                select(Member.external_id)
                .join(Notification, Notification.member_id == Member.id)
                .where(Notification.kind == "match_suggested", Notification.request_id == again.value.id)
            )
        ).all()
    named = [external_id for external_id, _ in again.value.suggested]
    assert sorted(named) == sorted(dmd)  # the card names whoever was DM'd, and only them
    return again.value, named


def _session_button(view: RequestView) -> tuple[int, int, int]:
    assert view.session is not None
    return view.id, view.session.id, view.session.schedule_version


async def test_down_the_chain_of_copies_the_mentor_who_couldnt_make_it_stays_left_out(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Mia called off the session; the copy expired unclaimed and was posted again: that copy
    is not offered to her either."""
    await profile(runtime, MENTOR, "python, interviews")
    await profile(runtime, MENTOR_2, "python")
    request = await scheduled(runtime)
    assert isinstance(await runtime.mentorship.cant_make_it(MENTOR, *_session_button(request), {}), Ok)
    copy, named = await _repost(runtime, request.id)
    assert named == ["U_MENTOR2"]
    clock.set(copy.expires_at)
    assert await runtime.mentorship.expire_due() == 1
    assert (await _repost(runtime, copy.id))[1] == ["U_MENTOR2"]


async def test_a_mentor_who_claimed_the_copy_themself_is_left_out_only_if_they_call_it_off_again(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Mia called off the session, then claimed the copy from the feed herself; when the student
    calls that one off, the next copy is offered to Mia again."""
    await profile(runtime, MENTOR, "python, interviews")
    await profile(runtime, MENTOR_2, "python")
    request = await scheduled(runtime)
    assert isinstance(await runtime.mentorship.cant_make_it(MENTOR, *_session_button(request), {}), Ok)
    copy, named = await _repost(runtime, request.id)
    assert named == ["U_MENTOR2"]
    assert isinstance(await runtime.mentorship.claim(MENTOR, copy.id), Ok)
    booked = await runtime.mentorship.schedule(MENTOR, copy.id, {"starts_at": "2030-01-08 15:00"})
    assert isinstance(booked, Ok), booked
    assert isinstance(await runtime.mentorship.cant_make_it(STUDENT, *_session_button(booked.value), {}), Ok)
    assert (await _repost(runtime, copy.id))[1] == ["U_MENTOR", "U_MENTOR2"]


async def test_away_until_ends_on_the_mentors_own_date(runtime: Runtime, clock: ManualClock) -> None:
    """ "Away until 9 January" is the mentor's 9 January. At 03:00 UTC that day Tokyo is already
    on the 9th and Los Angeles still on the 8th, whatever the student's own date (Berlin: 9th)."""
    tokyo = Actor("slack", "T1", "U_KEN", "Ken", "Asia/Tokyo", is_mentor=True)
    los_angeles = Actor("slack", "T1", "U_LEA", "Lea", "America/Los_Angeles", is_mentor=True)
    await profile(runtime, tokyo, "python", away="2030-01-09")
    await profile(runtime, los_angeles, "python", away="2030-01-09")
    clock.set(datetime(2030, 1, 9, 3, 0, tzinfo=UTC))
    created = await runtime.mentorship.create_request(
        STUDENT, request_form(tags="python", available_from="2030-01-09", available_until="2030-01-11")
    )
    assert isinstance(created, Ok), created
    assert [name for _, name in created.value.suggested] == ["Ken"]
