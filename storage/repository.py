"""The queries. Every state change is one guarded UPDATE (`WHERE status IN expected`), and every
due-work claim is an UPDATE over a `FOR UPDATE SKIP LOCKED` subquery on PostgreSQL (a guarded
update on SQLite), so concurrent clicks, sweeps and replicas can never both win.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, case, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from bot.domain import (
    Availability,
    MemberRef,
    RequestView,
    SessionStatus,
    SessionType,
    SessionView,
    Status,
    Urgency,
)
from storage.db import send_later
from storage.driver import on_driver
from storage.models import (
    AvailabilityWindow,
    Conversation,
    FeedPost,
    JobRun,
    Member,
    MentorSession,
    Notification,
    Proposal,
    Request,
    RescheduleAsk,
    Submission,
    table_of,
)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind else "sqlite"


def _insert_for(dialect: str, table: Any) -> Any:
    """A dialect-specific INSERT, for ON CONFLICT clauses (both dialects spell them alike)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _insert(session: AsyncSession, table: Any) -> Any:
    return _insert_for(_dialect(session), table)


def _is_postgres(session: AsyncSession) -> bool:
    return _dialect(session) == "postgresql"


# The statements of the hot paths (a click, a delivery pass) are built once per dialect with
# bind parameters and given their values when executed: building a statement and computing
# its cache key cost more CPU than the round trip itself. A built statement is immutable and
# remembers its cache key.


# Members ------------------------------------------------------------------------------------


async def upsert_member(
    session: AsyncSession,
    *,
    platform: str,
    workspace: str,
    external_id: str,
    display_name: str,
    timezone: str | None,
    now: datetime,
) -> Member:
    """Create or refresh a member in one statement (safe under concurrent first clicks). On
    PostgreSQL the member's row stays locked until the transaction ends."""
    stmt = _upsert_member_stmt(_dialect(session), bool(display_name), bool(timezone))
    values = {
        "platform": platform,
        "workspace": workspace,
        "external_id": external_id,
        "display_name": display_name or external_id,
        "timezone": timezone,
        "created_at": now,
    }
    row = (await session.execute(stmt, values)).one()
    return Member(**row._mapping)  # a plain object: nothing is written through it


@functools.cache
def _upsert_member_stmt(dialect: str, refresh_name: bool, refresh_timezone: bool) -> Any:
    table = table_of(Member)
    stmt = _insert_for(dialect, table)
    # Always DO UPDATE (a no-op write when nothing changed) so RETURNING gives the row in the
    # same statement, whether it was inserted or already there. The no-op is on a column of no
    # unique key: setting one (external_id) made PostgreSQL lock the row FOR UPDATE, which blocks
    # every other transaction's foreign-key check on this member (a DM owed to them) until this
    # one ends; a student's change owing the mentor a DM while the mentor's own change waited
    # for the student's request row was a deadlock. FOR NO KEY UPDATE still serialises the
    # member's own actions.
    refresh: dict[str, Any] = {"display_name": table.c.display_name}
    if refresh_name:
        refresh["display_name"] = stmt.excluded.display_name
    if refresh_timezone:
        refresh["timezone"] = stmt.excluded.timezone
    return on_driver(
        stmt.on_conflict_do_update(
            index_elements=["platform", "workspace", "external_id"], set_=refresh
        ).returning(*table.c)
    )


async def find_member(
    session: AsyncSession, platform: str, workspace: str, external_id: str
) -> Member | None:
    return await session.scalar(
        select(Member).where(
            Member.platform == platform,
            Member.workspace == workspace,
            Member.external_id == external_id,
        )
    )


async def set_member_timezone(session: AsyncSession, member_id: int, timezone: str) -> None:
    await session.execute(update(Member).where(Member.id == member_id).values(timezone=timezone))


_MEMBER_REF_FIELDS = tuple(field.name for field in fields(MemberRef))  # each a `members` column


def member_ref(member: Member | Any) -> MemberRef:
    """The member as a view holds it, from an ORM object or a row of the members table."""
    return MemberRef(**{name: getattr(member, name) for name in _MEMBER_REF_FIELDS})


# Proposals ----------------------------------------------------------------------------------


async def add_proposal(session: AsyncSession, **values: Any) -> Proposal:
    proposal = Proposal(**values)
    session.add(proposal)
    await session.flush()
    return proposal


async def proposal(session: AsyncSession, proposal_id: int) -> Proposal | None:
    return await session.get(Proposal, proposal_id)


async def settle_proposal(session: AsyncSession, proposal_id: int, **values: Any) -> bool:
    """pending -> picked / declined / withdrawn / superseded, once."""
    result = await session.execute(
        update(Proposal)
        .where(Proposal.id == proposal_id, Proposal.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def supersede_proposals(session: AsyncSession, request_id: int, now: datetime) -> None:
    await session.execute(
        update(Proposal)
        .where(Proposal.request_id == request_id, Proposal.status == "pending")
        .values(status="superseded", decided_at=now)
        .execution_options(synchronize_session=False)
    )


async def due_proposal_ids(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Pending proposals whose last time has started (index: status, last_starts_at)."""
    rows = await session.scalars(
        select(Proposal.id)
        .where(Proposal.status == "pending", Proposal.last_starts_at <= now)
        .order_by(Proposal.last_starts_at)
        .limit(limit)
    )
    return list(rows)


# Reschedule asks ----------------------------------------------------------------------------


async def add_reschedule_ask(session: AsyncSession, **values: Any) -> RescheduleAsk:
    """A new ask; older pending asks of the request are superseded by it."""
    await session.execute(
        update(RescheduleAsk)
        .where(RescheduleAsk.request_id == values["request_id"], RescheduleAsk.status == "pending")
        .values(status="superseded", decided_at=values["created_at"])
        .execution_options(synchronize_session=False)
    )
    ask = RescheduleAsk(**values)
    session.add(ask)
    await session.flush()
    return ask


async def reschedule_ask(session: AsyncSession, ask_id: int) -> RescheduleAsk | None:
    return await session.get(RescheduleAsk, ask_id)


async def settle_reschedule_ask(session: AsyncSession, ask_id: int, status: str, now: datetime) -> bool:
    """pending -> kept / proposed, once: the guard is the pending status."""
    result = await session.execute(
        update(RescheduleAsk)
        .where(RescheduleAsk.id == ask_id, RescheduleAsk.status == "pending")
        .values(status=status, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# Requests -----------------------------------------------------------------------------------


async def add_request(session: AsyncSession, **values: Any) -> Request:
    request = Request(**values)
    session.add(request)
    await session.flush()
    return request


async def transition(
    session: AsyncSession,
    request_id: int,
    expected: Iterable[Status],
    *,
    proposal_guard: int | None = None,
    **values: Any,
) -> bool:
    """The guarded, atomic state change: true only for the one caller that won. With
    `proposal_guard`, only while that proposal is still the request's pending one."""
    guard = [Request.id == request_id, Request.status.in_([s.value for s in expected])]
    if proposal_guard is not None:
        guard.append(Request.proposal_id == proposal_guard)
    result = await session.execute(
        update(Request)
        .where(*guard)
        .values(version=Request.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def count_active_for_student(session: AsyncSession, student_id: int, statuses: Iterable[Status]) -> int:
    return await request_count(
        session, Request.student_id == student_id, Request.status.in_([s.value for s in statuses])
    )


@functools.cache  # built once: a Select is immutable, and building it costs ~30% of a click's CPU
def _request_views_query() -> Select[Any]:
    """The request with its student, claimer, latest session and that session's mentor: a Core
    select of the five rows' columns side by side (no ORM objects are loaded for a view)."""
    requests, members, sessions = table_of(Request), table_of(Member), table_of(MentorSession)
    student, claimer, mentor = members.alias("student"), members.alias("claimer"), members.alias("mentor")
    # The latest session of each request (a release or cancel may have closed earlier ones).
    latest = (
        select(func.max(sessions.c.id))
        .where(sessions.c.request_id == requests.c.id)
        .correlate(requests)
        .scalar_subquery()
    )
    return (
        select(*requests.c, *student.c, *claimer.c, *sessions.c, *mentor.c)
        .select_from(requests)
        .join(student, student.c.id == requests.c.student_id)
        .outerjoin(claimer, claimer.c.id == requests.c.claimed_by_id)
        .outerjoin(sessions, sessions.c.id == latest)
        .outerjoin(mentor, mentor.c.id == sessions.c.mentor_id)
    )


@functools.cache
def _view_slices() -> tuple[tuple[list[str], slice], ...]:
    """Where each of the five rows' columns sit in a view row: (column keys, positions)."""
    out: list[tuple[list[str], slice]] = []
    at = 0
    for model in (Request, Member, Member, MentorSession, Member):
        keys = table_of(model).c.keys()
        out.append((keys, slice(at, at + len(keys))))
        at += len(keys)
    return tuple(out)


def _to_view(row: Any) -> RequestView:
    request, student, claimer, mentor_session, mentor = (
        dict(zip(names, row[part], strict=True)) for names, part in _view_slices()
    )
    session_view = None
    if mentor_session["id"] is not None:
        session_view = SessionView(
            id=mentor_session["id"],
            mentor=_member_ref(mentor),
            starts_at=mentor_session["starts_at"],
            ends_at=mentor_session["ends_at"],
            meeting_url=mentor_session["meeting_url"],
            note=mentor_session["note"],
            status=SessionStatus(mentor_session["status"]),
            schedule_version=mentor_session["schedule_version"],
            rating=mentor_session["rating"],
            review=mentor_session["review"],
        )
    return RequestView(
        id=request["id"],
        platform=request["platform"],
        workspace=request["workspace"],
        student=_member_ref(student),
        title=request["title"],
        session_type=SessionType(request["session_type"]),
        description=request["description"],
        duration_minutes=request["duration_minutes"],
        available_from=request["available_from"],
        available_until=request["available_until"],
        urgency=Urgency(request["urgency"]),
        tags=tuple(request["tags"] or ()),
        status=Status(request["status"]),
        version=request["version"],
        created_at=request["created_at"],
        expires_at=request["expires_at"],
        claimed_by=_member_ref(claimer) if claimer["id"] is not None else None,
        claimed_at=request["claimed_at"],
        closed_at=request["cancelled_at"] or request["expired_at"] or request["completed_at"],
        session=session_view,
        proposal_id=request["proposal_id"],
        waiting_since=request["waiting_since"],
        claim_target_at=request["claim_target_at"],
        cancelled_by=request["cancelled_by"],
        reposted_as=request["reposted_as_id"],
        **_match_fields(request["match_note"]),
    )


def _member_ref(member: dict[str, Any]) -> MemberRef:
    """`member_ref` for a member read as columns (a view row) rather than as an ORM object."""
    return MemberRef(**{name: member[name] for name in _MEMBER_REF_FIELDS})


def _match_fields(note: dict[str, Any] | None) -> dict[str, Any]:
    if note is None:
        return {}
    mentors = tuple((str(m[0]), str(m[1])) for m in note.get("mentors", ()))
    return {"suggested": mentors, "matched_tags": tuple(note.get("tags", ())), "matched": bool(mentors)}


async def request_view(session: AsyncSession, request_id: int) -> RequestView | None:
    row = (await session.execute(_request_view_by_id(), {"request_id": request_id})).first()
    return _to_view(row) if row else None


@functools.cache
def _request_view_by_id() -> Select[Any]:
    return on_driver(_request_views_query().where(table_of(Request).c.id == bindparam("request_id")))


@functools.cache
def _request_views_by_ids() -> Select[Any]:
    return on_driver(
        _request_views_query().where(table_of(Request).c.id.in_(bindparam("ids", expanding=True)))
    )


async def request_views_by_id(session: AsyncSession, request_ids: Iterable[int]) -> dict[int, RequestView]:
    """Several requests' views in one query (the outbox composes a whole batch from them)."""
    ids = sorted(set(request_ids))
    if not ids:
        return {}
    rows = (await session.execute(_request_views_by_ids(), {"ids": ids})).all()
    return {view.id: view for view in map(_to_view, rows)}


async def request_workspace(session: AsyncSession, request_id: int) -> tuple[str, str] | None:
    query = select(Request.platform, Request.workspace).where(Request.id == request_id)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def request_views(
    session: AsyncSession, *conditions: ColumnElement[bool], newest_first: bool = True, limit: int = 25
) -> list[RequestView]:
    order = Request.created_at.desc() if newest_first else Request.created_at.asc()
    query = _request_views_query().where(*conditions).order_by(order, Request.id.desc()).limit(limit)
    return [_to_view(row) for row in (await session.execute(query)).all()]


async def request_count(session: AsyncSession, *conditions: ColumnElement[bool]) -> int:
    """How many requests match: a dashboard lists a few and says how many more there are."""
    return int(await session.scalar(select(func.count()).select_from(Request).where(*conditions)) or 0)


# Sessions -----------------------------------------------------------------------------------


async def add_session(session: AsyncSession, **values: Any) -> MentorSession:
    mentor_session = MentorSession(**values)
    session.add(mentor_session)
    await session.flush()
    return mentor_session


async def update_session(
    session: AsyncSession,
    session_id: int,
    expected: Iterable[SessionStatus],
    *,
    unrated: bool = False,
    **values: Any,
) -> bool:
    """The guarded change of one session row; `unrated`: only while nobody has rated it."""
    guard = [MentorSession.id == session_id, MentorSession.status.in_([s.value for s in expected])]
    if unrated:
        guard.append(MentorSession.rating.is_(None))
    result = await session.execute(
        update(MentorSession).where(*guard).values(**values).execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def session_status(session: AsyncSession, session_id: int) -> SessionStatus | None:
    found = await session.scalar(select(MentorSession.status).where(MentorSession.id == session_id))
    return None if found is None else SessionStatus(found)


async def rate_session(
    session: AsyncSession, session_id: int, rating: int, review: str | None, now: datetime
) -> bool:
    """Once only, and only a session that took place: the guard is `rating IS NULL` on a
    completed session (a no-show reported meanwhile wins)."""
    result = await session.execute(
        update(MentorSession)
        .where(
            MentorSession.id == session_id,
            MentorSession.rating.is_(None),
            MentorSession.status == SessionStatus.COMPLETED.value,
        )
        .values(rating=rating, review=review, rated_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def add_review(session: AsyncSession, session_id: int, review: str, rating: int, now: datetime) -> bool:
    """The review of a session rated from the star buttons, once; the form's stars (which start
    at the earlier rating) are the ones kept."""
    result = await session.execute(
        update(MentorSession)
        .where(
            MentorSession.id == session_id,
            MentorSession.rating.is_not(None),
            MentorSession.review.is_(None),
        )
        .values(review=review, rating=rating, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def lock_member(session: AsyncSession, member_id: int) -> None:
    """Hold the member's row until the transaction ends (PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises writers), so that one mentor's bookings are checked for clashes one
    after another. The mentor's own actions take it by upserting the row (`upsert_member`)."""
    if session.get_bind().dialect.name == "postgresql":
        # NO KEY: other transactions' foreign-key checks on the member (DMs owed them) go on.
        await session.execute(select(Member.id).where(Member.id == member_id).with_for_update(key_share=True))


async def mentor_sessions_between(
    session: AsyncSession,
    mentor_id: int,
    start: datetime,
    end: datetime,
    *,
    exclude_session_id: int | None = None,
    exclude_request_id: int | None = None,
) -> list[MentorSession]:
    """The mentor's scheduled sessions overlapping [start, end), leaving out the one being moved
    or the request's own (a concurrent pick that just booked it is not a clash)."""
    query = select(MentorSession).where(
        MentorSession.mentor_id == mentor_id,
        MentorSession.status == SessionStatus.SCHEDULED.value,
        MentorSession.starts_at < end,
        MentorSession.ends_at > start,
    )
    if exclude_session_id is not None:
        query = query.where(MentorSession.id != exclude_session_id)
    if exclude_request_id is not None:
        query = query.where(MentorSession.request_id != exclude_request_id)
    return list((await session.scalars(query.order_by(MentorSession.starts_at))).all())


# Availability -------------------------------------------------------------------------------


async def replace_availability(
    session: AsyncSession, mentor_id: int, windows: Sequence[Availability]
) -> None:
    existing = await session.scalars(
        select(AvailabilityWindow).where(AvailabilityWindow.mentor_id == mentor_id)
    )
    for row in existing:
        await session.delete(row)
    for window in windows:
        session.add(
            AvailabilityWindow(
                mentor_id=mentor_id,
                weekday=window.weekday,
                start_time=datetime.strptime(window.start, "%H:%M").time(),
                end_time=datetime.strptime(window.end, "%H:%M").time(),
                timezone=window.timezone,
            )
        )
    await session.flush()


async def availability(session: AsyncSession, mentor_id: int) -> list[Availability]:
    rows = await session.scalars(
        select(AvailabilityWindow)
        .where(AvailabilityWindow.mentor_id == mentor_id)
        .order_by(AvailabilityWindow.weekday, AvailabilityWindow.start_time)
    )
    return [
        Availability(
            weekday=row.weekday,
            start=row.start_time.strftime("%H:%M"),
            end=row.end_time.strftime("%H:%M"),
            timezone=row.timezone,
        )
        for row in rows
    ]


# Feed posts ---------------------------------------------------------------------------------


async def members_by_id(session: AsyncSession, member_ids: Iterable[int]) -> dict[int, MemberRef]:
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    rows = await session.execute(_MEMBERS_BY_ID, {"ids": ids})
    return {member.id: member_ref(member) for member in rows}


_members = table_of(Member)
_MEMBERS_BY_ID = on_driver(select(*_members.c).where(_members.c.id.in_(bindparam("ids", expanding=True))))
_feed_posts = table_of(FeedPost)
_FEED_POSTS = on_driver(
    select(*_feed_posts.c).where(_feed_posts.c.request_id.in_(bindparam("ids", expanding=True)))
)


async def feed_posts(session: AsyncSession, request_ids: Iterable[int]) -> dict[int, Row[Any]]:
    """The requests' feed posts, as rows of the table's columns (by attribute: `.channel`)."""
    ids = sorted(set(request_ids))
    if not ids:
        return {}
    rows = await session.execute(_FEED_POSTS, {"ids": ids})
    return {post.request_id: post for post in rows}


async def feed_post(session: AsyncSession, request_id: int) -> FeedPost | None:
    return await session.scalar(select(FeedPost).where(FeedPost.request_id == request_id))


async def record_feed_post(
    session: AsyncSession, request_id: int, platform: str, channel: str, message_ref: str, now: datetime
) -> None:
    stmt = _insert(session, FeedPost).values(
        request_id=request_id, platform=platform, channel=channel, message_ref=message_ref, created_at=now
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["request_id"]))


# Shared conversations -----------------------------------------------------------------------


async def add_conversation(session: AsyncSession, **values: Any) -> int | None:
    """The conversation of one claim (its id; the claim's existing one if it has one)."""
    added = await session.scalar(_add_conversation_stmt(_dialect(session)), values)
    if added is not None:
        return int(added)
    return await session.scalar(
        select(Conversation.id).where(
            Conversation.request_id == values["request_id"],
            Conversation.claim_version == values["claim_version"],
        )
    )


@functools.cache
def _add_conversation_stmt(dialect: str) -> Any:
    table = table_of(Conversation)
    stmt = _insert_for(dialect, table)
    return on_driver(
        stmt.on_conflict_do_nothing(index_elements=["request_id", "claim_version"]).returning(table.c.id)
    )


async def conversations_by_id(session: AsyncSession, conversation_ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Several conversations in one query (a delivery batch's shared rows), as rows of the
    table's columns (by attribute: `.channel`), read afresh."""
    ids = sorted(set(conversation_ids))
    if not ids:
        return {}
    rows = await session.execute(_CONVERSATIONS_BY_ID, {"ids": ids})
    return {row.id: row for row in rows}


_conversations = table_of(Conversation)
_CONVERSATIONS_BY_ID = on_driver(
    select(*_conversations.c).where(_conversations.c.id.in_(bindparam("ids", expanding=True)))
)


async def conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    return await session.get(Conversation, conversation_id, populate_existing=True)


async def earlier_shared_news_owed(
    session: AsyncSession, request_id: int, before_id: int, claim_token: str | None
) -> bool:
    """Whether a conversation line of this request written before `before_id` is still owed and
    not this worker's (its own lease goes out in order, recorded at the end of the batch): news
    posted in the order it happened, even when two workers hold a line each."""
    owed = await session.scalar(
        select(Notification.id)
        .where(
            Notification.request_id == request_id,
            Notification.audience == "shared",
            Notification.id < before_id,
            or_(
                Notification.status == "pending",
                and_(Notification.status == "sending", Notification.claim_token != claim_token),
            ),
        )
        .limit(1)
    )
    return owed is not None


async def live_conversation(session: AsyncSession, request_id: int) -> Conversation | None:
    """The conversation of the request's current claim, unless it was closed."""
    return await session.scalar(
        select(Conversation)
        .where(Conversation.request_id == request_id, Conversation.closed_at.is_(None))
        .order_by(Conversation.id.desc())
        .limit(1)
    )


async def record_conversation_channel(
    session: AsyncSession, conversation_id: int, channel: str, now: datetime
) -> str | None:
    """Remember where the conversation lives, once: the first channel recorded wins, and is
    returned (a second worker that made one too must use that one)."""
    recorded = await session.scalar(
        _RECORD_CONVERSATION_CHANNEL, {"conversation_id": conversation_id, "new_channel": channel, "now": now}
    )
    if recorded is not None:
        return str(recorded)
    return await session.scalar(select(Conversation.channel).where(Conversation.id == conversation_id))


_conversations = table_of(Conversation)
_RECORD_CONVERSATION_CHANNEL = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"), _conversations.c.channel.is_(None))
    .values(channel=bindparam("new_channel"), status="open", opened_at=bindparam("now"))
    .returning(_conversations.c.channel)
)


async def fail_conversation(session: AsyncSession, conversation_id: int, reason: str) -> bool:
    """The conversation could not be opened: DMs only from now on."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.channel.is_(None))
        .values(status="failed", failed_reason=reason[:500])
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def close_conversation(session: AsyncSession, conversation_id: int, now: datetime) -> bool:
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.closed_at.is_(None))
        .values(closed_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# Submissions --------------------------------------------------------------------------------


async def earlier_submission(session: AsyncSession, key: str) -> tuple[bool, int | None]:
    """Whether a submission with `key` already took effect (and the request it concerned).

    Holds the key until the transaction ends, so two copies of one submission arriving at once
    (two replicas, a retry racing the original) are decided one after the other: on PostgreSQL
    by a transaction-level advisory lock on the key's hash, on SQLite by BEGIN IMMEDIATE."""
    if _is_postgres(session):
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
    row = (await session.execute(select(Submission.request_id).where(Submission.key == key))).first()
    return (False, None) if row is None else (True, row[0])


async def record_submission(session: AsyncSession, key: str, request_id: int | None, now: datetime) -> None:
    session.add(Submission(key=key, request_id=request_id, created_at=now))
    await session.flush()


# Outbox -------------------------------------------------------------------------------------


async def add_notification(session: AsyncSession, **values: Any) -> bool:
    """Owe a message; a second row with the same dedupe key is silently not added."""
    return (await session.execute(_add_notification_stmt(_dialect(session)), values)).scalar() is not None


async def add_notifications(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Owe several messages in one statement (one multi-row INSERT); rows whose dedupe key is
    taken are silently not added. How many were added."""
    if not rows:
        return 0
    if len(rows) == 1:
        return int(await add_notification(session, **rows[0]))
    # executemany of an INSERT … RETURNING: SQLAlchemy sends it as one multi-row VALUES.
    return len((await session.execute(_add_notification_stmt(_dialect(session)), rows)).all())


async def add_notifications_later(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """`add_notifications` when nobody needs the count: on PostgreSQL the INSERT goes with the
    transaction's next statement or its COMMIT (`storage.db.send_later`)."""
    if rows:
        await send_later(
            session, _add_notification_stmt(_dialect(session)), rows if len(rows) > 1 else rows[0]
        )


@functools.cache
def _add_notification_stmt(dialect: str) -> Any:
    # RETURNING, not rowcount: psycopg reports no row count for an INSERT … ON CONFLICT.
    table = table_of(Notification)
    stmt = _insert_for(dialect, table)
    return on_driver(stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id))


async def notification_exists(session: AsyncSession, dedupe_key: str) -> bool:
    """Is a message with this dedupe key owed (or sent) already? A unique-index lookup."""
    found = await session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key))
    return found is not None


async def retire_pending(
    session: AsyncSession,
    *,
    status: str,
    request_id: int | None = None,
    session_id: int | None = None,
    kinds: Iterable[str],
) -> int:
    """Mark still-pending notifications as no longer owed (superseded card, cancelled reminder)."""
    stmt = _retire_pending_stmt(request_id is not None, session_id is not None)
    values = {"new_status": status, "kinds": list(kinds), "by_request": request_id, "by_session": session_id}
    result = await session.execute(stmt, values)
    return int(getattr(result, "rowcount", 0))


@functools.cache
def _retire_pending_stmt(by_request: bool, by_session: bool) -> Any:
    table = table_of(Notification)
    conditions = [table.c.status == "pending", table.c.kind.in_(bindparam("kinds", expanding=True))]
    if by_request:
        conditions.append(table.c.request_id == bindparam("by_request"))
    if by_session:
        conditions.append(table.c.session_id == bindparam("by_session"))
    return on_driver(update(table).where(*conditions).values(status=bindparam("new_status")))


async def undelivered_dms(session: AsyncSession, request_ids: list[int]) -> dict[int, list[str]]:
    """Per request: "Couldn't DM <name>: <reason>" for each person we could not reach, and
    "Couldn't open the shared conversation: <reason>" when that failed (DMs still went)."""
    if not request_ids:
        return {}
    rows = await session.execute(
        select(Notification.request_id, Notification.kind, Member.display_name, Notification.failed_reason)
        .outerjoin(Member, Member.id == Notification.member_id)
        .where(
            Notification.request_id.in_(request_ids),
            Notification.audience.in_(["dm", "shared"]),
            Notification.status == "failed",
            # Offers of the request to mentors (and their edits) are nobody's concern on it.
            Notification.kind.not_in(["match_suggested", "claim_retired"]),
        )
        .order_by(Notification.id)
    )
    problems: dict[int, list[str]] = {}
    for request_id, kind, name, reason in rows.all():
        if name is not None:
            text = f"Couldn't DM {name}: {reason}"
        elif kind == "conversation_opened":
            text = f"Couldn't open the shared conversation: {reason}"
        else:
            text = f"Couldn't post in the shared conversation: {reason}"
        if request_id is not None and text not in problems.setdefault(request_id, []):
            problems[request_id].append(text)
    return problems


async def card_maybe_posted(session: AsyncSession, request_id: int, other_than: int) -> bool:
    """Whether another card row of this request was ever attempted: if so, its post may have
    reached the platform without the outbox recording where (a crash or a timeout)."""
    attempted = await session.scalar(
        select(Notification.id)
        .where(
            Notification.request_id == request_id,
            Notification.kind == "card",
            Notification.id != other_than,
            or_(Notification.status == "sending", Notification.attempts > 0, Notification.in_doubt),
        )
        .limit(1)
    )
    return attempted is not None


@dataclass(frozen=True, slots=True)
class Leased:
    """A notification leased to this worker: what the delivery pass needs of the row."""

    id: int
    platform: str
    workspace: str
    audience: str
    member_id: int | None
    request_id: int | None
    session_id: int | None
    kind: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int
    in_doubt: bool
    claim_token: str | None


_LEASED_FIELDS = [f.name for f in fields(Leased)]


async def claim_due_notifications(
    session: AsyncSession,
    now: datetime,
    lease_until: datetime,
    limit: int,
    platforms: Iterable[str],
    kinds: tuple[str, ...] | None = None,
) -> list[Leased]:
    """Lease up to `limit` due notifications to this worker. A lease that ran out (a worker died
    between claiming and recording) makes the row due again. `kinds`: only rows of these kinds
    (the ones this code can compose; during a rolling upgrade, a newer release's new kinds are
    left to it instead of failing this worker's batches)."""
    values = {
        "now": now,
        "new_lease": lease_until,
        "token": str(uuid.uuid4()),
        "limit": limit,
        "platforms": list(platforms),
    }
    rows = await session.execute(_lease_stmt(_dialect(session), kinds), values)
    return sorted((Leased(**row._mapping) for row in rows), key=lambda row: row.id)


@functools.cache
def _lease_stmt(dialect: str, kinds: tuple[str, ...] | None = None) -> Any:
    table = table_of(Notification)
    now: BindParameter[datetime] = bindparam("now")
    due = or_(
        and_(table.c.status == "pending", table.c.next_attempt_at <= now),
        and_(table.c.status == "sending", table.c.lease_until <= now),
    )
    conditions: list[Any] = [due, table.c.platform.in_(bindparam("platforms", expanding=True))]
    if kinds is not None:
        # Written into the statement once (the kinds are this code's own constants), so no
        # parameters are expanded per lease.
        assert all(kind.replace("_", "").isalnum() for kind in kinds)
        conditions.append(text(f"notifications.kind IN ({', '.join(repr(kind) for kind in kinds)})"))
    # Two index range scans (pending by next_attempt_at, sending by lease) keep this cheap.
    candidates = (
        select(table.c.id).where(*conditions).order_by(table.c.next_attempt_at).limit(bindparam("limit"))
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    # The leased rows come back from the UPDATE itself (RETURNING): one round trip per lease.
    return on_driver(
        update(table)
        .where(table.c.id.in_(candidates.scalar_subquery()), due)
        .values(
            status="sending",
            lease_until=bindparam("new_lease"),
            claim_token=bindparam("token"),
            # Evaluated on the old row: a row still "sending" was leased by a worker that died.
            in_doubt=case((table.c.status == "sending", True), else_=False),
        )
        .returning(*(table.c[name] for name in _LEASED_FIELDS))
    )


async def overtake_reminder(session: AsyncSession, row: Leased, now: datetime, *, cant_make_it: bool) -> bool:
    """Whether a later reminder of the same session and person is also due (still owed): then
    `row` is not sent, and the later one is given Can't make it if `row` carried it."""
    later = (
        await session.execute(
            select(Notification.id)
            .where(
                Notification.kind == "reminder",
                Notification.session_id == row.session_id,
                Notification.member_id == row.member_id,
                Notification.due_at > row.due_at,
                Notification.due_at <= now,
                Notification.status.in_(("pending", "sending")),
            )
            .order_by(Notification.due_at.desc())
            .limit(1)
        )
    ).scalar()
    if later is None:
        return False
    if cant_make_it:
        await give_cant_make_it(session, int(later))
    return True


async def give_cant_make_it(session: AsyncSession, notification_id: int) -> None:
    """A reminder standing for an overtaken 24-hour one carries its Can't make it."""
    payload = await session.scalar(select(Notification.payload).where(Notification.id == notification_id))
    if isinstance(payload, dict) and not payload.get("cant_make_it"):
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(payload={**payload, "cant_make_it": True})
            .execution_options(synchronize_session=False)
        )


async def finish_notification(
    session: AsyncSession, notification_id: int, claim_token: str | None, **values: Any
) -> bool:
    """Record the outcome, only if this worker still holds the lease."""
    result = await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.claim_token == claim_token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def finish_sent(
    session: AsyncSession, notification_ids: Sequence[int], claim_token: str | None, now: datetime
) -> int:
    """Record several deliveries of one lease in one statement, only while this worker still
    holds that lease (the attempt counted in SQL: the lease itself never changes it)."""
    if not notification_ids:
        return 0
    values = {"ids": list(notification_ids), "token": claim_token, "now": now}
    result = await session.execute(_FINISH_SENT, values)
    return int(getattr(result, "rowcount", 0))


async def finish_sent_later(
    session: AsyncSession, notification_ids: Sequence[int], claim_token: str | None, now: datetime
) -> None:
    """`finish_sent` when nobody needs the count: on PostgreSQL the UPDATE goes with the
    transaction's next statement or its COMMIT (`storage.db.send_later`)."""
    if notification_ids:
        await send_later(
            session, _FINISH_SENT, {"ids": list(notification_ids), "token": claim_token, "now": now}
        )


_notifications = table_of(Notification)
_FINISH_SENT = on_driver(
    update(_notifications)
    .where(
        _notifications.c.id.in_(bindparam("ids", expanding=True)),
        _notifications.c.claim_token == bindparam("token"),
    )
    .values(status="sent", sent_at=bindparam("now"), attempts=_notifications.c.attempts + 1, lease_until=None)
)


# Due work for the sweeps ---------------------------------------------------------------------


async def due_request_ids(session: AsyncSession, column: Any, now: datetime, limit: int) -> list[int]:
    """Open requests whose `column` (expires_at / nudge_due_at) has passed: an index range scan."""
    query = (
        select(Request.id)
        .where(Request.status == Status.OPEN.value, column <= now)
        .order_by(column)
        .limit(limit)
    )
    if _is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


async def due_session_ids(session: AsyncSession, ended_before: datetime, limit: int) -> list[int]:
    query = (
        select(MentorSession.id)
        .where(
            MentorSession.status == SessionStatus.SCHEDULED.value,
            MentorSession.ends_at <= ended_before,
        )
        .order_by(MentorSession.ends_at)
        .limit(limit)
    )
    if _is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


async def session_request_id(session: AsyncSession, session_id: int) -> int | None:
    return await session.scalar(select(MentorSession.request_id).where(MentorSession.id == session_id))


async def record_job_run(
    session: AsyncSession, name: str, now: datetime, count: int, duration_ms: int
) -> None:
    stmt = _insert(session, JobRun).values(
        name=name, last_success_at=now, last_count=count, last_duration_ms=duration_ms
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "last_success_at": stmt.excluded.last_success_at,
                "last_count": stmt.excluded.last_count,
                "last_duration_ms": stmt.excluded.last_duration_ms,
            },
        )
    )


async def job_runs(session: AsyncSession) -> list[JobRun]:
    return list((await session.scalars(select(JobRun).order_by(JobRun.name))).all())
