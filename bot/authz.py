"""Who may do what (the table in docs/authorization.md), enforced in one place for every platform.

The platform adapter decides the roles (mentor: Slack channel membership / Discord role; admin:
ADMIN_USER_IDS or workspace/guild admin) and passes them in `Actor`; this module decides what
those roles allow. A refusal is a polite sentence; nothing changes.
"""

from __future__ import annotations

import enum

from bot.domain import Actor, Refused, RequestView, Status


class Act(enum.StrEnum):
    CREATE = "create"
    VIEW = "view"
    CLAIM = "claim"
    SEE_FEED = "see_feed"
    RELEASE = "release"
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    CANCEL_SESSION = "cancel_session"
    COMPLETE = "complete"
    NO_SHOW = "no_show"
    CANCEL = "cancel"
    RATE = "rate"
    STATS = "stats"
    AVAILABILITY = "availability"
    PROPOSE = "propose"
    PICK = "pick"  # pick a proposed time, or say none work
    PROFILE = "profile"
    ASK_RESCHEDULE = "ask_reschedule"  # the student asks the mentor for another time
    ANSWER_ASK = "answer_ask"  # the mentor proposes new times or keeps the time
    CANT_MAKE_IT = "cant_make_it"  # either person calls the session off


MENTOR_ONLY = {Act.CLAIM, Act.SEE_FEED, Act.AVAILABILITY, Act.PROFILE}
CLAIMING_MENTOR_ONLY = {
    Act.RELEASE,
    Act.SCHEDULE,
    Act.PROPOSE,
    Act.RESCHEDULE,
    Act.CANCEL_SESSION,
    Act.COMPLETE,
    Act.NO_SHOW,
    Act.ANSWER_ASK,
}
STUDENT_ONLY = {Act.CANCEL, Act.RATE, Act.PICK, Act.ASK_RESCHEDULE}

NOT_FOUND = Refused("not_found", "I couldn't find that request.")


def authorize(act: Act, actor: Actor, request: RequestView | None = None) -> Refused | None:
    """None when allowed; otherwise the refusal to show the actor."""
    if request is not None and (request.platform != actor.platform or request.workspace != actor.workspace):
        # Another workspace's request does not exist, as far as this actor can tell.
        return NOT_FOUND
    is_student = request is not None and request.student.external_id == actor.user_id
    is_claimer = (
        request is not None
        and request.claimed_by is not None
        and request.claimed_by.external_id == actor.user_id
    )
    if act is Act.CREATE:
        return None
    if act is Act.VIEW:
        if is_student or actor.is_mentor or actor.is_admin:
            return None
        return Refused("forbidden", "Only the student who asked, mentors and admins can see this request.")
    if act in MENTOR_ONLY:
        if actor.is_mentor:
            return None
        return Refused("not_mentor", "Only mentors can do that. Ask an admin if you'd like to mentor.")
    if act in CLAIMING_MENTOR_ONLY:
        if is_claimer:
            return None
        if request is not None and request.claimed_by is not None:
            return Refused(
                "not_claimer",
                f"Only {request.claimed_by.display_name}, who claimed this request, can do that.",
                request,
            )
        if (
            request is not None
            and request.status is not Status.CLAIMED
            and request.status is not Status.SCHEDULED
        ):
            # Nobody holds it (released, expired, cancelled): a stale button, not someone else's.
            return Refused(
                "wrong_state",
                f"This request is {request.status.value} now, so there's nothing to do here.",
                request,
            )
        return Refused("not_claimer", "Only the mentor who claimed this request can do that.", request)
    if act in STUDENT_ONLY:
        if is_student:
            return None
        return Refused("not_student", "Only the student who made this request can do that.", request)
    if act is Act.CANT_MAKE_IT:
        if is_student or is_claimer:
            return None
        return Refused(
            "not_participant", "Only the student and the mentor of this session can do that.", request
        )
    if act is Act.STATS:
        if actor.is_admin:
            return None
        return Refused("not_admin", "Only admins can see stats.")
    raise AssertionError(f"unhandled act {act}")
