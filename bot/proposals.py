"""Proposed times: the claiming mentor offers up to three, the student picks one or says none
work, and proposals whose times have all passed are withdrawn. No platform in sight.

The request row holds the one pending proposal (`proposal_id`); picking, refusing and
withdrawing each clear it in the same guarded UPDATE that changes the request, so the first
pick wins on every engine and an old or replayed button changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot import conversations, reschedule
from bot.authz import Act
from bot.calendar import generate_meeting_link
from bot.domain import (
    Actor,
    Invalid,
    Ok,
    Refused,
    RequestView,
    Result,
    SessionStatus,
    SessionView,
    Status,
)
from bot.notifications import Kind
from bot.outbox import owe_dm
from modals import forms
from storage import repository as repo
from storage.models import Proposal

if TYPE_CHECKING:
    from bot.workflow import Mentorship

OLD_PROPOSAL = Refused(
    "old_proposal",
    "Those times are no longer on offer; nothing changed. Your latest message from the mentor has "
    "the current ones.",
)


async def propose_times(
    m: Mentorship,
    actor: Actor,
    request_id: int,
    values: forms.Values,
    *,
    once: str | None = None,
    ask_id: int | None = None,
) -> Result[RequestView]:
    """`once`: the platform's id for this form submission; a replay of it proposes nothing new.

    A scheduled request may get times too (the mentor moving it, or answering the student's
    ask `ask_id`): its session keeps its time until the student picks a new one."""
    now = m.clock.now()
    async with m.db.transaction() as session:
        if once is not None and (earlier := await m._replayed(session, actor, once)) is not None:
            return earlier
        view = await m._load(session, actor, request_id, Act.PROPOSE)
        if isinstance(view, Refused):
            return view
        if view.status not in (Status.CLAIMED, Status.SCHEDULED):
            return m._refuse_state(view, "given proposed times")
        live = reschedule.live_session(view)
        me = await m._me(session, actor)
        parsed = forms.parse_proposal(values, tz=forms.zone(m.tz_of(me, actor)), now=now)
        if isinstance(parsed, dict):
            return Invalid(parsed)
        duration = timedelta(minutes=view.duration_minutes)
        window_start, window_end = m._window(view, m.tz_of(view.student))
        errors: dict[str, str] = {}
        for field_id, starts_at in parsed.times:
            if starts_at < window_start or starts_at + duration > window_end:
                errors[field_id] = m.outside_dates(view, m.tz_of(me, actor))
            elif live is not None and starts_at == live.starts_at:
                # Picked, it would "move" the session to where it is: two DMs saying nothing.
                errors[field_id] = (
                    "That is the session's current time; to keep it, use Keep the time instead."
                )
            elif await repo.mentor_sessions_between(
                session, me.id, starts_at, starts_at + duration, exclude_session_id=live.id if live else None
            ):
                errors[field_id] = "That overlaps another session of yours; please pick another time."
        if errors:
            return Invalid(errors)
        if ask_id is not None:
            refused = await reschedule.answer_with_proposal(session, view, ask_id, now)
            if refused is not None:
                return refused
        times = [at for _, at in parsed.times]
        await repo.supersede_proposals(session, request_id, now)
        proposal = await repo.add_proposal(
            session,
            request_id=request_id,
            mentor_id=me.id,
            times=[at.astimezone(UTC).isoformat() for at in times],
            last_starts_at=max(times),
            meeting_url=parsed.meeting_url,
            note=parsed.note,
            status="pending",
            created_at=now,
        )
        if not await repo.transition(session, request_id, [view.status], proposal_id=proposal.id):
            current = await repo.request_view(session, request_id)
            assert current is not None
            return m._refuse_state(current, "given proposed times")
        after = await m._card_changed(session, request_id, now)
        await owe_dm(
            session,
            request=after,
            to=after.student,
            kind=Kind.TIMES_PROPOSED,
            now=now,
            key=f"proposal:{proposal.id}",
            payload={
                "proposal_id": proposal.id,
                "times": proposal.times,
                "tz": m.tz_of(view.student),
                "note": parsed.note,
                "rescheduling": live is not None,
            },
        )
        await conversations.owe_news(
            session,
            after,
            Kind.TIMES_PROPOSED,
            f"proposal:{proposal.id}",
            now,
            {"times": proposal.times, "note": parsed.note},
        )
        if once is not None:
            await repo.record_submission(session, once, request_id, now)
    m._owed()
    return Ok(after)


async def _pending(
    m: Mentorship, session: AsyncSession, actor: Actor, request_id: int, proposal_id: int
) -> RequestView | Refused:
    view = await m._load(session, actor, request_id, Act.PICK)
    if isinstance(view, Refused):
        return view
    if view.status is Status.SCHEDULED and view.proposal_id is None and view.session is not None:
        return Refused(
            "already_picked",
            "This session is already scheduled; nothing changed. See the invite above.",
            view,
        )
    if view.status not in (Status.CLAIMED, Status.SCHEDULED):
        return Refused(
            OLD_PROPOSAL.code,
            f"This request is {view.status.value} now, so those times are no longer on offer; "
            "nothing changed.",
            view,
        )
    if view.proposal_id is None:  # withdrawn (all its times passed) or answered, and none since
        return Refused(
            OLD_PROPOSAL.code,
            "Those times are no longer on offer; nothing changed. Your mentor can propose new ones.",
            view,
        )
    if view.proposal_id != proposal_id:
        return Refused(OLD_PROPOSAL.code, OLD_PROPOSAL.message, view)
    return view


async def check_pending(
    m: Mentorship, actor: Actor, request_id: int, proposal_id: int
) -> Result[RequestView]:
    """Read-only: may `actor` still answer this proposal (before None of these work's form)?"""
    async with m.db.transaction() as session:
        view = await _pending(m, session, actor, request_id, proposal_id)
    return view if isinstance(view, Refused) else Ok(view)


async def pick_time(
    m: Mentorship, actor: Actor, request_id: int, proposal_id: int, index: int
) -> Result[RequestView]:
    """The student picks one proposed time: scheduled exactly as a direct schedule is, or, for
    a scheduled request, its session moved exactly as the mentor's Reschedule moves it."""
    now = m.clock.now()
    async with m.db.transaction() as session:
        view = await _pending(m, session, actor, request_id, proposal_id)
        if isinstance(view, Refused):
            return view
        proposal = await repo.proposal(session, proposal_id)
        if proposal is None or proposal.request_id != request_id or not 0 <= index < len(proposal.times):
            return Refused(OLD_PROPOSAL.code, OLD_PROPOSAL.message, view)
        starts_at = datetime.fromisoformat(proposal.times[index]).astimezone(UTC)
        if starts_at <= now:
            return Refused("time_passed", "That time has already passed; please pick another.", view)
        ends_at = starts_at + timedelta(minutes=view.duration_minutes)
        live = reschedule.live_session(view)
        # Two students picking the same time of one mentor at once (or a pick racing the
        # mentor's own booking): the second checks for a clash after the first committed.
        await repo.lock_member(session, proposal.mentor_id)
        if await repo.mentor_sessions_between(
            session,
            proposal.mentor_id,
            starts_at,
            ends_at,
            exclude_session_id=live.id if live else None,
            exclude_request_id=request_id,
        ):
            return Refused(
                "time_taken", "Your mentor is no longer free then; please pick another time.", view
            )
        if live is not None:
            result = await _move(m, session, actor, view, live, proposal, index, starts_at, now)
        else:
            result = await _book(m, session, actor, view, proposal, index, starts_at, now)
    if isinstance(result, Ok):
        m._owed()
    return result


async def _book(
    m: Mentorship,
    session: AsyncSession,
    actor: Actor,
    view: RequestView,
    proposal: Proposal,
    index: int,
    starts_at: datetime,
    now: datetime,
) -> Result[RequestView]:
    """A pick for a claimed request: a new session, as a direct schedule makes."""
    request_id, proposal_id = view.id, proposal.id
    ends_at = starts_at + timedelta(minutes=view.duration_minutes)
    # The guard: still claimed and this proposal still pending. One caller wins.
    if not await repo.transition(
        session,
        request_id,
        [Status.CLAIMED],
        proposal_guard=proposal_id,
        status=Status.SCHEDULED.value,
        proposal_id=None,
    ):
        current = await repo.request_view(session, request_id)
        assert current is not None
        return await _lost(m, session, actor, current, proposal_id)
    await repo.settle_proposal(session, proposal_id, status="picked", picked=index, decided_at=now)
    new = await repo.add_session(
        session,
        request_id=request_id,
        mentor_id=proposal.mentor_id,
        student_id=view.student.id,
        starts_at=starts_at,
        ends_at=ends_at,
        meeting_url=proposal.meeting_url or generate_meeting_link(m.settings.meeting_link_template),
        note=proposal.note,
        status=SessionStatus.SCHEDULED.value,
        schedule_version=1,
        created_at=now,
        updated_at=now,
    )
    after = await repo.request_view(session, request_id)
    assert after is not None and after.session is not None
    await m._owe_schedule_messages(session, after, new.id, False, now, news={"picked": True})
    return Ok(after)


async def _move(
    m: Mentorship,
    session: AsyncSession,
    actor: Actor,
    view: RequestView,
    live: SessionView,
    proposal: Proposal,
    index: int,
    starts_at: datetime,
    now: datetime,
) -> Result[RequestView]:
    """A pick from times proposed for a scheduled session: the same session, moved."""
    # The guard: still scheduled and this proposal still pending. One caller wins.
    if not await repo.transition(
        session, view.id, [Status.SCHEDULED], proposal_guard=proposal.id, proposal_id=None
    ):
        current = await repo.request_view(session, view.id)
        assert current is not None
        return await _lost(m, session, actor, current, proposal.id)
    await repo.settle_proposal(session, proposal.id, status="picked", picked=index, decided_at=now)
    await repo.update_session(
        session,
        live.id,
        [SessionStatus.SCHEDULED],
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=view.duration_minutes),
        meeting_url=proposal.meeting_url or live.meeting_url,
        note=proposal.note or live.note,
        schedule_version=live.schedule_version + 1,
        updated_at=now,
    )
    await repo.retire_pending(session, status="superseded", session_id=live.id, kinds=[Kind.REMINDER.value])
    after = await repo.request_view(session, view.id)
    assert after is not None and after.session is not None
    await m._owe_schedule_messages(session, after, live.id, True, now, news={"picked": True})
    return Ok(after)


async def _lost(
    m: Mentorship, session: AsyncSession, actor: Actor, current: RequestView, proposal_id: int
) -> Refused:
    again = await _pending(m, session, actor, current.id, proposal_id)
    return again if isinstance(again, Refused) else Refused(OLD_PROPOSAL.code, OLD_PROPOSAL.message, current)


async def none_work(
    m: Mentorship, actor: Actor, request_id: int, proposal_id: int, values: forms.Values
) -> Result[RequestView]:
    """The student says none of the times work, with a note; the mentor is told."""
    parsed = forms.parse_none_work(values)
    if isinstance(parsed, dict):
        return Invalid(parsed)
    now = m.clock.now()
    async with m.db.transaction() as session:
        view = await _pending(m, session, actor, request_id, proposal_id)
        if isinstance(view, Refused):
            return view
        if not await repo.transition(
            session, request_id, [view.status], proposal_guard=proposal_id, proposal_id=None
        ):
            current = await repo.request_view(session, request_id)
            assert current is not None
            return await _lost(m, session, actor, current, proposal_id)
        await repo.settle_proposal(session, proposal_id, status="declined", reply_note=parsed, decided_at=now)
        after = await m._card_changed(session, request_id, now)
        assert after.claimed_by is not None
        await owe_dm(
            session,
            request=after,
            to=after.claimed_by,
            kind=Kind.TIMES_DECLINED,
            now=now,
            key=f"proposal:{proposal_id}",
            payload={"note": parsed},
        )
        await conversations.owe_news(
            session, after, Kind.TIMES_DECLINED, f"proposal:{proposal_id}", now, {"note": parsed}
        )
    m._owed()
    return Ok(after)


async def withdraw_past(m: Mentorship, limit: int = 200) -> int:
    """Pending proposals whose times have all started are withdrawn; the mentor is told."""
    now = m.clock.now()
    count = 0
    async with m.db.transaction() as session:
        for proposal_id in await repo.due_proposal_ids(session, now, limit):
            proposal = await repo.proposal(session, proposal_id)
            if proposal is None or not await repo.settle_proposal(
                session, proposal_id, status="withdrawn", decided_at=now
            ):
                continue
            # A request released or scheduled meanwhile no longer points at it: nothing to tell.
            if not await repo.transition(
                session,
                proposal.request_id,
                [Status.CLAIMED, Status.SCHEDULED],
                proposal_guard=proposal_id,
                proposal_id=None,
            ):
                continue
            after = await m._card_changed(session, proposal.request_id, now)
            if after.claimed_by is not None:
                await owe_dm(
                    session,
                    request=after,
                    to=after.claimed_by,
                    kind=Kind.PROPOSAL_WITHDRAWN,
                    now=now,
                    key=f"proposal:{proposal_id}",
                )
            await conversations.owe_news(
                session, after, Kind.PROPOSAL_WITHDRAWN, f"proposal:{proposal_id}", now
            )
            count += 1
    if count:
        m._owed()
    return count
