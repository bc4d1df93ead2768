"""Changes from either side of a scheduled session: the student asks to reschedule (with a
reason) and the mentor proposes new times or keeps the time; either person says "can't make it"
from the 24-hour reminder. No platform in sight.

Every button here names the session and its schedule version (or the ask), so a button from
before a move, a cancel or a newer ask is answered politely and changes nothing. Each change
first takes the request row with a guarded update, then checks again what it read: two
replicas, a double submit or a race with the mentor's own reschedule change things once.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot import conversations
from bot.authz import Act
from bot.domain import Actor, Invalid, Ok, Refused, RequestView, Result, SessionStatus, SessionView, Status
from bot.notifications import Kind
from bot.outbox import owe_dm
from modals import forms
from storage import repository as repo
from storage.models import RescheduleAsk

if TYPE_CHECKING:
    from bot.workflow import Mentorship


class _Undo(Exception):
    """What we read changed before we held the row: roll back and answer with `refused`."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.code)
        self.refused = refused


def live_session(view: RequestView) -> SessionView | None:
    if view.status is not Status.SCHEDULED or view.session is None:
        return None
    return view.session if view.session.status is SessionStatus.SCHEDULED else None


def session_button_refusal(view: RequestView, session_id: int, version: int, now: datetime) -> Refused | None:
    """None when a button naming (session, version) still speaks of the live session."""
    live = live_session(view)
    if live is None:
        said = f"This session is no longer scheduled (the request is {view.status.value})."
        return Refused("not_scheduled", said, view)
    if live.id != session_id or live.schedule_version != version:
        return Refused(
            "stale_session",
            "This session has moved since that message; nothing changed. Your latest message about "
            "it has the current time.",
            view,
        )
    if now >= live.starts_at:
        return Refused("started", "The session has already started, so it can't be changed now.", view)
    return None


def ask_refusal(view: RequestView, ask: RescheduleAsk | None, now: datetime) -> Refused | None:
    """None when the mentor may still answer this ask (before the session starts: after that,
    neither keeping nor moving its time means anything to the student)."""
    if ask is None or ask.request_id != view.id:
        return Refused("no_ask", "I couldn't find that reschedule ask; nothing changed.", view)
    if ask.status == "superseded":
        return Refused(
            "newer_ask", "The student has asked again since; please answer their latest ask.", view
        )
    if ask.status != "pending":
        return Refused("ask_answered", "This ask has already been answered; nothing changed.", view)
    live = live_session(view)
    if live is None or live.id != ask.session_id or live.schedule_version != ask.schedule_version:
        return Refused(
            "stale_ask",
            "The session has changed since this ask (moved or cancelled); nothing changed.",
            view,
        )
    if now >= live.starts_at:
        return Refused("started", "The session has already started, so it can't be changed now.", view)
    return None


async def check_session_button(
    m: Mentorship, actor: Actor, request_id: int, session_id: int, version: int, act: Act
) -> Result[RequestView]:
    """Read-only: may `actor` use this Ask to reschedule / Can't make it button (before its form)?"""
    async with m.db.transaction() as session:
        view = await m._load(session, actor, request_id, act)
    if isinstance(view, Refused):
        return view
    return session_button_refusal(view, session_id, version, m.clock.now()) or Ok(view)


async def check_ask(m: Mentorship, actor: Actor, request_id: int, ask_id: int) -> Result[RequestView]:
    """Read-only: may `actor` still answer this ask (before the propose form opens)?"""
    async with m.db.transaction() as session:
        view = await m._load(session, actor, request_id, Act.ANSWER_ASK)
        if isinstance(view, Refused):
            return view
        return ask_refusal(view, await repo.reschedule_ask(session, ask_id), m.clock.now()) or Ok(view)


async def _hold(
    m: Mentorship, session: AsyncSession, request_id: int, session_id: int, version: int, now: datetime
) -> RequestView:
    """Take the request row (a guarded no-op update), then check the button again."""
    if not await repo.transition(session, request_id, [Status.SCHEDULED]):
        current = await repo.request_view(session, request_id)
        assert current is not None
        refused = session_button_refusal(current, session_id, version, now)
        raise _Undo(refused or m._refuse_state(current, "changed"))
    current = await repo.request_view(session, request_id)
    assert current is not None
    if refused := session_button_refusal(current, session_id, version, now):
        raise _Undo(refused)
    return current


async def _session_form(
    m: Mentorship,
    session: AsyncSession,
    actor: Actor,
    act: Act,
    form: forms.FormSpec,
    request_id: int,
    session_id: int,
    version: int,
    values: forms.Values,
    once: str | None,
    now: datetime,
) -> Result[RequestView] | tuple[RequestView, str]:
    """What both forms about a booked time check first, in this order: a replayed submit gets
    its first answer; who may act and whether the button is still about this time come before
    the reason is looked at (Discord opens these forms for anyone with the button)."""
    if once is not None and (earlier := await m._replayed(session, actor, once)) is not None:
        return earlier
    view = await m._load(session, actor, request_id, act)
    if isinstance(view, Refused):
        return view
    if refused := session_button_refusal(view, session_id, version, now):
        return refused
    reason = forms.parse_reason(values, form)
    if isinstance(reason, dict):
        return Invalid(reason)
    return view, reason


async def ask_reschedule(
    m: Mentorship,
    actor: Actor,
    request_id: int,
    session_id: int,
    version: int,
    values: forms.Values,
    *,
    once: str | None = None,
) -> Result[RequestView]:
    """The student asks for another time, with a reason; the mentor is told and may answer.
    Someone who may not ask is refused before the reason is looked at (Discord opens the form
    for anyone with the button)."""
    now = m.clock.now()
    try:
        async with m.db.transaction() as session:
            opened = await _session_form(
                m, session, actor, Act.ASK_RESCHEDULE, forms.RESCHEDULE_ASK_FORM,
                request_id, session_id, version, values, once, now,
            )  # fmt: skip
            if not isinstance(opened, tuple):
                return opened
            _, reason = opened
            after = await _hold(m, session, request_id, session_id, version, now)
            assert after.claimed_by is not None
            ask = await repo.add_reschedule_ask(
                session,
                request_id=request_id,
                session_id=session_id,
                schedule_version=version,
                reason=reason,
                status="pending",
                created_at=now,
            )
            await owe_dm(
                session,
                request=after,
                to=after.claimed_by,
                kind=Kind.RESCHEDULE_ASKED,
                now=now,
                key=f"ask:{ask.id}",
                session_id=session_id,
                payload={"ask_id": ask.id, "reason": reason},
            )
            await conversations.owe_news(
                session, after, Kind.RESCHEDULE_ASKED, f"ask:{ask.id}", now, {"reason": reason}
            )
            if once is not None:
                await repo.record_submission(session, once, request_id, now)
    except _Undo as undo:
        return undo.refused
    m._owed()
    return Ok(after)


async def keep_time(m: Mentorship, actor: Actor, request_id: int, ask_id: int) -> Result[RequestView]:
    """The mentor keeps the time: the student is told it stands. Once per ask."""
    now = m.clock.now()
    async with m.db.transaction() as session:
        view = await m._load(session, actor, request_id, Act.ANSWER_ASK)
        if isinstance(view, Refused):
            return view
        ask = await repo.reschedule_ask(session, ask_id)
        if refused := ask_refusal(view, ask, now):
            return refused
        assert ask is not None and view.session is not None
        # The guard: pending -> kept. Of any number of clicks, one wins.
        if not await repo.settle_reschedule_ask(session, ask_id, "kept", now):
            return ask_refusal(view, await _fresh_ask(session, ask_id), now) or Refused(
                "ask_answered", "This ask has already been answered; nothing changed.", view
            )
        await owe_dm(
            session,
            request=view,
            to=view.student,
            kind=Kind.TIME_KEPT,
            now=now,
            key=f"ask:{ask_id}",
            session_id=ask.session_id,
        )
        await conversations.owe_news(session, view, Kind.TIME_KEPT, f"ask:{ask_id}", now)
    m._owed()
    return Ok(view)


async def _fresh_ask(session: AsyncSession, ask_id: int) -> RescheduleAsk | None:
    ask = await repo.reschedule_ask(session, ask_id)
    if ask is not None:
        await session.refresh(ask)
    return ask


async def answer_with_proposal(
    session: AsyncSession, view: RequestView, ask_id: int, now: datetime
) -> Refused | None:
    """For propose_times from an ask: the ask must still be open; it is settled as proposed."""
    if refused := ask_refusal(view, await repo.reschedule_ask(session, ask_id), now):
        return refused
    if not await repo.settle_reschedule_ask(session, ask_id, "proposed", now):
        return Refused("ask_answered", "This ask has already been answered; nothing changed.", view)
    return None


async def cant_make_it(
    m: Mentorship,
    actor: Actor,
    request_id: int,
    session_id: int,
    version: int,
    values: forms.Values,
    *,
    once: str | None = None,
) -> Result[RequestView]:
    """Either person calls the session off: the request is cancelled (who did it recorded), both
    get the calendar's cancel file, the other person the reason, the student a one-click repost.
    As for an ask, a refusal comes before the reason is looked at."""
    now = m.clock.now()
    try:
        async with m.db.transaction() as session:
            opened = await _session_form(
                m, session, actor, Act.CANT_MAKE_IT, forms.CANT_MAKE_IT_FORM,
                request_id, session_id, version, values, once, now,
            )  # fmt: skip
            if not isinstance(opened, tuple):
                return opened
            _, reason = opened
            current = await _hold(m, session, request_id, session_id, version, now)
            by = "student" if current.student.external_id == actor.user_id else "mentor"
            if not await repo.transition(
                session,
                request_id,
                [Status.SCHEDULED],
                status=Status.CANCELLED.value,
                cancelled_at=now,
                cancelled_by=by,
                nudge_due_at=None,
                proposal_id=None,
            ):
                raise _Undo(m._refuse_state(current, "cancelled"))
            await repo.supersede_proposals(session, request_id, now)
            await m._close_session(session, current, SessionStatus.CANCELLED, now)
            after = await m._card_changed(session, request_id, now)
            assert after.session is not None
            by_name = (
                current.student.display_name
                if by == "student"
                else (current.claimed_by.display_name if current.claimed_by else "")
            )
            for member in (after.student, after.session.mentor):
                await owe_dm(
                    session,
                    request=after,
                    to=member,
                    kind=Kind.CANT_MAKE_IT,
                    now=now,
                    key=f"session:{session_id}",
                    session_id=session_id,
                    payload={"by": by, "by_name": by_name, "reason": reason},
                )
            closing = f"{by_name or 'Someone'} can't make the session" + (f": {reason}" if reason else ".")
            await conversations.close(session, after, closing, now)
            if once is not None:
                await repo.record_submission(session, once, request_id, now)
    except _Undo as undo:
        return undo.refused
    m._owed()
    return Ok(after)
