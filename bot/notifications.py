"""What we tell whom. Each outbox row has a kind; `compose` turns it, with the request's current
state, into a neutral Message for one reader. Feed cards always show the current state, so a
late or retried card update can never show something stale.
"""

from __future__ import annotations

import enum
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.calendar import google_calendar_url, ics_file
from bot.domain import MemberRef, RequestView, SessionStatus, Status
from bot.messages import (
    Action,
    Attachment,
    Button,
    Inline,
    Line,
    Link,
    Message,
    Person,
    Ping,
    Text,
    When,
    t,
)

# The form's own maximum: a mentor reads the whole description before claiming (Slack folds a
# long message behind "Show more" itself); older, longer rows are still cut.
CARD_DESCRIPTION_LIMIT = 2000


class Kind(enum.StrEnum):
    CARD = "card"
    NUDGE = "nudge"
    REQUEST_POSTED = "request_posted"
    REQUEST_CLAIMED = "request_claimed"
    CLAIM_RELEASED = "claim_released"
    SESSION_SCHEDULED = "session_scheduled"
    SESSION_RESCHEDULED = "session_rescheduled"
    SESSION_CANCELLED = "session_cancelled"
    REQUEST_CANCELLED = "request_cancelled"
    REQUEST_EXPIRED = "request_expired"
    REMINDER = "reminder"
    RATING_PROMPT = "rating_prompt"
    NO_SHOW = "no_show_reported"
    RATED = "rated"
    DELIVERY_FAILED = "delivery_failed"
    TIMES_PROPOSED = "times_proposed"
    TIMES_DECLINED = "times_declined"
    PROPOSAL_WITHDRAWN = "proposal_withdrawn"
    MATCH_SUGGESTED = "match_suggested"
    ESCALATION = "escalation"  # the feed, at the claim target: mentions the escalation group
    MORE_MENTORS_ASKED = "more_mentors_asked"  # the student, when the request was escalated
    CLAIM_RETIRED = "claim_retired"  # edits one delivered Claim message once the request is taken
    CONVERSATION_OPENED = "conversation_opened"
    CONVERSATION_CLOSED = "conversation_closed"
    RESCHEDULE_ASKED = "reschedule_asked"
    TIME_KEPT = "time_kept"
    CANT_MAKE_IT = "cant_make_it"
    CALENDAR_REMOVED = "calendar_removed"  # to whoever called off a booked session themselves
    DIGEST = "digest"  # one feed message listing several requests (bot/digest.py composes it)


FEED_KINDS = frozenset({Kind.CARD, Kind.NUDGE, Kind.ESCALATION, Kind.DIGEST})
# Messages with a Claim button that do not redraw themselves like the card: where each was
# delivered is recorded, and each is edited (CLAIM_RETIRED) once the request leaves open. (The
# digest lists several requests and is drawn as of its delivery; a Claim there on a request
# taken since is answered like a late click on the card.)
CLAIMABLE_KINDS = frozenset({Kind.NUDGE, Kind.ESCALATION, Kind.MATCH_SUGGESTED})
# Reminders go stale when a session moves or ends; these kinds are retired with it.
SESSION_BOUND = frozenset({Kind.REMINDER})


def person(member: MemberRef) -> Person:
    return Person(member.external_id, member.display_name)


def _dates(request: RequestView) -> Line:
    start, end = request.available_from, request.available_until
    text = (
        start.strftime("%a %d %b")
        if start == end
        else (f"{start.strftime('%a %d %b')} – {end.strftime('%a %d %b %Y')}")
    )
    return (t(text),)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def span(delta: timedelta) -> str:
    """A duration as the card shows it: "40 min", "5 h", "3 d"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes / 60
    if hours <= 72:  # targets are set in hours (CLAIM_TARGET_HOURS): say them so
        return f"{int(hours)} h" if hours >= 10 or hours == int(hours) else f"{hours:.1f}".rstrip("0") + " h"
    return f"{int(hours // 24)} d"


def waiting_line(request: RequestView, now: datetime) -> Line | None:
    """ "5 h · target 24 h" (shown as "Waiting: …") for an open request with a target."""
    if request.status is not Status.OPEN or request.claim_target_at is None:
        return None
    since = request.waiting_since or request.created_at
    text = f"{span(now - since)} · target {span(request.claim_target_at - since)}"
    if now >= request.claim_target_at:
        text += " (missed)"
    return (t(text),)


def request_fields(
    request: RequestView,
    *,
    with_student: bool = True,
    with_match: bool = False,
    now: datetime | None = None,
) -> tuple[tuple[str, Line], ...]:
    fields: list[tuple[str, Line]] = [
        ("Type", (t(request.session_type.label),)),
        ("Duration", (t(f"{request.duration_minutes} min"),)),
        ("Available", _dates(request)),
        ("Urgency", (t(request.urgency.label),)),
    ]
    if request.tags:
        fields.append(("Tags", (t(", ".join(request.tags)),)))
    if with_student:
        fields.append(("Student", (person(request.student),)))
    fields.append(("Status", (t(request.status.badge),)))
    waiting = waiting_line(request, now) if now is not None else None
    if waiting is not None:
        fields.append(("Waiting", waiting))
    if request.times_proposed:
        fields.append(("Times", (t("times proposed, waiting for the student"),)))
    if with_match and request.status is Status.OPEN and request.matched is not None:
        fields.append(("Suggested", suggestion_line(request)))
    # A completed card keeps who mentored and when: organisers read the feed as a record.
    mentor = request.session.mentor if request.session is not None else request.claimed_by
    if request.status is Status.COMPLETED and mentor is not None:
        fields.append(("Mentor", (person(mentor),)))
    elif request.claimed_by is not None and request.status in (Status.CLAIMED, Status.SCHEDULED):
        fields.append(("Mentor", (person(request.claimed_by),)))
    if request.session is not None and request.status in (Status.SCHEDULED, Status.COMPLETED):
        fields.append(("When", (When(request.session.starts_at),)))
        if request.session.status is SessionStatus.NO_SHOW:  # "Completed", but it didn't happen
            fields.append(("Outcome", (t("No-show: the mentor reported that nobody joined"),)))
    return tuple(fields)


def suggestion_line(request: RequestView) -> Line:
    """ "@Mia, @Max · python, interviews", or say honestly that nobody matched."""
    if not request.suggested:
        return (t("Nobody yet: no available mentor's profile fits this request. All mentors can claim it."),)
    line: list[Inline] = []
    for index, (external_id, name) in enumerate(request.suggested):
        if index:
            line.append(t(", "))
        line.append(Person(external_id, name))
    if request.matched_tags:
        line.append(t(" · " + ", ".join(request.matched_tags)))
    return tuple(line)


def mentor_buttons(request: RequestView, now: datetime | None = None) -> tuple[Button, ...]:
    """The claimer's buttons for the request's state (anyone's Claim while open). A session marked
    done may still be reported as a no-show for a while (`now`: None when the time doesn't matter)."""
    rid = str(request.id)
    if request.status is Status.OPEN:
        return (Button("Claim", Action.CLAIM, rid, "primary"),)
    if request.status is Status.CLAIMED:
        return (
            Button("Propose times", Action.PROPOSE, rid, "primary"),
            Button("Schedule directly", Action.SCHEDULE, rid),
            Button("Release", Action.RELEASE, rid),
        )
    if request.status is Status.SCHEDULED:
        return (
            Button("Reschedule", Action.RESCHEDULE, rid),
            Button("Mark done", Action.COMPLETE, rid, "primary"),
            Button("No-show", Action.NO_SHOW, rid),
            Button("Release", Action.RELEASE, rid, "danger"),
        )
    if request.late_no_show_open(now):
        return (Button("No-show", Action.NO_SHOW, rid),)
    return ()


def student_buttons(request: RequestView) -> tuple[Button, ...]:
    if request.status.is_final:
        if request.status is Status.EXPIRED and request.reposted_as is None:
            return (Button("Post again", Action.REPOST, str(request.id), "primary"),)
        return ()
    return (Button("Cancel request", Action.CANCEL, str(request.id), "danger"),)


def session_value(request: RequestView) -> str:
    """`request:session:version`: a button about this very time, refused once it has moved."""
    assert request.session is not None
    return f"{request.id}:{request.session.id}:{request.session.schedule_version}"


def ask_to_reschedule(request: RequestView) -> Button:
    return Button("Ask to reschedule", Action.ASK_RESCHEDULE, session_value(request))


def cant_make_it(request: RequestView) -> Button:
    return Button("Can't make it", Action.CANT_MAKE_IT, session_value(request), "danger")


def put_back(request: RequestView) -> Button:
    # Post again under another name: the same once-only repost.
    return Button("Put it back in the feed", Action.REPOST, str(request.id), "primary")


def card(request: RequestView, now: datetime | None = None) -> Message:
    """The request's card in the mentors' feed, for its current status (and, while it is open,
    how long it has waited against its target, as of `now`)."""
    qualifier = {
        Status.OPEN: " · New mentorship request",
        Status.CANCELLED: (
            ": the mentor couldn't make it" if request.cancelled_by == "mentor" else " by the student"
        ),
        Status.EXPIRED: ": nobody claimed it in time",
    }.get(request.status, "")
    accent = "high" if request.urgency.value == "high" and request.status is Status.OPEN else None
    if request.status.is_final:
        accent = "muted"
    return Message(
        headline=f"{request.status.badge}{qualifier}",
        lines=(
            (t(request.title, bold=True),),
            (t(_shorten(request.description, CARD_DESCRIPTION_LIMIT)),),
        ),
        fields=request_fields(request, with_match=True, now=now),
        buttons=mentor_buttons(request, now),
        footer=(t(f"Request #{request.id} · posted "), When(request.created_at, "relative")),
        accent=accent,
    )


def escalation(request: RequestView, payload: dict[str, Any], now: datetime) -> Message:
    """The ladder's last step in the feed: the configured group (or the admins) is pinged."""
    pings = tuple(Ping(str(kind), str(ext)) for kind, ext in payload.get("pings", ()))
    since = request.waiting_since or request.created_at
    if payload.get("early"):
        headline = "🚨 No mentor's profile fits this request"
        why = "Nobody was suggested when it was posted. Can someone take it?"
    else:
        headline = f"🚨 Still unclaimed after {span(now - since)}"
        target = span(request.claim_target_at - since) if request.claim_target_at else "its target"
        why = f"Its first-claim target was {target}. Can someone take it?"
    lines: list[Line] = [
        title_line(request),
        (t(f"{request.session_type.label} · {request.duration_minutes} min · {request.urgency.label}"),),
        (t(why),),
    ]
    if not pings:
        lines.append((t("(No escalation group or admin is configured to mention.)"),))
    return Message(
        headline=headline,
        lines=tuple(lines),
        buttons=mentor_buttons(request),
        accent="high" if request.urgency.value == "high" else None,
        pings=pings,
    )


def retired(request: RequestView, reader: MemberRef | None = None) -> Message:
    """What a Claim message (suggestion DM, escalation) becomes once the request is taken;
    `reader` is the mentor whose DM it is (None in the feed)."""
    taker = request.claimed_by or (request.session.mentor if request.session else None)
    taken = request.status in (Status.CLAIMED, Status.SCHEDULED, Status.COMPLETED)
    if taker is not None and taken and reader is not None and reader.id == taker.id:
        headline = "You claimed this"  # from the card or this DM: either way, it is theirs now
        says: Line = (t("You claimed this request; it is on your dashboard."),)
    elif taker is not None and taken:
        headline = f"Claimed by {taker.display_name}"
        says = (t("This request was claimed by "), person(taker), t(". Nothing to do."))
    elif request.status is Status.OPEN:  # released again since: the card has the live button
        headline = "Back in the feed"
        says = (t("Claim it from its card in the mentors' feed."),)
    else:
        headline = "No longer open"
        says = (t(f"This request is {request.status.value}. Nothing to do."),)
    return Message(headline=headline, lines=(title_line(request), says), accent="muted")


def title_line(request: RequestView) -> Line:
    return (t(request.title, bold=True),)


def dashboard_item(request: RequestView, *, viewer_id: str, problems: tuple[str, ...] = ()) -> Message:
    """One row of a dashboard; buttons only for what this viewer may do; `problems` are
    messages we could not deliver (e.g. DMs closed), so nobody waits for a DM that never came."""
    if request.student.external_id == viewer_id:
        buttons = student_buttons(request)
        if (
            request.session
            and request.status is Status.COMPLETED
            and request.session.status is SessionStatus.COMPLETED  # a no-show is not rated
            and request.session.rating is None
        ):
            buttons = tuple(_rating_buttons(request))[:5]
    elif request.claimed_by is not None and request.claimed_by.external_id == viewer_id:
        buttons = mentor_buttons(request)
    else:
        buttons = mentor_buttons(request) if request.status is Status.OPEN else ()
    fields = request_fields(request, with_student=request.student.external_id != viewer_id)
    lines: list[Line] = [(t(request.title, bold=True),)]
    if request.reposted_as is not None:
        lines.append((t(f"Posted again as request #{request.reposted_as}."),))
    lines += [(t(f"⚠️ {problem}"),) for problem in problems]
    return Message(
        headline=f"{request.status.badge} · #{request.id}",
        lines=tuple(lines),
        fields=fields,
        buttons=buttons,
    )


def _rating_buttons(request: RequestView) -> list[Button]:
    return [
        Button("★" * n, Action.RATE, f"{request.id}:{n}", "primary" if n == 5 else None) for n in range(1, 6)
    ]


def _session_lines(request: RequestView, late: bool = False) -> list[Line]:
    assert request.session is not None
    session = request.session
    lines: list[Line] = [
        (
            t("When: ", bold=True),
            When(session.starts_at),
            # The length and the countdown apart, so "in 29 hours, 45 min" never reads as one span.
            t(f" · {request.duration_minutes} min session, starts "),
            When(session.starts_at, "relative"),
        ),
        (t("Join: ", bold=True), Link(session.meeting_url, session.meeting_url)),
        (Link(google_calendar_url(request, session), "Add to Google Calendar"),),
    ]
    if session.note:
        lines.append((t("Note from your mentor: ", bold=True), t(session.note)))
    return lines


def _invite(request: RequestView, now: datetime) -> Attachment:
    assert request.session is not None
    return Attachment(
        filename=f"mentorship-{request.id}.ics",
        content=ics_file(request, request.session, now),
        mime="text/calendar",
        title="Calendar invite",
    )


def _calendar_cancel(
    request: RequestView, now: datetime, reader: MemberRef | None, payload: dict[str, Any] | None = None
) -> Attachment | None:
    """The METHOD:CANCEL file for a session this change called off, so calendars drop it; only
    for the two people who had it (a mentor who claimed after another's session was called off
    never had that event). The file made when it was called off (`payload["ics"]`) wins: by
    delivery the request may have a newer session (booked again, or claimed again)."""
    ics = (payload or {}).get("ics")
    if isinstance(ics, str) and ics:
        return _cancel_file(request.id, ics.encode())
    session = request.session
    if session is None or session.status is not SessionStatus.CANCELLED:
        return None
    if reader is None or reader.id not in (request.student.id, session.mentor.id):
        return None
    return _cancel_file(request.id, ics_file(request, session, now, cancel=True))


def _cancel_file(request_id: int, content: bytes) -> Attachment:
    return Attachment(
        filename=f"mentorship-{request_id}-cancelled.ics",
        content=content,
        mime="text/calendar",
        title="Remove from calendar",
    )


def compose(
    kind: Kind, payload: dict[str, Any], request: RequestView, reader: MemberRef | None, now: datetime
) -> Message:
    """The message of one outbox row, for `reader` (None for the feed)."""
    rid = str(request.id)
    title = (t(request.title, bold=True),)
    is_student = reader is not None and reader.id == request.student.id
    mentor = request.claimed_by or (request.session.mentor if request.session else None)

    if kind is Kind.CARD:
        return card(request, now)
    if kind is Kind.ESCALATION:
        return escalation(request, payload, now)
    if kind is Kind.MORE_MENTORS_ASKED:
        who = "the mentors' escalation group" if payload.get("group") else "the organisers"
        if payload.get("pinged", True) is False:  # no group or admin configured: nobody mentioned
            why = (
                "No mentor's profile fits it, so we've asked all the mentors to look at it."
                if payload.get("early")
                else "No mentor has claimed it yet, so we've asked the mentors again to look at it."
            )
        elif payload.get("early"):
            why = f"No mentor's profile fits it, so we've asked {who} to look at it."
        else:
            why = f"No mentor has claimed it yet, so we've asked more mentors and {who} to look at it."
        return Message(
            headline="More people have been asked",
            lines=(title, (t(why + " You'll get a message here when one claims it."),)),
            buttons=student_buttons(request),
        )
    if kind is Kind.CLAIM_RETIRED:
        return retired(request, reader)
    if kind is Kind.NUDGE:
        hours = int((now - request.created_at).total_seconds() // 3600)
        return Message(
            headline=f"⏳ Still looking for a mentor (open {hours} h)",
            lines=(
                title,
                (
                    t(f"{request.session_type.label} · {request.duration_minutes} min · "),
                    t(request.urgency.label),
                ),
            ),
            buttons=mentor_buttons(request),
            accent="high" if request.urgency.value == "high" else None,
        )
    if kind is Kind.MATCH_SUGGESTED:
        shared = [tag for tag in request.tags if tag in payload.get("tags", ())]
        why = f"You list {', '.join(shared)}." if shared else "You have room for another session."
        return Message(
            headline="A request that fits you",
            lines=(title, (t(why + " Claim it if you can take it."),)),
            fields=request_fields(request),
            buttons=mentor_buttons(request),
        )
    if kind is Kind.REQUEST_POSTED:
        return Message(
            headline="Your request is posted",
            lines=(
                title,
                (t("Mentors have been told. You'll get a message here when one claims it."),),
                *_expectation_lines(request, payload),
            ),
            fields=request_fields(request, with_student=False),
            buttons=student_buttons(request),
        )
    if kind is Kind.REQUEST_CLAIMED:
        # Released again before this was sent: the mentor is no longer on the request.
        claimer: Line = (person(mentor),) if mentor is not None else (t("A mentor"),)
        return Message(
            headline="A mentor claimed your request",
            lines=(
                claimer + (t(" will mentor you on "),) + title,
                (t("They'll pick a time inside your dates; you'll get the invite here."),),
            ),
            buttons=student_buttons(request),
        )
    if kind is Kind.CLAIM_RELEASED:
        dates_over = bool(payload.get("dates_over"))
        return Message(
            headline="Your request expired" if dates_over else "Your request is open again",
            lines=(
                (t(str(payload.get("mentor_name", "Your mentor"))), t(" can't take "))
                + title
                + (t(" after all."),),
                (
                    t(
                        "Your dates are over, so no other mentor can take it: post it again with "
                        "one click, with new dates."
                    )
                    if dates_over
                    else t("It's back in the mentors' feed for someone else to claim."),
                ),
            ),
            buttons=student_buttons(request),
            attachment=_calendar_cancel(request, now, reader, payload),
        )
    if kind in (Kind.SESSION_SCHEDULED, Kind.SESSION_RESCHEDULED):
        assert request.session is not None
        other = request.session.mentor if is_student else request.student
        verb = (
            "is scheduled"
            if kind is Kind.SESSION_SCHEDULED
            else "has a new link or note"
            if payload.get("same_time")
            else "has a new time"
        )
        buttons = (
            (ask_to_reschedule(request), *student_buttons(request))
            if is_student
            else (
                Button("Reschedule", Action.RESCHEDULE, rid),
                Button("Cancel session", Action.CANCEL_SESSION, rid, "danger"),
            )
        )
        return Message(
            headline=f"Your mentorship session {verb}",
            lines=((t("With "), person(other), t(": ")) + title, *_session_lines(request)),
            buttons=buttons,
            attachment=_invite(request, now),
        )
    if kind is Kind.SESSION_CANCELLED:
        by_mentor = payload.get("by") == "mentor"
        lines: list[Line] = [
            (t(str(payload.get("by_name", "")) or "They"), t(" cancelled the session for ")) + title
        ]
        lines.append((t("They'll pick a new time soon."),) if by_mentor else (t("Nothing more to do."),))
        return Message(
            headline="Session cancelled",
            lines=tuple(lines),
            buttons=student_buttons(request) if is_student else (),
            attachment=_calendar_cancel(request, now, reader, payload),
        )
    if kind is Kind.REQUEST_CANCELLED:
        return Message(
            headline="Request cancelled",
            lines=(
                (person(request.student), t(" cancelled ")) + title,
                (t("You don't need to do anything; any calendar slot is free again."),),
            ),
            accent="muted",
            attachment=_calendar_cancel(request, now, reader),
        )
    if kind is Kind.CALENDAR_REMOVED:
        # The other person is told why; this one only needs the event gone from their calendar.
        # The file was made when the session was called off: by delivery the request may have
        # a newer session (rescheduled, or claimed again), which is not the one to remove.
        return Message(
            headline="Removed from your calendar",
            lines=(
                title,
                (t("You called this session off. The attached file removes it from your calendar."),),
            ),
            accent="muted",
            attachment=_calendar_cancel(request, now, reader, payload),
        )
    if kind is Kind.REQUEST_EXPIRED:
        return Message(
            headline="Your request expired",
            lines=(
                title,
                (
                    t(
                        "No mentor could take it this time. Post it again with one click, "
                        "maybe with wider dates."
                    ),
                ),
            ),
            buttons=student_buttons(request),
            accent="muted",
        )
    if kind is Kind.REMINDER:
        assert request.session is not None
        other = request.session.mentor if is_student else request.student
        soon = _in_words(request.session.starts_at - now)
        headline = f"⏰ Reminder: your session starts in {soon}"
        if payload.get("late"):
            headline += " (sorry, this reminder is late)"
        reminder_buttons: list[Button] = [ask_to_reschedule(request)] if is_student else []
        if payload.get("cant_make_it"):
            reminder_buttons.append(cant_make_it(request))
        return Message(
            headline=headline,
            lines=((t("With "), person(other), t(": ")) + title, *_session_lines(request)),
            buttons=tuple(reminder_buttons),
        )
    if kind is Kind.RATING_PROMPT:
        assert request.session is not None
        return Message(
            headline="How was your session?",
            lines=(
                (t("Rate your session with "), person(request.session.mentor), t(": ")) + title,
                (t("Your rating helps mentors and organisers. You can add a short review next."),),
            ),
            buttons=(*_rating_buttons(request), Button("Write a review", Action.REVIEW, rid)),
        )
    if kind is Kind.NO_SHOW:
        return Message(
            headline="Session marked as a no-show",
            lines=(
                (t("Your mentor reported that the session for "),)
                + title
                + (t(" didn't happen because nobody joined."),),
                (t("If that's wrong, reply to your organisers. You can post a new request anytime."),),
            ),
            accent="muted",
        )
    if kind is Kind.TIMES_PROPOSED:
        tz_name = str(payload.get("tz") or (reader.timezone if reader else None) or "UTC")
        times = [datetime.fromisoformat(str(at)) for at in payload.get("times", [])]
        pid = str(payload.get("proposal_id", ""))
        assert mentor is not None
        proposed_lines: list[Line] = [
            (person(mentor), t(" proposed times for ")) + title,
            (t("Pick the one that suits you; the first pick books it."),),
            *((t("• "), When(at)) for at in times),
        ]
        if payload.get("note"):
            proposed_lines.append((t("Note from your mentor: ", bold=True), t(str(payload["note"]))))
        if payload.get("rescheduling"):
            proposed_lines.append((t("Your current time stays booked until you pick a new one."),))
        return Message(
            headline="Your mentor proposed times",
            lines=tuple(proposed_lines),
            buttons=(
                *(
                    Button(local_label(at, tz_name), Action.PICK_TIME, f"{rid}:{pid}:{n}", "primary")
                    for n, at in enumerate(times)
                ),
                Button("None of these work", Action.NONE_WORK, f"{rid}:{pid}"),
            ),
        )
    if kind is Kind.TIMES_DECLINED:
        declined: list[Line] = [(person(request.student), t(" can't make any of the times for ")) + title]
        if payload.get("note"):
            declined.append((t("Their note: ", bold=True), t(str(payload["note"]))))
        if request.status is Status.SCHEDULED:
            declined.append((t("The booked time still stands."),))
        return Message(
            headline="None of the proposed times work",
            lines=tuple(declined),
            buttons=(
                Button("Propose other times", Action.PROPOSE, rid, "primary"),
                Button("Schedule directly", Action.SCHEDULE, rid),
            ),
        )
    if kind is Kind.RESCHEDULE_ASKED:
        aid = f"{rid}:{payload.get('ask_id', '')}"
        asked: list[Line] = [(person(request.student), t(" asks to reschedule the session for ")) + title]
        if request.session is not None:
            asked.append((t("Booked now: ", bold=True), When(request.session.starts_at)))
        asked.append((t("Their reason: ", bold=True), t(str(payload.get("reason", "")))))
        return Message(
            headline="Your student asks to reschedule",
            lines=tuple(asked),
            buttons=(
                Button("Propose new times", Action.ASK_PROPOSE, aid, "primary"),
                Button("Keep the time", Action.KEEP_TIME, aid),
            ),
        )
    if kind is Kind.TIME_KEPT:
        kept: list[Line] = [
            (t("Your mentor can't move the session for "),) + title + (t(", so the time stands."),)
        ]
        if request.session is not None and request.status is Status.SCHEDULED:
            kept.append((t("When: ", bold=True), When(request.session.starts_at)))
        # The time stands, but the student may still not make it: they can ask again (a new
        # reason) or cancel, as from the scheduled DM.
        own = student_buttons(request)
        live = request.session is not None and request.status is Status.SCHEDULED
        return Message(
            headline="Your session keeps its time",
            lines=tuple(kept),
            buttons=(ask_to_reschedule(request), *own) if live else own,
        )
    if kind is Kind.CANT_MAKE_IT:
        by_student = payload.get("by") == "student"
        said_it = is_student == by_student  # this reader is the one who called it off
        reason = str(payload.get("reason") or "")
        off: list[Line] = (
            [(t("You called off the session for "),) + title + (t("."),)]
            if said_it
            else [(t(str(payload.get("by_name", "")) or "They"), t(" can't make the session for ")) + title]
        )
        if reason and not said_it:
            off.append((t("Their reason: ", bold=True), t(reason)))
        off.append((t("The session and the request are cancelled; the calendar event is removed."),))
        if is_student:
            off.append((t("Want another mentor? Put the request back in the feed with one click."),))
        return Message(
            headline="Session called off" if said_it else "Your session is called off",
            lines=tuple(off),
            buttons=(put_back(request),) if is_student else (),
            attachment=_calendar_cancel(request, now, reader),
            accent="muted",
        )
    if kind is Kind.PROPOSAL_WITHDRAWN:
        withdrawn: list[Line] = [
            (t("The student didn't pick any of the times for "),)
            + title
            + (t(", and they have all passed."),),
            (t("They are withdrawn; propose new ones when you can."),),
        ]
        if request.status is Status.SCHEDULED:  # new times for a booked session: it stays booked
            withdrawn.append((t("The booked time still stands."),))
        return Message(
            headline="Your proposed times have passed",
            lines=tuple(withdrawn),
            buttons=(Button("Propose other times", Action.PROPOSE, rid, "primary"),),
        )
    if kind is Kind.DELIVERY_FAILED:
        return Message(
            headline="We couldn't reach the other person",
            lines=(
                (t(f"{payload.get('name', 'They')} didn't get our message about "),) + title + (t("."),),
                (t(f"Reason: {payload.get('reason', 'unknown')}. Please contact them directly."),),
            ),
        )
    if kind is Kind.RATED:
        stars = int(payload.get("rating", 0))
        shown = f"{'★' * stars}{'☆' * (5 - stars)}"
        if payload.get("review"):
            # Owed apart from the stars' DM when the review follows them: say what is new.
            return Message(
                headline="You got a review",
                lines=(
                    (person(request.student), t(f" wrote a review ({shown}) of your session for ")) + title,
                    (t("“"), t(str(payload["review"])), t("”")),
                ),
            )
        lines = [(person(request.student), t(f" rated your session {shown} for ")) + title]
        return Message(headline="You got a rating", lines=tuple(lines))
    raise AssertionError(f"no composer for {kind}")


def compose_shared(kind: Kind, payload: dict[str, Any], request: RequestView, now: datetime) -> Message:
    """A message for the shared conversation of student and mentor: news for both of them at
    once, so no buttons (each person's own DM has those) and no "you"."""
    title = (t(request.title, bold=True),)
    mentor = request.claimed_by or (request.session.mentor if request.session else None)
    mentor_name: Line = (person(mentor),) if mentor is not None else (t("The mentor"),)
    if kind is Kind.CONVERSATION_OPENED:
        return Message(
            headline="A place to talk about your session",
            lines=(
                (person(request.student), t(" and "), *mentor_name, t(": this conversation is for you two.")),
                title,
                (t(_shorten(request.description, CARD_DESCRIPTION_LIMIT)),),
                (t("Scheduling news shows up here too; your buttons stay in your own DMs."),),
            ),
            fields=request_fields(request, with_student=False),
        )
    if kind is Kind.CONVERSATION_CLOSED:
        return Message(
            headline="This conversation is closed",
            lines=((t("This conversation is closed: "), t(str(payload.get("reason", "")))),),
            accent="muted",
        )
    if kind is Kind.TIMES_PROPOSED:
        times = [datetime.fromisoformat(str(at)) for at in payload.get("times", [])]
        lines: list[Line] = [
            mentor_name + (t(" proposed times for "),) + title,
            *((t("• "), When(at)) for at in times),
            (person(request.student), t(" picks one in their DM; the first pick books it.")),
        ]
        if payload.get("note"):
            lines.append((t("Note: ", bold=True), t(str(payload["note"]))))
        return Message(headline="Times proposed", lines=tuple(lines))
    if kind is Kind.TIMES_DECLINED:
        lines = [(person(request.student), t(" can't make any of the proposed times."))]
        if payload.get("note"):
            lines.append((t("Their note: ", bold=True), t(str(payload["note"]))))
        return Message(headline="None of the times work", lines=tuple(lines))
    if kind is Kind.PROPOSAL_WITHDRAWN:
        return Message(
            headline="Proposed times withdrawn",
            lines=((t("All the proposed times have passed without a pick; new ones will follow."),),),
        )
    if kind in (Kind.SESSION_SCHEDULED, Kind.SESSION_RESCHEDULED):
        # What was agreed then (the payload), not what the session is by the time this is sent.
        session = request.session
        at = payload.get("starts_at") or (session.starts_at.isoformat() if session else None)
        url = str(payload.get("url") or (session.meeting_url if session else ""))
        if at is None:
            return Message(headline="Session time changed", lines=((t("See your DMs for the details."),),))
        if kind is Kind.SESSION_RESCHEDULED:
            headline = (
                "New link or note, same time" if payload.get("same_time") else "Session moved to a new time"
            )
        elif payload.get("picked"):
            headline = "Time picked, session scheduled"
        else:
            headline = "Session scheduled"
        return Message(
            headline=headline,
            lines=(
                (
                    t("When: ", bold=True),
                    When(datetime.fromisoformat(str(at))),
                    t(f" · {request.duration_minutes} min"),
                ),
                (t("Join: ", bold=True), Link(url, url)),
                (t("The calendar invite is in your DMs."),),
            ),
        )
    if kind is Kind.SESSION_CANCELLED:
        return Message(
            headline="Session time cancelled",
            lines=(
                (
                    t(str(payload.get("by_name", "")) or "The mentor"),
                    t(" cancelled the session time; a new one will follow."),
                ),
            ),
        )
    if kind is Kind.RESCHEDULE_ASKED:
        lines = [(person(request.student), t(" asked to move the session to another time."))]
        if payload.get("reason"):
            lines.append((t("Reason: ", bold=True), t(str(payload["reason"]))))
        lines.append((*mentor_name, t(" answers in their DM: new times, or keep this one.")))
        return Message(headline="Asked to reschedule", lines=tuple(lines))
    if kind is Kind.TIME_KEPT:
        return Message(
            headline="The time stands",
            lines=((*mentor_name, t(" kept the session at its booked time.")),),
        )
    # A kind with no wording of its own here: what the other DMs say, without the buttons and
    # files that belong in each person's DM.
    return replace(compose(kind, payload, request, None, now), buttons=(), attachment=None)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_label(at: datetime, tz_name: str) -> str:
    """A time as button text (buttons can't localize), in the reader's zone: `Tue 08 Jan 21:00 CET`."""
    local = at.astimezone(_zone(tz_name))
    return local.strftime("%a %d %b %H:%M ") + (local.tzname() or tz_name)


def _expectation_lines(request: RequestView, payload: dict[str, Any]) -> list[Line]:
    """An honest expectation: mentors listing the tags; the usual wait when we know it."""
    lines: list[Line] = []
    listing = payload.get("mentors_listing")
    if request.tags and isinstance(listing, int):
        who = "1 mentor lists" if listing == 1 else f"{listing} mentors list"
        lines.append((t(f"{who} these tags."),))
    median = payload.get("median_claim_seconds")
    if isinstance(median, int | float):
        wait = _in_words(timedelta(seconds=median))
        lines.append((t(f"Requests like this are usually claimed within {wait}."),))
    return lines


def _in_words(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if minutes < 48 * 60:
        # To the nearest half hour: a 90-minute reminder says "1 hour 30 minutes", not "2 hours".
        halves = round(minutes / 30)
        hours, half = divmod(halves, 2)
        said = f"{hours} hour{'s' if hours != 1 else ''}"
        return f"{said} 30 minutes" if half else said
    return f"{round(minutes / 1440)} days"


__all__ = ["FEED_KINDS", "Kind", "Link", "Message", "Text", "When", "card", "compose", "compose_shared"]
