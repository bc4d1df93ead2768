"""Meeting links, .ics files and Google Calendar "add event" links for a scheduled session."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

from icalendar import Calendar, Event

from bot.domain import RequestView, SessionView

PRODID = "-//Mini Mentorship//mini-mentorship//EN"
# The "Add to Google Calendar" link is shown inside the message (Slack's section holds 3,000
# characters, Discord's embed 4,096), and a non-Latin title or note grows up to 12-fold when
# percent-encoded. Past this length the link leaves out the note, then the details: the .ics
# file and the message itself carry them.
GOOGLE_URL_LIMIT = 1500


def generate_meeting_link(template: str) -> str:
    # Unguessable room names: anyone with the link can join a Jitsi room.
    return template.replace("{token}", secrets.token_urlsafe(12).replace("_", "").replace("-", ""))


def event_title(request: RequestView) -> str:
    return f"Mentorship: {request.title}"


def event_details(request: RequestView, session: SessionView, *, note: bool = True) -> str:
    lines = [
        f"{request.session_type.label} with {session.mentor.display_name} "
        f"and {request.student.display_name}.",
        f"Join: {session.meeting_url}",
    ]
    if note and session.note:
        lines.append(f"Note: {session.note}")
    return "\n".join(lines)


def event_uid(request: RequestView, session: SessionView) -> str:
    return f"session-{session.id}-request-{request.id}@mini-mentorship"


def ics_file(request: RequestView, session: SessionView, now: datetime, *, cancel: bool = False) -> bytes:
    """An .ics calendar apps apply in place: the same UID for the session's whole life, a
    SEQUENCE that grows with each new time (METHOD:REQUEST), and METHOD:CANCEL with a SEQUENCE
    above the last one when it is called off, so the event disappears instead of lingering."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", event_uid(request, session))
    # schedule_version starts at 1 and only grows; a cancel must outrank the last update.
    event.add("sequence", session.schedule_version + (1 if cancel else 0))
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", session.starts_at.astimezone(UTC))
    event.add("dtend", session.ends_at.astimezone(UTC))
    event.add("summary", event_title(request))
    event.add("description", event_details(request, session))
    event.add("location", session.meeting_url)
    event.add("url", session.meeting_url)
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def google_calendar_url(request: RequestView, session: SessionView) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    url = ""
    for details in (event_details(request, session), event_details(request, session, note=False), None):
        fields = {
            "action": "TEMPLATE",
            "text": event_title(request),
            "dates": f"{session.starts_at.astimezone(UTC).strftime(stamp)}/"
            f"{session.ends_at.astimezone(UTC).strftime(stamp)}",
            **({"details": details} if details is not None else {}),
            "location": session.meeting_url,
        }
        url = f"https://calendar.google.com/calendar/render?{urlencode(fields)}"
        if len(url) <= GOOGLE_URL_LIMIT:
            break
    return url
