"""The first-claim target and its escalation ladder, and retiring stale Claim buttons.

Each open request waits against the target of its urgency (CLAIM_TARGET_HOURS), counted from
its posting or its last release:

- at half the target the circle widens: the next matching mentors not asked yet get a DM with a
  Claim button (round 1 of `request_suggestions`; the same exclusions as at posting);
- at the target the feed gets an escalation that mentions SLACK_ESCALATION_USERGROUP or
  DISCORD_ESCALATION_ROLE_ID (the admins when neither is set), the student is told that more
  people have been asked, and CLAIM_TARGET_MISSED{urgency} counts the miss.

When nobody matched at posting, the escalation is due at once (the miss is still counted if the
target passes unclaimed). `requests.escalation_step` is the next step and `nudge_due_at` when
it is due; each step is taken by the one runner whose guarded update moves the step on
(storage/ladder.py), so a step happens once whatever the number of job runners.

Once a request leaves open, every delivered message of it with a Claim button (suggestion DMs,
escalations, nudges; the card redraws itself) is owed one edit through the outbox.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import matching
from bot.config import Settings
from bot.domain import RequestView, Status, Urgency
from bot.notifications import CLAIMABLE_KINDS, Kind
from bot.outbox import owe_card, owe_dm, owe_feed, owe_retirement
from storage import ladder, mentor_profiles
from storage import repository as repo
from storage.mentor_profiles import CandidateRow

if TYPE_CHECKING:
    from bot.workflow import Mentorship

log = logging.getLogger(__name__)

WIDEN, ESCALATE, MISSED, DONE = 0, 1, 2, 3
WIDEN_ROUND = 1  # request_suggestions.round of the mentors asked when the circle widens


def target_of(settings: Settings, urgency: Urgency) -> timedelta:
    return settings.claim_targets[urgency.value]


def ladder_start(
    settings: Settings, urgency: Urgency, start: datetime, *, nobody_matched: bool = False
) -> dict[str, Any]:
    """The request columns that (re)start the ladder at `start` (posting, release)."""
    target = target_of(settings, urgency)
    return {
        "waiting_since": start,
        "claim_target_at": start + target,
        "escalation_step": ESCALATE if nobody_matched else WIDEN,
        "nudge_due_at": start if nobody_matched else start + target / 2,
    }


def pings_for(settings: Settings, platform: str) -> list[list[str]]:
    """Who an escalation mentions: the configured group of the platform, else its admins."""
    group = {
        "slack": settings.slack_escalation_usergroup,
        "discord": settings.discord_escalation_role_id,
    }.get(platform)
    if group:
        return [["group", group]]
    if platform == "discord":
        admins = [a for a in settings.admin_ids if a.isdigit()]
    else:
        admins = [a for a in settings.admin_ids if not a.isdigit()]  # Discord ids are numbers
    return [["user", admin] for admin in sorted(admins)]


async def run_due(m: Mentorship, limit: int = 200) -> int:
    """Take every ladder step due now; returns how many steps were taken by this runner."""
    now = m.clock.now()
    async with m.db.transaction() as session:
        due = await ladder.due_steps(session, now, limit)
    taken = 0
    for request_id, step in due:
        try:
            if step == WIDEN:
                taken += await _widen(m, request_id, now)
            elif step == ESCALATE:
                taken += await _escalate(m, request_id, now)
            else:
                taken += await _count_missed(m, request_id, step, now)
        except Exception:  # one bad request must not hold up the others' steps
            log.exception("escalation step %s of request %s failed; retried next tick", step, request_id)
    if taken:
        m._owed()
    return taken


async def _widen(m: Mentorship, request_id: int, now: datetime) -> int:
    async with m.db.transaction() as session:
        view = await repo.request_view(session, request_id)
        if view is None or view.status is not Status.OPEN:
            return 0
        asked = frozenset(await mentor_profiles.asked(session, request_id))
    # Matching asks the platform who is still a mentor: outside the write transaction.
    rows = await _candidates(m, view, asked)
    target_at = view.claim_target_at or view.created_at + target_of(m.settings, view.urgency)
    async with m.db.transaction() as session:
        won = await ladder.take_step(session, request_id, WIDEN, now, next_step=ESCALATE, next_due=target_at)
        if not won:
            return 0
        after = await repo.request_view(session, request_id)
        assert after is not None
        if rows:
            await matching.offer(session, after, rows, round_=WIDEN_ROUND, now=now)
        await owe_card(session, request=after, now=now)  # refreshes "waiting … · target …"
    return 1


async def _candidates(m: Mentorship, view: RequestView, asked: frozenset[int]) -> list[CandidateRow]:
    directory = m._directories.get(view.platform)
    if directory is None:
        # A stored profile is not proof someone is still a mentor: without the platform's word
        # (no adapter in this process), nobody new is DM'd; the escalation still comes.
        log.info("no %s mentor directory here; request %s is not widened", view.platform, view.id)
        return []
    try:
        return await matching.pick(
            m.db,
            platform=view.platform,
            workspace=view.workspace,
            tags=view.tags,
            dates=(view.available_from, view.available_until),
            student_external_id=view.student.external_id,
            directory=directory,
            default_timezone=m.settings.default_timezone,
            count=m.settings.match_notify_count,
            now=m.clock.now(),
            exclude=asked,
        )
    except Exception:
        log.exception("matching for request %s failed; the circle does not widen", view.id)
        return []


async def _escalate(m: Mentorship, request_id: int, now: datetime) -> int:
    missed = False
    async with m.db.transaction() as session:
        view = await repo.request_view(session, request_id)
        if view is None or view.status is not Status.OPEN:
            return 0
        target_at = view.claim_target_at or view.created_at + target_of(m.settings, view.urgency)
        early = now < target_at  # nobody matched at posting: escalated before the target
        next_step, next_due = (MISSED, target_at) if early else (DONE, None)
        if not await ladder.take_step(
            session, request_id, ESCALATE, now, next_step=next_step, next_due=next_due
        ):
            return 0
        after = await repo.request_view(session, request_id)
        assert after is not None
        pings = pings_for(m.settings, after.platform)
        key = f"request:{after.id}:v{after.version}"
        await owe_feed(
            session,
            request=after,
            kind=Kind.ESCALATION,
            key=key,
            now=now,
            payload={"pings": pings, "early": early},
        )
        await owe_dm(
            session,
            request=after,
            to=after.student,
            kind=Kind.MORE_MENTORS_ASKED,
            now=now,
            key=key,
            payload={
                "group": bool(pings and pings[0][0] == "group"),
                "pinged": bool(pings),  # nobody to mention: the student is not told otherwise
                "early": early,
            },
        )
        await owe_card(session, request=after, now=now)
        missed = not early
    if missed:
        m.target_missed(view.urgency.value)
    return 1


async def _count_missed(m: Mentorship, request_id: int, step: int, now: datetime) -> int:
    """The target passed after an early escalation (or a step we do not know: just finish)."""
    async with m.db.transaction() as session:
        view = await repo.request_view(session, request_id)
        if view is None:
            return 0
        if not await ladder.take_step(session, request_id, step, now, next_step=DONE, next_due=None):
            return 0
        after = await repo.request_view(session, request_id)
        assert after is not None
        await owe_card(session, request=after, now=now)  # the card now says the target was missed
    if step == MISSED:
        m.target_missed(view.urgency.value)
    return 1


async def retire_claims(session: AsyncSession, view: RequestView, now: datetime) -> int:
    """The request left open: owe one edit per delivered Claim message of it (in the same
    transaction as the change). A message still on its way is retired by the outbox worker
    when it records the delivery (jobs/delivery.py), so none is missed."""
    if view.status is Status.OPEN:
        return 0
    owed = 0
    for row in await ladder.delivered_claim_messages(session, view.id, [k.value for k in CLAIMABLE_KINDS]):
        owed += await owe_retirement(
            session,
            request=view,
            audience=row.audience,
            member_id=row.member_id,
            target_id=row.id,
            now=now,
        )
    return owed
