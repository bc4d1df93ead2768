"""The escalation ladder and the retirement of stale Claim buttons, on SQLite and PostgreSQL,
with the injected clock: half the target widens the circle, the target escalates (the group is
mentioned, the student told, the miss counted), each step once even with two runners at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from bot.clock import ManualClock
from bot.domain import Actor, Ok, RequestView
from bot.notifications import Kind, card, compose
from bot.outbox import Delivered, DeliveryResult, FeedRef, Outgoing
from bot.runtime import Runtime
from storage import repository as repo
from storage.db import Database
from storage.models import Member, Notification, Request
from tests.bot.test_workflow import scheduled
from tests.conftest import MENTOR, STUDENT, make_settings, request_form


def ok(result: Any) -> Any:
    assert isinstance(result, Ok), result
    return result.value


def mentor(user_id: str, name: str) -> Actor:
    return Actor("slack", "T1", user_id, name, "UTC", is_mentor=True)


MIA, MAX, MO, GONE = (
    mentor("U_MIA", "Mia"),
    mentor("U_MAX", "Max"),
    mentor("U_MO", "Mo"),
    mentor("U_GONE", "Gone"),
)


SAM_AS_MENTOR = mentor(STUDENT.user_id, "Sam")  # the student mentors too: never suggested to themself
FIT = {"skills": "python", "capacity": "3", "away_until": ""}
DAY = timedelta(hours=24)


def student(i: int) -> Actor:
    return Actor("slack", "T1", f"U_S{i}", f"S{i}", "UTC")


class Directory:
    def __init__(self, *gone: str) -> None:
        self.gone = set(gone)

    async def current_mentors(self, workspace: str, external_ids: Sequence[str]) -> set[str]:
        return {e for e in external_ids if e not in self.gone}


class RecordingSender:
    """The platform edge, in memory: records each delivery and hands out message refs."""

    platform = "slack"
    min_interval = 0.0

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.edits: list[tuple[FeedRef, Outgoing]] = []

    def channel_key(self, outgoing: Outgoing) -> str:
        return str(outgoing.id)

    async def deliver(self, outgoing: Outgoing) -> DeliveryResult:
        if outgoing.kind is Kind.CLAIM_RETIRED:
            assert outgoing.feed_ref is not None
            self.edits.append((outgoing.feed_ref, outgoing))
            return Delivered()
        self.sent.append(outgoing)
        ref = FeedRef(f"C{outgoing.audience}", f"ts{outgoing.id}")
        return Delivered(ref) if outgoing.kind is Kind.CARD else Delivered(posted=ref)


async def rows(runtime: Runtime, **filters: Any) -> list[Notification]:
    async with runtime.db.transaction() as session:
        query = select(Notification).order_by(Notification.id)
        for name, value in filters.items():
            query = query.where(getattr(Notification, name) == value)
        return list((await session.scalars(query)).all())


async def profiles(runtime: Runtime, *who: Actor) -> None:
    for actor in who:
        ok(
            await runtime.mentorship.save_profile(
                actor, {"skills": "python", "capacity": "3", "away_until": ""}
            )
        )


def missed(runtime: Runtime, urgency: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "mini_mentorship_claim_target_missed_total", {"urgency": urgency}
    )
    return value or 0.0


async def test_half_target_widens_then_target_escalates_once(runtime: Runtime, clock: ManualClock) -> None:
    runtime.settings.match_notify_count = 1
    runtime.settings.slack_escalation_usergroup = "S0MENTORS"
    runtime.mentorship.use_directory("slack", Directory("U_GONE"))
    await profiles(runtime, MIA, MAX, GONE, SAM_AS_MENTOR)
    request: RequestView = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    assert request.claim_target_at == request.created_at + timedelta(hours=24)  # normal urgency
    first = [n.member_id for n in await rows(runtime, kind="match_suggested")]
    assert len(first) == 1

    clock.set(request.created_at + timedelta(hours=12, seconds=-1))
    assert await runtime.mentorship.nudge_due() == 0
    clock.set(request.created_at + timedelta(hours=12))
    assert await runtime.mentorship.nudge_due() == 1
    assert await runtime.mentorship.nudge_due() == 0
    widened = await rows(runtime, kind="match_suggested")
    assert len(widened) == 2 and widened[1].payload["round"] == 1
    assert await asked_ids(runtime, request.id) == ["U_MAX", "U_MIA"]  # never Gone (left) nor the student
    assert await rows(runtime, kind="escalation") == []

    clock.set(request.created_at + timedelta(hours=24))
    assert await runtime.mentorship.nudge_due() == 1
    clock.advance(hours=48)
    assert await runtime.mentorship.nudge_due() == 0
    [escalation] = await rows(runtime, kind="escalation")
    assert escalation.payload == {"pings": [["group", "S0MENTORS"]], "early": False}
    [told] = await rows(runtime, kind="more_mentors_asked")
    assert told.member_id == request.student.id
    assert missed(runtime, "normal") == 1.0
    view = ok(await runtime.mentorship.get_request(STUDENT, request.id))
    message = compose(Kind.ESCALATION, escalation.payload, view, None, clock.now())
    assert [p.external_id for p in message.pings] == ["S0MENTORS"]
    assert [b.label for b in message.buttons] == ["Claim"]


async def asked_ids(runtime: Runtime, request_id: int) -> list[str]:
    async with runtime.db.transaction() as session:
        asked = await session.scalars(
            select(Member.external_id)
            .join(Notification, Notification.member_id == Member.id)
            .where(Notification.kind == "match_suggested", Notification.request_id == request_id)
        )
        return sorted(asked.all())


async def test_widening_skips_the_gone_the_away_the_full_and_the_student(
    runtime: Runtime, clock: ManualClock
) -> None:
    runtime.settings.match_notify_count = 1
    runtime.mentorship.use_directory("slack", Directory("U_GONE"))
    await profiles(runtime, MIA, GONE, SAM_AS_MENTOR)
    ok(
        await runtime.mentorship.save_profile(
            MO, {"skills": "python", "capacity": "3", "away_until": "2030-02-01"}
        )
    )
    ok(await runtime.mentorship.save_profile(MAX, {"skills": "python", "capacity": "1", "away_until": ""}))
    busy = ok(
        await runtime.mentorship.create_request(Actor("slack", "T1", "U_O", "O", "UTC"), request_form())
    )
    ok(await runtime.mentorship.claim(MAX, busy.id))  # Max is now at capacity
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    clock.set(request.created_at + timedelta(hours=12))
    assert await runtime.mentorship.nudge_due() >= 1
    assert await asked_ids(runtime, request.id) == ["U_MIA"]  # nobody new fits: nobody else is DM'd


async def test_nobody_matching_escalates_at_once_and_counts_the_miss_later(
    runtime: Runtime, clock: ManualClock
) -> None:
    runtime.settings.admin_user_ids = "U_ADMIN,123456789012345678"
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(urgency="high")))
    assert request.matched is False
    assert "Nobody yet" in str(dict(card(request).fields)["Suggested"])
    assert await runtime.mentorship.nudge_due() == 1
    [escalation] = await rows(runtime, kind="escalation")
    assert escalation.payload == {"pings": [["user", "U_ADMIN"]], "early": True}  # Slack admins only
    assert missed(runtime, "high") == 0.0
    clock.set(request.created_at + timedelta(hours=4))  # the high-urgency target
    assert await runtime.mentorship.nudge_due() == 1
    assert missed(runtime, "high") == 1.0
    clock.advance(hours=10)
    assert await runtime.mentorship.nudge_due() == 0
    assert len(await rows(runtime, kind="escalation")) == 1
    assert len(await rows(runtime, kind="more_mentors_asked")) == 1


async def test_a_claimed_request_climbs_no_further(runtime: Runtime, clock: ManualClock) -> None:
    await profiles(runtime, MIA)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    ok(await runtime.mentorship.claim(MIA, request.id))
    clock.advance(hours=48)
    assert await runtime.mentorship.nudge_due() == 0
    assert await rows(runtime, kind="escalation") == []


async def test_release_restarts_the_ladder(runtime: Runtime, clock: ManualClock) -> None:
    await profiles(runtime, MIA)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    clock.advance(hours=20)
    ok(await runtime.mentorship.claim(MIA, request.id))
    clock.advance(hours=1)
    released = ok(await runtime.mentorship.release(MIA, request.id))
    assert released.waiting_since == clock.now()
    assert released.claim_target_at == clock.now() + timedelta(hours=24)
    clock.advance(hours=11)
    assert await runtime.mentorship.nudge_due() == 0  # half of the new wait is not reached
    clock.advance(hours=1)
    assert await runtime.mentorship.nudge_due() == 1  # widen (nobody new to ask)
    clock.advance(hours=12)
    assert await runtime.mentorship.nudge_due() == 1  # escalate
    assert len(await rows(runtime, kind="escalation")) == 1
    text = card(ok(await runtime.mentorship.get_request(STUDENT, request.id)), clock.now())
    assert dict(text.fields)["Waiting"][0].text == "24 h · target 24 h (missed)"  # type: ignore[union-attr]


async def test_card_shows_waiting_against_target(runtime: Runtime, clock: ManualClock) -> None:
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(urgency="low")))
    clock.advance(hours=5)
    drawn = card(request, clock.now())
    assert dict(drawn.fields)["Waiting"][0].text == "5 h · target 72 h"  # type: ignore[union-attr]
    claimed = ok(await runtime.mentorship.claim(MIA, request.id))
    assert "Waiting" not in dict(card(claimed, clock.now()).fields)


async def test_nudge_after_hours_is_still_the_normal_target(database: Database, clock: ManualClock) -> None:
    settings = make_settings(database.url, nudge_after_hours=6)
    runtime = Runtime(settings, clock=clock, db=database)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form()))
    assert request.claim_target_at == request.created_at + timedelta(hours=6)


async def test_two_runners_take_each_step_once(
    runtime: Runtime, clock: ManualClock, database: Database
) -> None:
    runtime.settings.match_notify_count = 1
    await profiles(runtime, MIA, MAX, MO)
    other = Runtime(runtime.settings, clock=clock, db=Database(database.url))
    for each in (runtime, other):
        each.mentorship.use_directory("slack", Directory())
    try:
        made = [
            ok(
                await runtime.mentorship.create_request(
                    Actor("slack", "T1", f"U_S{i}", f"S{i}", "UTC"), request_form(tags="python")
                )
            )
            for i in range(3)
        ]
        for hours in (12, 24, 48):
            clock.set(made[0].created_at + timedelta(hours=hours))
            counts = await asyncio.gather(runtime.mentorship.nudge_due(), other.mentorship.nudge_due())
            assert sum(counts) == (3 if hours < 48 else 0)
        assert len(await rows(runtime, kind="escalation")) == 3
        assert len(await rows(runtime, kind="more_mentors_asked")) == 3
        assert missed(runtime, "normal") + missed(other, "normal") == 3.0
        per_request = [n.request_id for n in await rows(runtime, kind="match_suggested")]
        assert sorted(per_request) == sorted([r.id for r in made] * 2)  # one at posting, one widened
    finally:
        await other.db.dispose()


async def test_claim_retires_every_delivered_claim_message_once(runtime: Runtime, clock: ManualClock) -> None:
    sender = RecordingSender()
    runtime.delivery.add_sender(sender)
    runtime.mentorship.use_directory("slack", Directory())
    runtime.settings.match_notify_count = 1
    await profiles(runtime, MIA, MAX)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    clock.set(request.created_at + timedelta(hours=12))
    await runtime.mentorship.nudge_due()
    clock.set(request.created_at + timedelta(hours=24))
    await runtime.mentorship.nudge_due()
    await runtime.delivery.run_once()
    claimables = [o for o in sender.sent if o.kind in (Kind.MATCH_SUGGESTED, Kind.ESCALATION)]
    assert len(claimables) == 3  # two suggestion DMs and the escalation
    ok(await runtime.mentorship.claim(MIA, request.id))
    await runtime.delivery.run_once()
    ok(await runtime.mentorship.release(MIA, request.id))
    ok(await runtime.mentorship.claim(MAX, request.id))
    await runtime.delivery.run_once()
    assert sorted(ref.message_ref for ref, _ in sender.edits) == sorted(f"ts{o.id}" for o in claimables)
    assert all(o.message.buttons == () for _, o in sender.edits)
    # Mia's own suggestion DM says she has it; the others say who took it. Retired once, at
    # her claim: Max claiming after her release changes none of them again.
    assert sorted(o.message.headline for _, o in sender.edits) == [
        "Claimed by Mia",
        "Claimed by Mia",
        "You claimed this",
    ]
    retired = await rows(runtime, kind="claim_retired")
    assert len(retired) == 3 and {r.status for r in retired} == {"sent"}


async def test_a_claim_message_delivered_after_the_claim_is_retired_too(
    runtime: Runtime, clock: ManualClock
) -> None:
    """The DM was on its way (leased) when the request was claimed: recording its delivery owes
    the edit, since the claim's own retirement could not know where it was yet."""
    sender = RecordingSender()
    runtime.delivery.add_sender(sender)
    await profiles(runtime, MAX)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    [dm] = await rows(runtime, kind="match_suggested")

    async with runtime.db.transaction() as session:
        [leased] = [
            r
            for r in await repo.claim_due_notifications(
                session, clock.now(), clock.now() + timedelta(minutes=2), 10, ["slack"]
            )
            if r.id == dm.id
        ] or [None]
    assert leased is not None
    outgoing, _ = await _prepare(runtime, leased)
    ok(await runtime.mentorship.claim(MIA, request.id))  # taken while the DM is being sent
    result = await sender.deliver(outgoing)
    from jobs.delivery import DeliveryStats

    assert isinstance(result, Delivered)
    await runtime.delivery._record_sent([(leased, outgoing, result)], DeliveryStats())
    await runtime.delivery.run_once()
    assert [ref.message_ref for ref, _ in sender.edits] == [f"ts{dm.id}"]


async def _prepare(runtime: Runtime, row: Notification) -> tuple[Outgoing, str]:
    async with runtime.db.transaction() as session:
        views = await repo.request_views_by_id(session, [row.request_id] if row.request_id else [])
        readers = await repo.members_by_id(session, [row.member_id] if row.member_id else [])
        posts = await repo.feed_posts(session, views)
        talks = await repo.conversations_by_id(session, [int(row.payload.get("conversation_id") or 0)])
        outgoing, reason = await runtime.delivery._prepare(
            session, row, runtime.clock.now(), views, readers, posts, talks
        )
    assert outgoing is not None, reason
    return outgoing, reason


async def test_pending_claim_messages_are_not_sent_once_taken(runtime: Runtime) -> None:
    sender = RecordingSender()
    runtime.delivery.add_sender(sender)
    await profiles(runtime, MAX)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    ok(await runtime.mentorship.cancel(STUDENT, request.id))
    await runtime.delivery.run_once()
    assert [o.kind for o in sender.sent if o.kind is Kind.MATCH_SUGGESTED] == []
    [dm] = await rows(runtime, kind="match_suggested")
    assert dm.status == "skipped" and dm.failed_reason == "request no longer open"


async def test_a_deleted_message_ends_its_retirement(runtime: Runtime, clock: ManualClock) -> None:
    """The platform says the message is gone: recorded as failed once, never retried."""
    from bot.outbox import Undeliverable

    class Deleted(RecordingSender):
        async def deliver(self, outgoing: Outgoing) -> DeliveryResult:
            if outgoing.kind is Kind.CLAIM_RETIRED:
                return Undeliverable("message_not_found")
            return await super().deliver(outgoing)

    sender = Deleted()
    runtime.delivery.add_sender(sender)
    await profiles(runtime, MAX)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    await runtime.delivery.run_once()
    ok(await runtime.mentorship.claim(MIA, request.id))
    await runtime.delivery.run_once()
    clock.advance(hours=1)
    await runtime.delivery.run_once()
    [retired] = await rows(runtime, kind="claim_retired")
    assert retired.status == "failed" and retired.attempts == 1
    assert await rows(runtime, kind="delivery_failed") == []  # nobody is told about an edit


async def test_legacy_open_request_without_a_target_still_escalates(
    runtime: Runtime, clock: ManualClock
) -> None:
    """A request posted before the ladder existed: its old nudge time is its first step."""
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form()))
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Request)
            .where(Request.id == request.id)
            .values(
                escalation_step=0, claim_target_at=None, nudge_due_at=request.created_at + timedelta(hours=24)
            )
        )
    clock.set(request.created_at + timedelta(hours=24))
    assert await runtime.mentorship.nudge_due() == 1  # widen
    assert await runtime.mentorship.nudge_due() == 1  # the target (created + 24 h) has passed too
    assert len(await rows(runtime, kind="escalation")) == 1


async def test_without_the_platforms_word_nobody_new_is_asked(runtime: Runtime, clock: ManualClock) -> None:
    """No adapter in this process to say who is still a mentor: the circle does not widen on a
    stored profile alone, and the escalation still comes at the target."""
    runtime.settings.match_notify_count = 1
    await profiles(runtime, MIA, MAX)
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    clock.set(request.created_at + timedelta(hours=12))
    assert await runtime.mentorship.nudge_due() == 1
    assert len(await rows(runtime, kind="match_suggested")) == 1  # only the one asked at posting
    clock.set(request.created_at + DAY)
    assert await runtime.mentorship.nudge_due() == 1
    assert len(await rows(runtime, kind="escalation")) == 1


async def test_widening_after_a_release_does_not_offer_it_back_to_the_releaser(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Mia claimed from the feed (she wasn't among those asked) and handed it back: half the new
    target later, the request is offered to someone new, not DM'd to Mia as a fit for her."""
    runtime.settings.match_notify_count = 1
    runtime.mentorship.use_directory("slack", Directory())
    await profiles(runtime, MAX, MIA)  # Max first: asked at posting
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    assert [name for _, name in request.suggested] == ["Max"]
    ok(await runtime.mentorship.claim(MIA, request.id))
    ok(await runtime.mentorship.release(MIA, request.id))
    clock.advance(hours=12)
    assert await runtime.mentorship.nudge_due() == 1  # widen
    assert await asked_ids(runtime, request.id) == ["U_MAX"]


def _said(message: Any) -> str:
    return " ".join(getattr(part, "text", "") for line in message.lines for part in line)


async def test_the_student_is_not_told_organisers_were_asked_when_nobody_was_mentioned(
    runtime: Runtime, clock: ManualClock
) -> None:
    """No escalation group and no ADMIN_USER_IDS: the feed message mentions nobody, so the
    student's DM must not say the organisers were asked."""
    runtime.settings.admin_user_ids = ""
    early = ok(await runtime.mentorship.create_request(STUDENT, request_form(tags="python")))
    await profiles(runtime, MIA)
    late = ok(await runtime.mentorship.create_request(student(1), request_form(tags="python")))
    clock.set(late.created_at + timedelta(hours=12))
    assert await runtime.mentorship.nudge_due() == 2  # early escalated, late widened
    clock.set(late.created_at + timedelta(hours=24))
    assert await runtime.mentorship.nudge_due() == 2  # early's miss counted, late escalated
    for request, who in ((early, STUDENT), (late, student(1))):
        [told] = await rows(runtime, kind="more_mentors_asked", request_id=request.id)
        view = ok(await runtime.mentorship.get_request(who, request.id))
        text = _said(compose(Kind.MORE_MENTORS_ASKED, told.payload, view, view.student, clock.now()))
        assert "organisers" not in text and "escalation group" not in text, text


async def test_widening_a_copy_leaves_out_the_mentor_who_couldnt_make_it(
    runtime: Runtime, clock: ManualClock
) -> None:
    """Mia, the best fit, claimed, scheduled and said she can't make it; the student put it back
    from a restarted process: the copy goes to one of Max and Mo, and half its target later (in
    another fresh process: nothing is remembered but the database) to the other, never to Mia."""
    runtime.settings.match_notify_count = 1
    runtime.mentorship.use_directory("slack", Directory())
    ok(
        await runtime.mentorship.save_profile(
            MENTOR, {"skills": "python, interviews", "capacity": "3", "away_until": ""}
        )
    )
    await profiles(runtime, MAX, MO)
    request = await scheduled(runtime)
    assert [name for _, name in request.suggested] == ["Mia Mentor"]
    assert request.session is not None
    session_button = (request.id, request.session.id, request.session.schedule_version)
    ok(await runtime.mentorship.cant_make_it(MENTOR, *session_button, {"reason": "Flight delayed"}))

    def restarted() -> Runtime:
        fresh = Runtime(runtime.settings, clock=clock, db=runtime.db)
        fresh.mentorship.use_directory("slack", Directory())
        return fresh

    copy = ok(await restarted().mentorship.repost(STUDENT, request.id))
    assert [name for _, name in copy.suggested] in (["Max"], ["Mo"])
    clock.set(copy.created_at + timedelta(hours=12))
    assert await restarted().mentorship.nudge_due() == 1  # widen
    assert await asked_ids(runtime, copy.id) == ["U_MAX", "U_MO"]
