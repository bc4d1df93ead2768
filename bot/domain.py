"""The vocabulary of the product: statuses, choices, who is acting, and what use cases return.

Plain values only: adapters build these from clicks and forms, and render what comes back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar


class Status(enum.StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def badge(self) -> str:
        return STATUS_BADGES[self]


FINAL_STATUSES = frozenset({Status.COMPLETED, Status.CANCELLED, Status.EXPIRED})
# A session the sweep (or the mentor, by mistake) marked done can still be reported as a no-show
# this long after it ended, while the student has not rated it: mentors often tell us the next day.
LATE_NO_SHOW = timedelta(days=7)
# Statuses that count against a student's cap on open requests.
ACTIVE_STATUSES = frozenset({Status.OPEN, Status.CLAIMED, Status.SCHEDULED})
STATUS_BADGES = {
    Status.OPEN: "🟢 Open",
    Status.CLAIMED: "🟡 Claimed",
    Status.SCHEDULED: "📅 Scheduled",
    Status.COMPLETED: "✅ Completed",
    Status.CANCELLED: "⚪ Cancelled",
    Status.EXPIRED: "⌛ Expired",
}


class SessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class SessionType(enum.StrEnum):
    INTERVIEW_PREP = "interview_prep"
    SKILL_LEARNING = "skill_learning"
    CAREER_ADVICE = "career_advice"
    CODE_REVIEW = "code_review"
    PROJECT_GUIDANCE = "project_guidance"
    OTHER = "other"

    @property
    def label(self) -> str:
        return SESSION_TYPE_LABELS[self]


SESSION_TYPE_LABELS = {
    SessionType.INTERVIEW_PREP: "Interview preparation",
    SessionType.SKILL_LEARNING: "Skill learning",
    SessionType.CAREER_ADVICE: "Career advice",
    SessionType.CODE_REVIEW: "Code review",
    SessionType.PROJECT_GUIDANCE: "Project guidance",
    SessionType.OTHER: "Other",
}


class Urgency(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def label(self) -> str:
        return {"low": "Low", "normal": "Normal", "high": "🔥 High"}[self.value]


DURATIONS = (30, 45, 60)


@dataclass(frozen=True)
class Actor:
    """Who is clicking: identity plus the roles the platform adapter checked server-side."""

    platform: str
    workspace: str
    user_id: str
    display_name: str = ""
    timezone: str | None = None
    is_mentor: bool = False
    is_admin: bool = False


@dataclass(frozen=True)
class MemberRef:
    id: int
    platform: str
    workspace: str
    external_id: str
    display_name: str
    timezone: str | None


@dataclass(frozen=True)
class SessionView:
    id: int
    mentor: MemberRef
    starts_at: datetime
    ends_at: datetime
    meeting_url: str
    note: str
    status: SessionStatus
    schedule_version: int
    rating: int | None
    review: str | None


@dataclass(frozen=True)
class RequestView:
    id: int
    platform: str
    workspace: str
    student: MemberRef
    title: str
    session_type: SessionType
    description: str
    duration_minutes: int
    available_from: date
    available_until: date
    urgency: Urgency
    tags: tuple[str, ...]
    status: Status
    version: int
    created_at: datetime
    expires_at: datetime
    claimed_by: MemberRef | None
    claimed_at: datetime | None
    closed_at: datetime | None
    session: SessionView | None = None
    proposal_id: int | None = None  # times proposed, waiting for the student
    cancelled_by: str | None = None  # "mentor" when the mentor couldn't make it; else the student
    reposted_as: int | None = None  # the request it was posted again as (Post again is once only)
    # Set by matching when the request was posted: (external id, name) of each suggested
    # mentor and the tags they share; `matched` None until matching ran.
    suggested: tuple[tuple[str, str], ...] = ()
    matched_tags: tuple[str, ...] = ()
    matched: bool | None = None
    # The current wait for a first claim (since posting or the last release) and its target.
    waiting_since: datetime | None = None
    claim_target_at: datetime | None = None

    @property
    def times_proposed(self) -> bool:
        # A scheduled session may have new times on offer too: the current time holds until a pick.
        return self.status in (Status.CLAIMED, Status.SCHEDULED) and self.proposal_id is not None

    def late_no_show_open(self, now: datetime | None) -> bool:
        """May the mentor still report this done session as a no-show (LATE_NO_SHOW)?"""
        done = self.session
        return (
            self.status is Status.COMPLETED
            and done is not None
            and done.status is SessionStatus.COMPLETED
            and done.rating is None
            and (now is None or now <= done.ends_at + LATE_NO_SHOW)
        )


@dataclass(frozen=True)
class Availability:
    weekday: int  # 0 = Monday
    start: str  # "HH:MM" in `timezone`
    end: str
    timezone: str


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime


# Results ---------------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Ok(Generic[T]):
    value: T


@dataclass(frozen=True)
class Refused:
    """Nothing changed; `message` is polite and safe to show the actor as-is (plain text)."""

    code: str
    message: str
    request: RequestView | None = None


@dataclass(frozen=True)
class Invalid:
    """Form input rejected; one message per field id of the form spec."""

    errors: dict[str, str] = field(default_factory=dict)


Result = Ok[T] | Refused | Invalid
