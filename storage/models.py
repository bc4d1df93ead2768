"""SQLAlchemy 2 typed models. Every column a sweep filters on is indexed (see `Index` rows).

Changing a model means adding an Alembic migration in storage/migrations/versions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out on every engine (SQLite drops the zone; PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


def table_of(model: type[Base]) -> Table:
    """The model's table, for the Core statements of the hot paths (no ORM unit of work)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Member(Base):
    """A platform identity: (platform, workspace, external user id)."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("platform", "workspace", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_status_expires_at", "status", "expires_at"),
        Index("ix_requests_status_nudge_due_at", "status", "nudge_due_at"),
        Index("ix_requests_student_status", "student_id", "status"),
        Index("ix_requests_claimed_by_status", "claimed_by_id", "status"),
        Index("ix_requests_workspace_status_created", "platform", "workspace", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    student_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    title: Mapped[str] = mapped_column(String(200))
    session_type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    available_from: Mapped[date] = mapped_column(Date)
    available_until: Mapped[date] = mapped_column(Date)
    urgency: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16))
    # Bumped by every transition; feed-card notifications carry it so updates coalesce.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # When the next step of the escalation ladder (bot/escalation.py) is due; cleared once the
    # ladder is done or the request leaves open, so the index holds only due work.
    nudge_due_at: Mapped[datetime | None]
    # The next ladder step (0 widen, 1 escalate, 2 count the missed target, 3 done); the sweep
    # moves it with a guarded update, so each step happens once whatever the runners.
    escalation_step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The current wait for a first claim: since posting (or the last release), and its target.
    waiting_since: Mapped[datetime | None]
    claim_target_at: Mapped[datetime | None]
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    claimed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # Who called it off: None or "student" (the student withdrew it), "mentor" (the mentor
    # couldn't make the session).
    cancelled_by: Mapped[str | None] = mapped_column(String(16))
    expired_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # The request "Post again" made from this one. Set once, by a guarded update in the same
    # transaction as the new request's insert, so a double click cannot post two copies.
    reposted_as_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    reposted_at: Mapped[datetime | None]
    # The proposal of times the student may pick from now (none: no times proposed). Picking
    # clears it in the same guarded update that schedules, so the first pick wins.
    proposal_id: Mapped[int | None] = mapped_column(Integer)

    # Who matching suggested when the request was posted: {"mentors": [[external_id, name]],
    # "tags": [...]} ; None before matching ran.
    match_note: Mapped[dict[str, Any] | None]


class Proposal(Base):
    """Up to three times a mentor offered; the student picks one or says none work."""

    __tablename__ = "proposals"
    __table_args__ = (
        Index("ix_proposals_request_id", "request_id", "id"),
        # The withdrawal sweep: pending proposals whose last time has passed.
        Index("ix_proposals_status_last_starts_at", "status", "last_starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    times: Mapped[list[str]]  # ISO instants in UTC, in the mentor's order
    last_starts_at: Mapped[datetime]
    meeting_url: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))  # pending | picked | declined | withdrawn | superseded
    picked: Mapped[int | None] = mapped_column(Integer)
    reply_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class Conversation(Base):
    """The shared conversation of one claim: student, mentor and the bot (a Slack group DM, a
    private Discord thread). Written with the claim; `channel` is recorded by the outbox as soon
    as the platform made it, before anything is posted there, so it is opened only once."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("request_id", "claim_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    # The request's version right after the claim: one conversation per claim.
    claim_version: Mapped[int] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(16))
    student_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(16))  # opening -> open | failed
    channel: Mapped[str | None] = mapped_column(String(64))
    failed_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    # Set by a release or cancel: no more news is owed here, only the closing line.
    closed_at: Mapped[datetime | None]


class MentorSession(Base):
    """A scheduled meeting for a request. A release or cancel closes it; a new one may follow."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_status_ends_at", "status", "ends_at"),
        Index("ix_sessions_mentor_status_starts", "mentor_id", "status", "starts_at"),
        Index("ix_sessions_request_id", "request_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    meeting_url: Mapped[str] = mapped_column(String(500))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    # Bumped by each reschedule; reminders carry it so stale ones are never sent.
    schedule_version: Mapped[int] = mapped_column(Integer, default=1)
    rating: Mapped[int | None]
    review: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class RescheduleAsk(Base):
    """The student's ask to move a scheduled session, with a reason; the mentor answers it by
    proposing new times or keeping the time. Only the newest ask of the session's current
    version can be answered."""

    __tablename__ = "reschedule_asks"
    __table_args__ = (Index("ix_reschedule_asks_request_id", "request_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    schedule_version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | kept | proposed | superseded
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class AvailabilityWindow(Base):
    """A mentor's weekly window, in the mentor's own zone (wall-clock times)."""

    __tablename__ = "availability"
    __table_args__ = (Index("ix_availability_mentor_id", "mentor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(64))


class FeedPost(Base):
    """Where a request's card lives on its platform, so later changes update it in place."""

    __tablename__ = "feed_posts"
    __table_args__ = (UniqueConstraint("request_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64))
    message_ref: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Notification(Base):
    """The outbox: every message owed to a user, written with the state change that owes it."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_notifications_request_kind", "request_id", "kind"),
        Index("ix_notifications_session_kind", "session_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(8))  # "dm", "feed" or "shared" (a conversation)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    # pending -> sending -> sent | failed; superseded/skipped when no longer owed.
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    # Set when a lease ran out before its outcome was recorded: the worker may have died after
    # the platform accepted the message, so the sender checks before sending it again.
    in_doubt: Mapped[bool] = mapped_column(default=False, server_default=false())
    claim_token: Mapped[str | None] = mapped_column(String(36))
    sent_at: Mapped[datetime | None]
    failed_reason: Mapped[str | None] = mapped_column(String(500))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    # Where a delivered message with a Claim button lives (channel + message ts / id), so it can
    # be edited once the request is taken (bot/escalation.py `retire_claims`).
    channel: Mapped[str | None] = mapped_column(String(64))
    message_ref: Mapped[str | None] = mapped_column(String(64))


class JobRun(Base):
    """Last successful run of each sweep, for /healthz and operators."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_success_at: Mapped[datetime]
    last_count: Mapped[int] = mapped_column(Integer, default=0)
    last_duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class Submission(Base):
    """A form submission that took effect, under the platform's own id for it (a Slack view's id
    and hash, a Discord interaction id), written in the transaction of the change it made: a
    replay of the same submission finds it and is answered like the first, changing nothing."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    created_at: Mapped[datetime]


class MentorProfile(Base):
    """A mentor's skills, how many active sessions they take at once, and when they are away.

    One row per member; `capacity` is read inside the claim's guarded statement."""

    __tablename__ = "mentor_profiles"
    __table_args__ = (
        # member_id: the fair pool's tie-break, so a program whose mentors were never suggested
        # (all tied) is still read in index order and stops at the pool's size.
        Index(
            "ix_mentor_profiles_workspace_suggested",
            "platform",
            "workspace",
            "last_suggested_at",
            "member_id",
        ),
    )

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    skills: Mapped[list[str]] = mapped_column(default=list)
    capacity: Mapped[int] = mapped_column(Integer)
    away_until: Mapped[date | None] = mapped_column(Date)
    # When matching last suggested this mentor (epoch when never): the fairness tie-break.
    last_suggested_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MentorSkill(Base):
    """One skill of a mentor's profile, so matching finds mentors by tag through an index."""

    __tablename__ = "mentor_skills"
    __table_args__ = (Index("ix_mentor_skills_workspace_tag", "platform", "workspace", "tag"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("mentor_profiles.member_id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))


class RequestSuggestion(Base):
    """A mentor the bot asked about a request (round 0 at posting, 1 when the circle widened), or
    one who released it (round -1: never offered it again), or one who called off a session of
    an earlier copy of it (round -2: never offered this copy, nor later ones)."""

    __tablename__ = "request_suggestions"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
