"""One platform-neutral spec per form: fields, choices, limits, parsing and field-level errors.

Slack's Block Kit modal and Discord's ui.Modal are both drawn from these specs, and both hand
back a plain `{field_id: text}` mapping, so the rules live here once. Errors are keyed by field
id, phrased for the person filling the form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.domain import DURATIONS, Availability, SessionType, Urgency

Values = Mapping[str, str | None]
Errors = dict[str, str]


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Field:
    id: str
    label: str
    kind: str  # text | multiline | select | date | datetime | url
    required: bool = True
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[Choice, ...] = ()
    placeholder: str = ""
    hint: str = ""
    default: str | None = None


@dataclass(frozen=True)
class FormSpec:
    id: str
    title: str
    submit: str
    fields: tuple[Field, ...]

    def field(self, field_id: str) -> Field:
        return next(f for f in self.fields if f.id == field_id)


TITLE = (5, 100)
DESCRIPTION = (20, 2000)
MAX_TAGS, TAG_LENGTH = 5, 30
MAX_RANGE_DAYS = 30
# How far ahead a request may start (the README says so): far enough for any real plan, near
# enough that no date arithmetic downstream comes close to datetime's limits.
HORIZON_DAYS = 60
NOTE_LENGTH = 500
REVIEW_LENGTH = 1000
URL_LENGTH = 500

REQUEST_FORM = FormSpec(
    id="request",
    title="Request a mini session",
    submit="Post request",
    fields=(
        Field(
            "title",
            "What do you need help with?",
            "text",
            min_length=TITLE[0],
            max_length=TITLE[1],
            placeholder="e.g. Mock interview for a junior backend role",
        ),
        Field(
            "session_type",
            "Session type",
            "select",
            choices=tuple(Choice(t.value, t.label) for t in SessionType),
        ),
        Field(
            "description",
            "Description",
            "multiline",
            min_length=DESCRIPTION[0],
            max_length=DESCRIPTION[1],
            placeholder="Context, what you've tried, what a good session looks like",
        ),
        Field(
            "duration",
            "Duration",
            "select",
            default="30",
            choices=tuple(Choice(str(d), f"{d} minutes") for d in DURATIONS),
        ),
        Field("available_from", "Available from", "date", hint=f"YYYY-MM-DD, within {HORIZON_DAYS} days"),
        Field(
            "available_until", "Available until", "date", hint=f"YYYY-MM-DD, at most {MAX_RANGE_DAYS} days on"
        ),
        Field(
            "urgency",
            "Urgency",
            "select",
            default=Urgency.NORMAL.value,
            choices=tuple(Choice(u.value, u.value.capitalize()) for u in Urgency),
        ),
        Field(
            "tags",
            "Tags",
            "text",
            required=False,
            max_length=MAX_TAGS * (TAG_LENGTH + 2),
            placeholder="python, interviews",
            hint=f"Up to {MAX_TAGS}, comma-separated",
        ),
    ),
)

SCHEDULE_FORM = FormSpec(
    id="schedule",
    title="Schedule session",
    submit="Schedule",
    fields=(
        Field(
            "slot",
            "Suggested time",
            "select",
            required=False,
            hint="From your weekly availability, inside the student's dates",
        ),
        Field(
            "starts_at",
            "Or pick a time",
            "datetime",
            required=False,
            hint="YYYY-MM-DD HH:MM in your time zone",
        ),
        Field(
            "meeting_url",
            "Meeting link",
            "url",
            required=False,
            max_length=URL_LENGTH,
            hint="Leave empty to get a generated video-call room",
        ),
        Field("note", "Note for the student", "multiline", required=False, max_length=NOTE_LENGTH),
    ),
)

MAX_PROPOSED = 3
PROPOSE_FORM = FormSpec(
    id="propose",
    title="Propose times",
    submit="Send to student",
    fields=(
        *(
            Field(
                f"time_{n}",
                f"Time {n}",
                "datetime",
                required=n == 1,
                hint="YYYY-MM-DD HH:MM in your time zone" + ("" if n > 1 else "; the student picks one"),
            )
            for n in range(1, MAX_PROPOSED + 1)
        ),
        Field(
            "meeting_url",
            "Meeting link",
            "url",
            required=False,
            max_length=URL_LENGTH,
            hint="Leave empty to get a generated video-call room",
        ),
        Field("note", "Note for the student", "multiline", required=False, max_length=NOTE_LENGTH),
    ),
)

NONE_WORK_FORM = FormSpec(
    id="none_work",
    title="None of these work",
    submit="Tell the mentor",
    fields=(
        Field(
            "note",
            "What would work?",
            "multiline",
            required=False,
            max_length=NOTE_LENGTH,
            placeholder="e.g. evenings after 18:00 work",
        ),
    ),
)

REASON_LENGTH = 300
RESCHEDULE_ASK_FORM = FormSpec(
    id="reschedule_ask",
    title="Ask to reschedule",
    submit="Ask the mentor",
    fields=(
        Field(
            "reason",
            "Why do you need another time?",
            "multiline",
            max_length=REASON_LENGTH,
            placeholder="e.g. my interview moved to Thursday",
        ),
    ),
)

CANT_MAKE_IT_FORM = FormSpec(
    id="cant_make_it",
    title="Can't make it",
    submit="Cancel the session",
    fields=(
        Field(
            "reason",
            "Reason (optional)",
            "multiline",
            required=False,
            max_length=REASON_LENGTH,
            placeholder="e.g. I'm ill, sorry",
        ),
    ),
)

MAX_SKILLS = 10
CAPACITY_RANGE = (1, 10)

PROFILE_FORM = FormSpec(
    id="profile",
    title="Your mentor profile",
    submit="Save",
    fields=(
        Field(
            "skills",
            "Skills",
            "text",
            required=False,
            max_length=400,
            placeholder="python, interviews, career",
            hint=f"Up to {MAX_SKILLS} tags, separated by commas; requests with these tags come to you first",
        ),
        Field(
            "capacity",
            "Active sessions you take at once",
            "text",
            max_length=2,
            placeholder="3",
            hint=f"Claimed + scheduled, {CAPACITY_RANGE[0]}–{CAPACITY_RANGE[1]}",
        ),
        Field(
            "away_until",
            "Away until",
            "date",
            required=False,
            hint="Empty means available; no requests come to you before this date",
        ),
    ),
)


@dataclass(frozen=True)
class ProfileInput:
    skills: tuple[str, ...]
    capacity: int
    away_until: date | None


def parse_profile(values: Values, *, today: date) -> ProfileInput | Errors:
    """Field-level checks of the mentor profile form."""
    errors: Errors = {}
    skills, problem = parse_tags(_text(values, "skills"), limit=MAX_SKILLS)
    if problem:
        errors["skills"] = problem
    low, high = CAPACITY_RANGE
    raw = _text(values, "capacity")
    capacity = int(raw) if raw.isascii() and raw.isdigit() else None  # int("²") raises
    if capacity is None or not low <= capacity <= high:
        errors["capacity"] = f"Please give a whole number from {low} to {high}."
    away_text = _text(values, "away_until")
    away = parse_date(away_text) if away_text else None
    if away_text and away is None:
        errors["away_until"] = (
            _no_such_day(away_text) or "Please give a date like 2026-12-24, or leave it empty."
        )
    elif away is not None and away <= today:
        errors["away_until"] = "That date is not in the future; leave it empty if you're available."
    if errors or capacity is None:
        return errors
    return ProfileInput(tuple(skills), capacity, away)


AVAILABILITY_FORM = FormSpec(
    id="availability",
    title="Weekly availability",
    submit="Save",
    fields=(
        Field(
            "windows",
            "When can you mentor each week?",
            "multiline",
            required=False,
            max_length=1000,
            placeholder="Mon 18:00-20:00, Wed 12:00-13:30",
            hint="Day HH:MM-HH:MM, separated by commas or new lines; empty clears it",
        ),
        Field(
            "timezone",
            "Your time zone",
            "text",
            max_length=64,
            placeholder="Europe/Berlin",
            hint="An IANA zone name",
        ),
    ),
)

REVIEW_FORM = FormSpec(
    id="review",
    title="Rate your session",
    submit="Send",
    fields=(
        Field("rating", "Rating", "select", choices=tuple(Choice(str(n), "★" * n) for n in range(1, 6))),
        Field("review", "Review (optional)", "multiline", required=False, max_length=REVIEW_LENGTH),
    ),
)


# Parsed results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestInput:
    title: str
    session_type: SessionType
    description: str
    duration_minutes: int
    available_from: date
    available_until: date
    urgency: Urgency
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ScheduleInput:
    starts_at: datetime
    meeting_url: str | None
    note: str


# Helpers ----------------------------------------------------------------------------------


def _text(values: Values, field_id: str) -> str:
    return (values.get(field_id) or "").strip()


# Letters that draw nothing: the Hangul fillers and the blank Braille pattern, the usual stuff of
# "invisible" names.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(ch: str) -> bool:
    """A character that shows nothing and takes no space: a format character (zero-width
    spaces and joiners, a BOM, direction marks) or a blank letter."""
    return unicodedata.category(ch) == "Cf" or ch in _BLANK_LETTERS


def _blank(text: str) -> bool:
    """Nothing a reader would see: spaces, or only invisible characters."""
    return all(ch.isspace() or _invisible(ch) for ch in text)


def _check_length(spec: Field, text: str, errors: Errors) -> None:
    if _blank(text):
        if spec.required:
            errors[spec.id] = "Please fill this in."
        return
    seen = sum(not _invisible(ch) for ch in text)  # invisible padding is not "at least N"
    if spec.min_length is not None and seen < spec.min_length:
        errors[spec.id] = f"Please write at least {spec.min_length} characters (you wrote {seen})."
    elif spec.max_length is not None and len(text) > spec.max_length:
        errors[spec.id] = f"Please keep it to {spec.max_length} characters (you wrote {len(text)})."


def _choice(spec: Field, values: Values, errors: Errors) -> str | None:
    raw = _text(values, spec.id) or (spec.default or "")
    if not raw:
        errors[spec.id] = "Please choose one."
        return None
    if raw not in {c.value for c in spec.choices}:
        errors[spec.id] = "Please choose one of: " + ", ".join(c.label for c in spec.choices) + "."
        return None
    return raw


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# A typed time: the date, then HH:MM with optional seconds and fraction, then an optional offset.
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?", re.ASCII
)
_EPOCH = re.compile(r"\d{9,11}", re.ASCII)


def parse_date(text: str) -> date | None:
    """YYYY-MM-DD in ASCII digits, else None (never raises)."""
    text = text.strip()
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _no_such_day(text: str) -> str | None:
    """The problem with a date written the right way that the calendar does not have
    (2031-02-29, 2030-04-31), so nobody is told to write it "like 2030-01-31" when they did."""
    head = text.strip()[:10]
    if not _ISO_DATE.fullmatch(head):
        return None
    try:
        date.fromisoformat(head)
    except ValueError:
        return f"There is no {head} in the calendar; please check the day and month."
    return None


def _days_after(day: date, days: int) -> date:
    """`day` + `days`, stopping at the last date there is rather than overflowing."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max


def parse_tags(text: str, limit: int = MAX_TAGS) -> tuple[list[str], str | None]:
    tags: list[str] = []
    for part in re.split(r"[,\n]", text):
        tag = part.strip().lstrip("#").strip().lower()
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > limit:
        return tags, f"Please use at most {limit} tags (you gave {len(tags)})."
    long = [t for t in tags if len(t) > TAG_LENGTH]
    if long:
        return tags, f"Each tag can be at most {TAG_LENGTH} characters ({long[0][:40]!r} is longer)."
    return tags, None


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
        return ZoneInfo(default)


def date_in(now: datetime, name: str | None, default: str = "UTC") -> date:
    """The date at `now` in zone `name` (`default` when it has none or it is not a zone)."""
    return now.astimezone(zone(name, default)).date()


def is_timezone(name: str) -> bool:
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
        return False
    return True


def timezone_names() -> list[str]:
    return sorted(available_timezones())


# The forms --------------------------------------------------------------------------------


def parse_request(values: Values, *, today: date) -> RequestInput | Errors:
    """`today` is the date in the student's own zone."""
    errors: Errors = {}
    spec = REQUEST_FORM
    title, description = _text(values, "title"), _text(values, "description")
    _check_length(spec.field("title"), title, errors)
    _check_length(spec.field("description"), description, errors)
    session_type = _choice(spec.field("session_type"), values, errors)
    duration = _choice(spec.field("duration"), values, errors)
    urgency = _choice(spec.field("urgency"), values, errors)

    start = parse_date(_text(values, "available_from"))
    end = parse_date(_text(values, "available_until"))
    if start is None:
        errors["available_from"] = (
            _no_such_day(_text(values, "available_from")) or "Please give a date like 2030-01-31."
        )
    elif start < today:
        errors["available_from"] = f"Please pick today ({today.isoformat()}) or a later date."
    elif start > (last := _days_after(today, HORIZON_DAYS)):
        errors["available_from"] = (
            f"Please pick a date within {HORIZON_DAYS} days (by {last.isoformat()}); "
            "you can post another request nearer the time."
        )
    if end is None:
        errors["available_until"] = (
            _no_such_day(_text(values, "available_until")) or "Please give a date like 2030-01-31."
        )
    elif start is not None and end < start:
        errors["available_until"] = "This must be on or after the 'from' date."
    elif start is not None and (end - start).days > MAX_RANGE_DAYS:
        errors["available_until"] = f"Please keep the range within {MAX_RANGE_DAYS} days."

    tags_text = _text(values, "tags")
    _check_length(spec.field("tags"), tags_text, errors)  # the form's limit holds here too
    tags, tag_error = parse_tags(tags_text)
    if tag_error and "tags" not in errors:
        errors["tags"] = tag_error

    if errors:
        return errors
    assert session_type and duration and urgency and start and end
    return RequestInput(
        title=title,
        session_type=SessionType(session_type),
        description=description,
        duration_minutes=int(duration),
        available_from=start,
        available_until=end,
        urgency=Urgency(urgency),
        tags=tuple(tags),
    )


def parse_local_datetime(text: str, tz: ZoneInfo) -> datetime | None:
    """`2030-01-31 18:30` (or with a T) in `tz`; an epoch-seconds number (Slack's picker); or an
    ISO instant with an offset (our slot values). Anything else, or a moment at the very edge of
    datetime's range that can't be put in UTC, is None: this never raises."""
    text = text.strip()
    try:
        if _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(int(text), UTC)
        if not _ISO_DATETIME.fullmatch(text):
            return None
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _typed_time(typed: str, tz: ZoneInfo) -> datetime | str:
    """A time typed in the person's zone, or what is wrong with it. A wall-clock time the clocks
    skip (02:30 on a spring-forward night) is refused rather than quietly moved an hour."""
    at = parse_local_datetime(typed, tz)
    if at is None:
        return _no_such_day(typed) or "Please give a time like 2030-01-31 18:30."
    if _EPOCH.fullmatch(typed.strip()):
        return at  # Slack's picker: an instant, not a wall-clock time
    wall = datetime.fromisoformat(typed.strip().replace(" ", "T", 1))
    if wall.tzinfo is None and at.astimezone(tz).replace(tzinfo=None) != wall:
        return (
            f"{wall:%H:%M} doesn't exist on {wall:%Y-%m-%d} in {tz.key}: the clocks go forward "
            "that night. Please pick another time."
        )
    return at


def _latest_start(now: datetime) -> datetime:
    """The latest time a session may start: past every request's dates, but a day short of the
    end of time, so that its end (start + at most an hour) can still be computed."""
    last = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
    try:
        return min(now + timedelta(days=HORIZON_DAYS + MAX_RANGE_DAYS + 1), last)
    except OverflowError:
        return last


def parse_schedule(values: Values, *, tz: ZoneInfo, now: datetime) -> ScheduleInput | Errors:
    """Shape only; the request's dates and the mentor's calendar are checked by the use case."""
    errors: Errors = {}
    slot, typed = _text(values, "slot"), _text(values, "starts_at")
    starts_at: datetime | None = None
    if typed:
        typed_at = _typed_time(typed, tz)
        if isinstance(typed_at, str):
            errors["starts_at"] = typed_at
        else:
            starts_at = typed_at
    elif slot:
        starts_at = parse_local_datetime(slot, tz)
        if starts_at is None:
            errors["slot"] = "That suggestion is no longer valid; please pick another."
    else:
        errors["starts_at"] = "Please pick a suggested time or enter one."
    if starts_at is not None and starts_at <= now:
        errors["starts_at" if typed else "slot"] = "That time has passed; please pick a future time."
    elif starts_at is not None and starts_at > _latest_start(now):
        # No request's dates reach this far, and the session's end must stay computable.
        errors["starts_at" if typed else "slot"] = (
            "That's too far ahead; please pick a time in the student's dates."
        )

    url, note = _link_and_note(values, errors)
    if errors:
        return errors
    assert starts_at is not None
    return ScheduleInput(starts_at=starts_at, meeting_url=url, note=note)


_NOT_IN_LINKS = frozenset('<>"')  # never raw in a real URL (RFC 3986): copied links have them encoded


def _link_and_note(values: Values, errors: Errors) -> tuple[str | None, str]:
    """The optional meeting link and note both scheduling forms share."""
    url = _text(values, "meeting_url")
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1].strip()  # pasted as <https://…> (mail and markdown do that): the same link
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or any(c.isspace() for c in url):
            errors["meeting_url"] = "Please give a full http:// or https:// link, or leave it empty."
        elif any(c in _NOT_IN_LINKS for c in url):
            # Slack would cut the link at them, and a link we change is not the one they sent.
            shown = " ".join(sorted({c for c in url if c in _NOT_IN_LINKS}))
            errors["meeting_url"] = f"A link can't contain {shown}; please paste the meeting link as it is."
        elif len(url) > URL_LENGTH:
            errors["meeting_url"] = f"Please keep the link to {URL_LENGTH} characters."
    note = _text(values, "note")
    _check_length(SCHEDULE_FORM.field("note"), note, errors)
    return url or None, note


@dataclass(frozen=True)
class ProposalInput:
    times: tuple[tuple[str, datetime], ...]  # (field id, instant in UTC), in the mentor's order
    meeting_url: str | None
    note: str


def parse_proposal(values: Values, *, tz: ZoneInfo, now: datetime) -> ProposalInput | Errors:
    """Shape, the past and duplicates, field by field; the request's dates and the mentor's
    calendar are checked by the use case."""
    errors: Errors = {}
    times: list[tuple[str, datetime]] = []
    for n in range(1, MAX_PROPOSED + 1):
        field_id = f"time_{n}"
        typed = _text(values, field_id)
        if not typed:
            continue
        at = _typed_time(typed, tz)
        if isinstance(at, str):
            errors[field_id] = at
        elif at <= now:
            errors[field_id] = "That time has passed; please pick a future time."
        elif any(at == other for _, other in times):
            errors[field_id] = "You proposed this time already; please pick another or leave it empty."
        else:
            times.append((field_id, at))
    if not times and not errors:
        errors["time_1"] = "Please propose at least one time."
    url, note = _link_and_note(values, errors)
    if errors:
        return errors
    return ProposalInput(times=tuple(times), meeting_url=url, note=note)


def parse_none_work(values: Values) -> str | Errors:
    note = _text(values, "note")
    errors: Errors = {}
    _check_length(NONE_WORK_FORM.field("note"), note, errors)
    return errors or note


def parse_reason(values: Values, spec: FormSpec) -> str | Errors:
    """The reason of an ask to reschedule (required) or of a can't-make-it (optional)."""
    reason = _text(values, "reason")
    errors: Errors = {}
    _check_length(spec.field("reason"), reason, errors)
    return errors or reason


_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_WINDOW = re.compile(
    r"^(?P<day>[a-z]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$", re.IGNORECASE | re.ASCII
)
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _clock_time(text: str) -> str | None:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours == 24 and minutes == 0:
        return "23:59"
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        return None
    return f"{hours:02d}:{minutes:02d}"


def parse_availability(values: Values) -> list[Availability] | Errors:
    errors: Errors = {}
    tz = _text(values, "timezone")
    if not is_timezone(tz):
        errors["timezone"] = "Please give an IANA zone such as Europe/Berlin or America/New_York."
    windows: list[Availability] = []
    for part in re.split(r"[,\n;]", _text(values, "windows")):
        part = part.strip()
        if not part:
            continue
        match = _WINDOW.match(part)
        day = _DAYS.get(match.group("day")[:3].lower()) if match else None
        start = _clock_time(match.group("start")) if match else None
        end = _clock_time(match.group("end")) if match else None
        if match is None or day is None or start is None or end is None:
            errors["windows"] = f"I couldn't read {part[:40]!r}; write it like 'Mon 18:00-20:00'."
            break
        if end <= start:
            errors["windows"] = f"In {part[:40]!r} the end must be after the start."
            break
        windows.append(Availability(weekday=day, start=start, end=end, timezone=tz))
    if len(windows) > 28:
        errors["windows"] = "Please give at most 28 weekly windows."
    return errors or _merged(windows)


def _merged(windows: list[Availability]) -> list[Availability]:
    """Overlapping or touching windows of one day as one ("Mon 10-12, Mon 11-13" is Mon 10-13),
    so no time is suggested twice."""
    merged: list[Availability] = []
    for window in sorted(windows, key=lambda w: (w.weekday, w.start, w.end)):
        last = merged[-1] if merged else None
        if last is not None and last.weekday == window.weekday and window.start <= last.end:
            merged[-1] = replace(last, end=max(last.end, window.end))
        else:
            merged.append(window)
    return merged


def format_availability(windows: list[Availability]) -> str:
    return ", ".join(f"{WEEKDAY_NAMES[w.weekday]} {w.start}-{w.end}" for w in windows)


def parse_rating(text: str | None) -> int | None:
    """One ASCII digit 1-5 (int() would take "٥" or "５" as 5), else None."""
    text = (text or "").strip()
    return int(text) if len(text) == 1 and text in "12345" else None


def parse_review(values: Values) -> tuple[int, str | None] | Errors:
    errors: Errors = {}
    rating = parse_rating(values.get("rating"))
    if rating is None:
        errors["rating"] = "Please choose 1 to 5 stars."
    review = _text(values, "review")
    _check_length(REVIEW_FORM.field("review"), review, errors)
    if errors:
        return errors
    assert rating is not None
    return rating, review or None


def default_dates(today: date) -> tuple[date, date]:
    return today, today + timedelta(days=7)
