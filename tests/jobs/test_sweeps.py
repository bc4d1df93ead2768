"""Expiry, reminders, nudges and rating prompts, driven by the injected clock, delivered to the
fake Slack through the real Slack sender, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import ManualClock
from bot.domain import Ok, RequestView
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from jobs.sweeps import Sweeps
from storage.models import JobRun, Notification
from tests.conftest import MENTOR, STUDENT, request_form
from tests.jobs.conftest import FEED


def ok(result: Any) -> Any:
    assert isinstance(result, Ok), result
    return result.value


def dm_texts(fake: FakeSlack, user_id: str) -> list[str]:
    """Everything the user's DM channel holds, as one string per message (text + blocks)."""
    return [str(m.get("text", "")) + str(m.get("blocks", "")) for m in fake.messages.get("D" + user_id, [])]


def feed_texts(fake: FakeSlack) -> list[str]:
    return [str(m.get("text", "")) + str(m.get("blocks", "")) for m in fake.messages.get(FEED, [])]


async def scheduled(runtime: Runtime, when: str = "2030-01-09 10:00") -> RequestView:
    request = ok(await runtime.mentorship.create_request(STUDENT, request_form()))
    ok(await runtime.mentorship.claim(MENTOR, request.id))
    return ok(await runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": when}))  # type: ignore[no-any-return]


async def test_expiry_at_the_boundary_updates_card_and_tells_student(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    request = ok(await jobs_runtime.mentorship.create_request(STUDENT, request_form()))
    await sweeps.run_all_once()
    assert len([t for t in feed_texts(fake_slack) if "· posted" in t]) == 1  # the card
    clock.set(request.expires_at - timedelta(microseconds=1))
    assert (await sweeps.run_all_once())["expire"] == 0
    clock.set(request.expires_at)
    assert (await sweeps.run_all_once())["expire"] == 1
    cards = [t for t in feed_texts(fake_slack) if "· posted" in t]  # escalations are apart
    assert len(cards) == 1 and "Expired" in cards[0]  # the same card, updated in place
    expired_dm = [t for t in dm_texts(fake_slack, STUDENT.user_id) if "expired" in t]
    assert len(expired_dm) == 1 and "mm_repost" in expired_dm[0]
    await sweeps.run_all_once()
    assert len([t for t in dm_texts(fake_slack, STUDENT.user_id) if "expired" in t]) == 1
    assert fake_slack.validation_errors == []


async def test_reminders_at_each_offset_to_both_people(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    request = await scheduled(jobs_runtime)
    assert request.session is not None
    start = request.session.starts_at
    await sweeps.run_all_once()

    def reminders(user: str) -> list[str]:
        return [t for t in dm_texts(fake_slack, user) if "Reminder" in t]

    clock.set(start - timedelta(hours=24, seconds=1))
    await sweeps.run_all_once()
    assert reminders(STUDENT.user_id) == [] and reminders(MENTOR.user_id) == []
    clock.set(start - timedelta(hours=24))
    await sweeps.run_all_once()
    assert len(reminders(STUDENT.user_id)) == 1 and len(reminders(MENTOR.user_id)) == 1
    assert "24 hours" in reminders(STUDENT.user_id)[0]
    assert request.session.meeting_url in reminders(STUDENT.user_id)[0]  # the join link
    clock.set(start - timedelta(minutes=15))
    await sweeps.run_all_once()
    await sweeps.run_all_once()
    assert len(reminders(STUDENT.user_id)) == 2 and len(reminders(MENTOR.user_id)) == 2
    assert "15 minutes" in reminders(MENTOR.user_id)[1]
    assert all("late" not in text for text in reminders(STUDENT.user_id))
    assert fake_slack.validation_errors == []


async def test_late_reminder_says_so_and_none_after_start(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    first = await scheduled(jobs_runtime, "2030-01-09 10:00")
    assert first.session is not None
    await sweeps.run_all_once()
    # The bot was down from before the 24 h reminder until 3 hours after it.
    clock.set(first.session.starts_at - timedelta(hours=21))
    await sweeps.run_all_once()
    late = [t for t in dm_texts(fake_slack, STUDENT.user_id) if "Reminder" in t]
    assert len(late) == 1 and "late" in late[0]
    # Down again through the 15 min reminder and the start: nothing is sent after the start.
    clock.set(first.session.starts_at + timedelta(minutes=1))
    await sweeps.run_all_once()
    assert len([t for t in dm_texts(fake_slack, STUDENT.user_id) if "Reminder" in t]) == 1
    async with jobs_runtime.db.transaction() as session:
        skipped = (
            await session.scalars(
                select(Notification).where(Notification.kind == "reminder", Notification.status == "skipped")
            )
        ).all()
    assert {n.failed_reason for n in skipped} == {"session already started"}


async def test_down_through_both_reminders_sends_one_with_cant_make_it(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """Jobs down from before the 24 h reminder until 10 minutes before the start: each person gets
    one (late) reminder, not two identical ones, and it keeps the 24 h one's Can't make it."""
    request = await scheduled(jobs_runtime)
    assert request.session is not None
    await sweeps.run_all_once()
    clock.set(request.session.starts_at - timedelta(minutes=10))
    await sweeps.run_all_once()
    for user in (STUDENT.user_id, MENTOR.user_id):
        [reminder] = [t for t in dm_texts(fake_slack, user) if "Reminder" in t]
        assert "10 minutes" in reminder and "late" in reminder and "mm_cant_make_it" in reminder
    async with jobs_runtime.db.transaction() as session:
        skipped = (
            await session.scalars(
                select(Notification).where(Notification.kind == "reminder", Notification.status == "skipped")
            )
        ).all()
    assert len(skipped) == 2
    assert {n.failed_reason for n in skipped} == {"a later reminder for the session is due as well"}


async def test_reschedule_resets_and_cancel_stops_reminders(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    request = await scheduled(jobs_runtime, "2030-01-09 10:00")
    assert request.session is not None
    old_start = request.session.starts_at
    moved = ok(await jobs_runtime.mentorship.schedule(MENTOR, request.id, {"starts_at": "2030-01-10 10:00"}))
    new_start = moved.session.starts_at
    await sweeps.run_all_once()
    clock.set(old_start - timedelta(minutes=15))
    await sweeps.run_all_once()
    assert not [t for t in dm_texts(fake_slack, STUDENT.user_id) if "Reminder" in t]
    clock.set(new_start - timedelta(hours=24))
    await sweeps.run_all_once()
    assert len([t for t in dm_texts(fake_slack, STUDENT.user_id) if "Reminder" in t]) == 1
    ok(await jobs_runtime.mentorship.cancel(STUDENT, request.id))
    clock.set(new_start - timedelta(minutes=15))
    await sweeps.run_all_once()
    assert len([t for t in dm_texts(fake_slack, STUDENT.user_id) if "Reminder" in t]) == 1
    assert any("cancelled" in t for t in dm_texts(fake_slack, MENTOR.user_id))


async def test_escalation_posted_once_and_retired_when_claimed(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """Nobody's profile fits: the request is escalated on the first sweep (the student is told),
    the missed target is counted when it passes, and nothing more is posted after that."""
    request = ok(await jobs_runtime.mentorship.create_request(STUDENT, request_form()))
    assert (await sweeps.run_all_once())["nudge"] == 1
    escalations = [t for t in feed_texts(fake_slack) if t.startswith("🚨")]
    assert len(escalations) == 1 and "mm_claim" in escalations[0]
    assert len([t for t in dm_texts(fake_slack, STUDENT.user_id) if "More people have been asked" in t]) == 1
    clock.advance(hours=24)
    assert (await sweeps.run_all_once())["nudge"] == 1  # the target passed: the miss is counted
    clock.advance(hours=24)
    assert (await sweeps.run_all_once())["nudge"] == 0
    assert len([t for t in feed_texts(fake_slack) if t.startswith("🚨")]) == 1
    ok(await jobs_runtime.mentorship.claim(MENTOR, request.id))
    await sweeps.run_all_once()
    retired = [t for t in feed_texts(fake_slack) if "Claimed by Mia Mentor" in t]
    assert len(retired) == 1 and "mm_claim" not in retired[0]
    assert fake_slack.validation_errors == []


async def test_rating_prompt_once_after_end(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    request = await scheduled(jobs_runtime)
    assert request.session is not None
    clock.set(request.session.ends_at + timedelta(minutes=10))
    assert (await sweeps.run_all_once())["complete"] == 1
    clock.advance(hours=1)
    assert (await sweeps.run_all_once())["complete"] == 0
    prompts = [t for t in dm_texts(fake_slack, STUDENT.user_id) if "How was your session" in t]
    assert len(prompts) == 1 and "mm_rate" in prompts[0]
    assert not [t for t in dm_texts(fake_slack, MENTOR.user_id) if "How was your session" in t]


async def test_each_sweep_records_its_last_run(jobs_runtime: Runtime, sweeps: Sweeps) -> None:
    await sweeps.run_all_once()
    health = await jobs_runtime.health()
    assert set(health["sweeps"]) == {"expire", "nudge", "complete", "withdraw_proposals", "digest", "deliver"}
    async with jobs_runtime.db.transaction() as session:
        runs = (await session.scalars(select(JobRun))).all()
    assert all(run.last_success_at == jobs_runtime.clock.now() for run in runs)


async def test_overtaken_reminders_across_batches_and_retries_send_one_with_cant_make_it(
    jobs_runtime: Runtime, sweeps: Sweeps, clock: ManualClock, fake_slack: FakeSlack
) -> None:
    """The same outage, with a batch too small to hold both reminders, and the kept one failing
    its first sends: still one reminder each, and it still has Can't make it."""
    request = await scheduled(jobs_runtime)
    assert request.session is not None
    await sweeps.run_all_once()
    jobs_runtime.delivery.batch_size = 1
    clock.set(request.session.starts_at - timedelta(minutes=10))
    fake_slack.fail_next("chat.postMessage", status=500, times=2)
    await sweeps.run_all_once()
    clock.advance(minutes=2)
    await sweeps.run_all_once()
    for user in (STUDENT.user_id, MENTOR.user_id):
        [reminder] = [t for t in dm_texts(fake_slack, user) if "Reminder" in t]
        assert "late" in reminder and "mm_cant_make_it" in reminder
