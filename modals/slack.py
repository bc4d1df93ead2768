"""Block Kit for Slack: neutral Messages → message blocks, form specs → modals, the App Home tab,
the `/mini-session list` dashboard, stats and help.

Everything here is pure (dicts in, dicts out) so it can be tested without Slack. Limits that
Slack enforces (blocks per surface, text lengths, option sizes) are respected here, once.
All user text goes through modals/slack_mrkdwn.py, which escapes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.charts import ChartSet
from bot.domain import Availability, Slot, Status, Urgency
from bot.messages import Action, Button, Line, Message, Ping, Text, plain
from bot.notifications import dashboard_item, span
from bot.profiles import ProfileView
from bot.stats import Report, format_duration
from bot.workflow import Dashboard
from modals import forms
from modals.slack_mrkdwn import escape, fallback_time, line

Block = dict[str, Any]
View = dict[str, Any]

MAX_BLOCKS = {"message": 50, "home": 100, "modal": 100}
SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_TEXT = 75
OPTION_TEXT = 75
MODAL_TITLE = 24

# Callback ids of our modals; handlers/slack.py registers one listener per id.
REQUEST_VIEW = "mm_request"
SCHEDULE_VIEW = "mm_schedule"
PROPOSE_VIEW = "mm_propose"
NONE_WORK_VIEW = "mm_none_work"
RESCHEDULE_ASK_VIEW = "mm_reschedule_ask"
CANT_MAKE_IT_VIEW = "mm_cant_make_it"
AVAILABILITY_VIEW = "mm_availability"
REVIEW_VIEW = "mm_review"
# Home-tab buttons that are not request actions.
OPEN_REQUEST = "mm_open_request"
OPEN_AVAILABILITY = "mm_open_availability"
PROFILE_VIEW = "mm_profile"
OPEN_PROFILE = "mm_open_profile"

GENERIC_ERROR = "Something went wrong on our side — please try again in a moment."


def action_id(action: Action) -> str:
    return f"mm_{action.value}"


# Small pieces ---------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_text(text: str, limit: int = HEADER_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(text, limit) or " ", "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text or " "}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain_text(text)}


def _fit(rendered: str, fallback: str, limit: int) -> str:
    """Rendered mrkdwn if it fits; else the plain text, cut *before* escaping so no entity,
    mention or date token is cut in half (escaping grows text at most 5×)."""
    if len(rendered) <= limit:
        return rendered
    return escape(_clip(fallback, limit // 5))


def _line_sections(lines: Sequence[Line], zone: ZoneInfo) -> list[str]:
    """A message's lines as section texts: one section when they fit, as usual; else as many as
    it takes, lines kept whole (a long description, whose escaping can grow it past Slack's
    3,000 characters, is cut between characters, never inside an entity)."""
    rendered = [line(item, zone) for item in lines]
    if len("\n".join(rendered)) <= SECTION_TEXT:
        return ["\n".join(rendered)]
    texts: list[str] = []
    for item, text in zip(lines, rendered, strict=True):
        if len(text) <= SECTION_TEXT:
            pieces = [text]
        elif all(isinstance(part, Text) and not part.bold for part in item):
            pieces = _escaped_chunks("".join(part.text for part in item if isinstance(part, Text)))
        else:
            pieces = [_fit(text, plain(item), SECTION_TEXT)]
        for piece in pieces:
            if texts and len(texts[-1]) + 1 + len(piece) <= SECTION_TEXT:
                texts[-1] += "\n" + piece
            else:
                texts.append(piece)
    return texts


def _escaped_chunks(text: str, limit: int = SECTION_TEXT) -> list[str]:
    """`text` escaped, in pieces of at most `limit` characters, cut after a line break when
    there is one in the piece."""
    escaped = [escape(char) for char in text]
    chunks: list[str] = []
    start = 0
    while start < len(escaped):
        end, size, after_break = start, 0, None
        while end < len(escaped) and size + len(escaped[end]) <= limit:
            size += len(escaped[end])
            end += 1
            if escaped[end - 1] == "\n":
                after_break = end
        if end < len(escaped) and after_break is not None:
            end = after_break
        chunks.append("".join(escaped[start:end]).strip("\n") or " ")
        start = end
    return chunks


def buttons_block(buttons: Sequence[Button]) -> Block:
    """One actions block. Slack wants action ids unique per block, so a repeated action (the five
    rating stars) gets `.2`, `.3`… after its `mm_<action>` id; the value carries the meaning."""
    seen: dict[str, int] = {}
    elements: list[dict[str, Any]] = []
    for button in buttons[:25]:
        base = action_id(button.action)
        seen[base] = seen.get(base, 0) + 1
        element: dict[str, Any] = {
            "type": "button",
            "text": plain_text(button.label, BUTTON_TEXT),
            "action_id": base if seen[base] == 1 else f"{base}.{seen[base]}",
            "value": _clip(button.value, 2000),
        }
        if button.style in ("primary", "danger"):
            element["style"] = button.style
        elements.append(element)
    return {"type": "actions", "elements": elements}


# Messages -------------------------------------------------------------------------------------


def message_blocks(message: Message, zone: ZoneInfo) -> list[Block]:
    """A neutral Message as message blocks, times shown for a reader in `zone`."""
    blocks: list[Block] = [header(message.headline)]
    if mentions := ping_text(message.pings):
        blocks.append(section(mentions))
    if message.accent == "high":
        blocks.append(context("🔥 *High urgency*"))
    if message.lines:
        blocks += [section(text) for text in _line_sections(message.lines, zone)]
    fields = [
        mrkdwn(_fit(f"*{escape(label)}*\n{line(value, zone)}", f"{label}: {plain(value)}", FIELD_TEXT))
        for label, value in message.fields
    ]
    for start in range(0, len(fields), 10):  # Slack allows ten fields per section
        blocks.append({"type": "section", "fields": fields[start : start + 10]})
    if message.links:
        blocks.append(section(" · ".join(line((item,), zone) for item in message.links)))
    if message.buttons:
        blocks.append(buttons_block(message.buttons))
    if message.footer:
        blocks.append(context(_fit(line(message.footer, zone), plain(message.footer), SECTION_TEXT)))
    return blocks[: MAX_BLOCKS["message"]]


def fallback_text(message: Message) -> str:
    """The notification / screen-reader text; mrkdwn too, so escaped like everything else
    (only the message's own configured pings are mentions)."""
    text = message.headline
    if message.lines:
        text += ": " + plain(message.lines[0])
    mentions = ping_text(message.pings)
    return (mentions + " " if mentions else "") + escape(_clip(text, 300))


_GROUP_ID = re.compile(r"S[A-Z0-9]{2,30}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


def ping_text(pings: Sequence[Ping]) -> str:
    """`<!subteam^S…>` for a user group, `<@U…>` for a person; ids of any other shape are
    dropped (they come from configuration, but a mention must never be built from a guess)."""
    out: list[str] = []
    for ping in pings:
        if ping.kind == "group" and _GROUP_ID.fullmatch(ping.external_id):
            out.append(f"<!subteam^{ping.external_id}>")
        elif ping.kind == "user" and _USER_ID.fullmatch(ping.external_id):
            out.append(f"<@{ping.external_id}>")
    return " ".join(out)


def compact_blocks(message: Message, zone: ZoneInfo) -> list[Block]:
    """A dashboard row: one section (headline, first line, fields inline) and its buttons."""
    first = "  ".join([f"*{escape(message.headline)}*", *(line(item, zone) for item in message.lines[:1])])
    rest = [line(item, zone) for item in message.lines[1:]]  # e.g. "⚠️ Couldn't DM …"
    details = " · ".join(f"{escape(label)}: {line(value, zone)}" for label, value in message.fields)
    fallback = " · ".join(f"{label}: {plain(value)}" for label, value in message.fields)
    if details:
        rest.append(_fit(details, fallback, SECTION_TEXT // 2))
    text = "\n".join([first, *rest])
    blocks: list[Block] = [section(_fit(text, message.headline, SECTION_TEXT))]
    if message.buttons:
        blocks.append(buttons_block(message.buttons))
    return blocks


def notice_blocks(text: str) -> list[Block]:
    """Plain core text (a refusal, a confirmation) as one escaped section."""
    return [section(escape(_clip(text, 600)))]


# Modals ---------------------------------------------------------------------------------------


def _option(choice: forms.Choice) -> dict[str, Any]:
    return {"text": plain_text(choice.label, OPTION_TEXT), "value": choice.value[:150]}


def _element(field: forms.Field, initial: str | None, choices: Sequence[forms.Choice]) -> dict[str, Any]:
    element: dict[str, Any] = {"action_id": field.id}
    if field.kind in ("text", "multiline"):
        element["type"] = "plain_text_input"
        if field.kind == "multiline":
            element["multiline"] = True
        if field.max_length is not None:
            element["max_length"] = min(field.max_length, 3000)
        if initial:
            element["initial_value"] = initial[: element.get("max_length", 3000)]
    elif field.kind == "select":
        element["type"] = "static_select"
        element["options"] = [_option(choice) for choice in choices[:100]]
        chosen = next((c for c in choices if c.value == initial), None)
        if chosen is not None:
            element["initial_option"] = _option(chosen)
    elif field.kind == "date":
        element["type"] = "datepicker"
        if initial and forms.parse_date(initial):
            element["initial_date"] = initial
    elif field.kind == "datetime":
        element["type"] = "datetimepicker"
        if initial and initial.isdigit():
            element["initial_date_time"] = int(initial)
    elif field.kind == "url":
        element["type"] = "url_text_input"
        if initial:
            element["initial_value"] = initial
    else:  # a new kind in forms.py: a text box is always safe
        element["type"] = "plain_text_input"
    if field.placeholder and field.kind not in ("date", "datetime"):
        element["placeholder"] = plain_text(field.placeholder)
    return element


def form_view(
    spec: forms.FormSpec,
    *,
    callback_id: str,
    metadata: Mapping[str, Any],
    initial: Mapping[str, str | None] | None = None,
    choices: Mapping[str, Sequence[forms.Choice]] | None = None,
    hints: Mapping[str, str] | None = None,
    intro: Sequence[Block] = (),
    title: str | None = None,
    skip: Iterable[str] = (),
) -> View:
    """A modal drawn from a form spec: one input block per field, block_id = action_id = field id.

    `choices` overrides a select's options (the schedule form's suggested slots); a select with
    no options at all is left out (Slack rejects it), as are fields in `skip`.
    """
    initial = initial or {}
    choices = choices or {}
    hints = hints or {}
    skipped = set(skip)
    blocks: list[Block] = list(intro)
    for field in spec.fields:
        options = choices.get(field.id, field.choices)
        if field.id in skipped or (field.kind == "select" and not options):
            continue
        block: Block = {
            "type": "input",
            "block_id": field.id,
            "label": plain_text(field.label, 2000),
            "element": _element(field, initial.get(field.id, field.default), options),
            "optional": not field.required,
        }
        hint = hints.get(field.id, field.hint)
        if hint:
            block["hint"] = plain_text(hint, 2000)
        blocks.append(block)
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain_text(title or spec.title, MODAL_TITLE),
        "submit": plain_text(spec.submit, MODAL_TITLE),
        "close": plain_text("Cancel", MODAL_TITLE),
        "private_metadata": json.dumps(dict(metadata), separators=(",", ":"))[:3000],
        "blocks": blocks[: MAX_BLOCKS["modal"]],
    }


def notice_view(title: str, text: str) -> View:
    """What a modal turns into when its submission is refused (nothing to fix in the form)."""
    return {
        "type": "modal",
        "title": plain_text(title, MODAL_TITLE),
        "close": plain_text("Close", MODAL_TITLE),
        "blocks": notice_blocks(text),
    }


def metadata_of(view: Mapping[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _state_value(state: Any) -> str | None:
    """The submitted value of one element, whatever its type, as text."""
    if not isinstance(state, dict):
        return None
    for key in ("value", "selected_date", "selected_time"):
        if isinstance(state.get(key), str):
            return str(state[key])
    if isinstance(state.get("selected_date_time"), int | float):
        return str(int(state["selected_date_time"]))
    option = state.get("selected_option")
    if isinstance(option, dict) and isinstance(option.get("value"), str):
        return str(option["value"])
    return None


def view_values(view: Mapping[str, Any], spec: forms.FormSpec) -> dict[str, str | None]:
    """The submitted form as `{field_id: text}` (None for empty or missing fields)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    values = values if isinstance(values, dict) else {}
    result: dict[str, str | None] = {}
    for field in spec.fields:
        block = values.get(field.id)
        result[field.id] = _state_value(block.get(field.id)) if isinstance(block, dict) else None
    return result


def view_errors(view: Mapping[str, Any], errors: Mapping[str, str]) -> dict[str, str]:
    """Field errors keyed by block id. Slack only shows errors on input blocks the view has, so
    an error for a field that isn't drawn (or a form-wide one) goes on the first input."""
    blocks = view.get("blocks")
    present = [
        str(b["block_id"])
        for b in (blocks if isinstance(blocks, list) else [])
        if isinstance(b, dict) and b.get("type") == "input" and isinstance(b.get("block_id"), str)
    ]
    result: dict[str, str] = {}
    for field_id, message in errors.items():
        target = field_id if field_id in present else (present[0] if present else field_id)
        result[target] = f"{result[target]} {message}" if target in result else message
    return {key: _clip(value, 2000) for key, value in result.items()}


def slot_choices(slots: Sequence[Slot], zone: ZoneInfo) -> list[forms.Choice]:
    """Suggested slots as select options, labelled in the mentor's zone, valued as UTC instants."""
    choices = []
    for slot in slots[:100]:
        start, end = slot.starts_at.astimezone(zone), slot.ends_at.astimezone(zone)
        label = f"{start:%a %d %b} {start:%H:%M}–{end:%H:%M} ({start.tzname() or zone.key})"
        choices.append(forms.Choice(slot.starts_at.isoformat(), label))
    return choices


def request_modal(today: date, *, metadata: Mapping[str, Any]) -> View:
    start, end = forms.default_dates(today)
    return form_view(
        forms.REQUEST_FORM,
        callback_id=REQUEST_VIEW,
        metadata=metadata,
        initial={"available_from": start.isoformat(), "available_until": end.isoformat()},
    )


def schedule_modal(
    title: str,
    available: tuple[date, date],
    slots: Sequence[Slot],
    zone: ZoneInfo,
    *,
    metadata: Mapping[str, Any],
    current: datetime | None = None,
    note: str = "",
) -> View:
    """Schedule (or, with `current`, reschedule) one request; `note`: the booked session's, shown
    to be kept, changed or emptied."""
    start, end = available
    intro = [
        section(
            f"*{escape(_clip(title, 200))}*\nThe student is available {start:%a %d %b} – {end:%a %d %b %Y}."
        ),
    ]
    if current is not None:
        intro.append(context(f"Currently: {fallback_time(current, zone)}"))
    if not slots:
        intro.append(
            context(
                "No suggestions: your weekly availability has no free time inside these dates. "
                "Pick a time below, or set your availability with `/mini-session availability`."
            )
        )
    hints = {"starts_at": f"In your time zone ({zone.key})"}
    if current is not None:
        hints["meeting_url"] = "Leave empty to keep the current link"
    return form_view(
        forms.SCHEDULE_FORM,
        callback_id=SCHEDULE_VIEW,
        metadata=metadata,
        initial={"note": note} if note else None,
        choices={"slot": slot_choices(slots, zone)},
        hints=hints,
        intro=intro,
        title="Reschedule session" if current is not None else None,
    )


def propose_modal(
    title: str,
    available: tuple[date, date],
    slots: Sequence[Slot],
    zone: ZoneInfo,
    *,
    metadata: Mapping[str, Any],
) -> View:
    """Propose up to three times; the first suggestions from the mentor's availability are
    filled in (the pickers show them in the mentor's own zone)."""
    start, end = available
    intro = [
        section(
            f"*{escape(_clip(title, 200))}*\nThe student is available {start:%a %d %b} – {end:%a %d %b %Y}. "
            "They'll see each time in their own zone and pick one."
        ),
    ]
    initial = {f"time_{n + 1}": str(int(slot.starts_at.timestamp())) for n, slot in enumerate(slots[:3])}
    return form_view(
        forms.PROPOSE_FORM,
        callback_id=PROPOSE_VIEW,
        metadata=metadata,
        initial=initial,
        hints={"time_1": f"In your time zone ({zone.key}); the student picks one"},
        intro=intro,
    )


def none_work_modal(title: str, *, metadata: Mapping[str, Any]) -> View:
    intro = [section(f"*{escape(_clip(title, 200))}*\nYour mentor will be told and can propose other times.")]
    return form_view(forms.NONE_WORK_FORM, callback_id=NONE_WORK_VIEW, metadata=metadata, intro=intro)


def reschedule_ask_modal(title: str, *, metadata: Mapping[str, Any]) -> View:
    intro = [
        section(
            f"*{escape(_clip(title, 200))}*\nYour mentor will see your reason and can propose new "
            "times or keep this one. Until then, the session stays booked."
        )
    ]
    return form_view(
        forms.RESCHEDULE_ASK_FORM, callback_id=RESCHEDULE_ASK_VIEW, metadata=metadata, intro=intro
    )


def cant_make_it_modal(title: str, *, metadata: Mapping[str, Any]) -> View:
    intro = [
        section(
            f"*{escape(_clip(title, 200))}*\nThe session and the request will be cancelled and the "
            "other person told (with your reason, if you give one)."
        )
    ]
    return form_view(forms.CANT_MAKE_IT_FORM, callback_id=CANT_MAKE_IT_VIEW, metadata=metadata, intro=intro)


def availability_modal(
    windows: Sequence[Availability], timezone: str, *, metadata: Mapping[str, Any]
) -> View:
    return form_view(
        forms.AVAILABILITY_FORM,
        callback_id=AVAILABILITY_VIEW,
        metadata=metadata,
        initial={"windows": forms.format_availability(list(windows)), "timezone": timezone},
    )


def profile_values(profile: ProfileView) -> dict[str, str | None]:
    """The profile as the form's initial values."""
    return {
        "skills": ", ".join(profile.skills),
        "capacity": str(profile.capacity),
        "away_until": profile.away_until.isoformat() if profile.away_until else None,
    }


def profile_modal(profile: ProfileView, *, metadata: Mapping[str, Any]) -> View:
    return form_view(
        forms.PROFILE_FORM,
        callback_id=PROFILE_VIEW,
        metadata=metadata,
        initial=profile_values(profile),
        intro=[context(f"Right now: {escape(profile.load_text)}.")],
    )


def profile_text(profile: ProfileView) -> str:
    """The mentor's profile in one escaped mrkdwn paragraph, with the current load."""
    hint = "" if profile.saved else "\nSet your skills and capacity with `/mini-session profile`."
    return escape(profile.summary) + hint


def review_modal(title: str, *, metadata: Mapping[str, Any], rating: int | None = None) -> View:
    return form_view(
        forms.REVIEW_FORM,
        callback_id=REVIEW_VIEW,
        metadata=metadata,
        initial={"rating": str(rating) if rating else None},
        intro=[section(f"How was *{escape(_clip(title, 200))}*?")],
    )


# Dashboards -----------------------------------------------------------------------------------


def _availability_text(windows: Sequence[Availability], timezone: str) -> str:
    if not windows:
        return (
            "You haven't set weekly availability yet. Set it so the Schedule form can suggest times: "
            "`/mini-session availability`."
        )
    return f"{escape(forms.format_availability(list(windows)))} ({escape(timezone)})"


def dashboard_blocks(
    board: Dashboard,
    viewer_id: str,
    *,
    per_section: int,
    feed_channel: str | None = None,
) -> list[Block]:
    """My requests; for mentors also claimed-by-me, open requests and availability; each empty
    section says what to do instead."""
    zone = forms.zone(board.timezone)

    def listing(title: str, items: Sequence[Any], total: int, empty: str, elsewhere: str = "") -> list[Block]:
        blocks: list[Block] = [header(title)]
        if not items:
            return [*blocks, context(empty)]
        shown = items[:per_section]
        for request in shown:
            item = dashboard_item(request, viewer_id=viewer_id, problems=board.problems.get(request.id, ()))
            blocks += compact_blocks(item, zone)
        more = total - len(shown)
        if more > 0:
            # The App Home lists more than this message; beyond that, say where the rest are.
            hint = " Open my App Home tab to see more." if len(shown) < len(items) else elsewhere
            blocks.append(context(f"…and {more} more.{hint}"))
        return blocks

    blocks = listing(
        "My requests",
        board.mine,
        board.total("mine"),
        "You have no requests yet. Type `/mini-session` to ask a mentor for a 30–60 minute session.",
    )
    if board.is_mentor or board.claimed:  # what they hold, even after leaving the mentors
        blocks += listing(
            "Claimed by me · upcoming",
            board.claimed,
            board.total("claimed"),
            "Nothing claimed right now. Claim an open request below or from the mentors' feed.",
        )
    if board.is_mentor:
        where = f" in <#{feed_channel}>" if feed_channel and feed_channel.isalnum() else ""
        blocks += listing(
            "Open requests",
            board.open,
            board.total("open"),
            f"No open requests right now. New ones are posted{where} as they come in.",
            f" The oldest are listed here; every open request is{where or ' in the feed'}.",
        )
        blocks += [header("My availability"), section(_availability_text(board.availability, board.timezone))]
        if board.profile is not None:
            blocks += [header("My mentor profile"), section(profile_text(board.profile))]
    return blocks


def home_view(
    board: Dashboard,
    viewer_id: str,
    *,
    notice: str | None = None,
    feed_channel: str | None = None,
    program: Sequence[Block] = (),
) -> View:
    top: list[Block] = [header("Mini Mentorship")]
    if notice:
        top += notice_blocks(notice)
    buttons: list[dict[str, Any]] = [
        {
            "type": "button",
            "text": plain_text("Request a session"),
            "action_id": OPEN_REQUEST,
            "style": "primary",
        }
    ]
    if board.is_mentor:
        buttons.append(
            {"type": "button", "text": plain_text("Edit availability"), "action_id": OPEN_AVAILABILITY}
        )
        buttons.append({"type": "button", "text": plain_text("Edit profile"), "action_id": OPEN_PROFILE})
    top += [{"type": "actions", "elements": buttons}, {"type": "divider"}]
    body = dashboard_blocks(board, viewer_id, per_section=10, feed_channel=feed_channel)
    footer = [context("Times are shown in your time zone. `/mini-session help` lists every command.")]
    # The dashboard gives way to the Program section (admins), which is always whole.
    room = MAX_BLOCKS["home"] - 1 - len(program)
    return {"type": "home", "blocks": (top + body)[:room] + list(program) + footer}


def list_blocks(board: Dashboard, viewer_id: str, *, feed_channel: str | None = None) -> list[Block]:
    """`/mini-session list`: the same dashboard, trimmed to fit one ephemeral message."""
    blocks = dashboard_blocks(board, viewer_id, per_section=5, feed_channel=feed_channel)
    return blocks[: MAX_BLOCKS["message"]]


# Stats and help -------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def stats_blocks(report: Report, *, csv_note: str) -> list[Block]:
    counts = [f"*{escape(status.badge)}*\n{report.by_status[status]}" for status in Status]
    figures = [
        f"*Requests*\n{report.total}",
        f"*Median time to claim*\n{format_duration(report.median_time_to_claim)}",
        f"*Completion rate*\n{_percent(report.completion_rate)}",
        f"*No-shows*\n{report.no_shows}",
        "*Average rating*\n"
        + ("—" if report.average_rating is None else f"{report.average_rating:.2f} ★ ({report.ratings})"),
    ]
    blocks: list[Block] = [
        header("Mentorship stats"),
        {"type": "section", "fields": [mrkdwn(text) for text in counts]},
        {"type": "section", "fields": [mrkdwn(text) for text in figures]},
    ]
    if report.mentors:
        rows = [f"{'Mentor':<20} {'Claimed':>7} {'Done':>5} {'No-show':>7} {'Rating':>6}"]
        for mentor in report.mentors[:25]:
            rating = "—" if mentor.average_rating is None else f"{mentor.average_rating:.2f}"
            name = _clip(mentor.name.replace("`", "'").replace("\n", " "), 20)
            rows.append(
                f"{name:<20} {mentor.claimed:>7} {mentor.completed:>5} {mentor.no_shows:>7} {rating:>6}"
            )
        table = escape("\n".join(rows))
        blocks.append(section(_fit(f"*Per mentor*\n```{table}```", "\n".join(rows), SECTION_TEXT)))
        if len(report.mentors) > 25:
            blocks.append(context(f"…and {len(report.mentors) - 25} more mentors in the CSV."))
    else:
        blocks.append(context("No mentor has claimed a request yet."))
    blocks += insight_blocks(report)
    blocks.append(context(escape(csv_note)))
    return blocks


def _table(title: str, rows: list[str]) -> Block:
    return section(_fit(f"*{title}*\n```{escape(chr(10).join(rows))}```", "\n".join(rows), SECTION_TEXT))


def insight_blocks(report: Report) -> list[Block]:
    """Claims within target per urgency, demand against supply per tag, mentors' load."""
    blocks: list[Block] = []
    if report.within_target:
        fields = [
            mrkdwn(
                f"*{escape(Urgency(share.urgency).label)}* (target {span(share.target)})\n"
                + (
                    f"{share.within} of {share.decided} within target ({_percent(share.share)})"
                    if share.decided
                    else "nothing to judge yet"
                )
            )
            for share in report.within_target
        ]
        blocks += [section("*Claimed within target*"), {"type": "section", "fields": fields}]
    if report.tags:
        rows = [f"{'Tag':<24} {'Requests':>8} {'Mentors':>7}"]
        for tag in report.tags:
            mentors = "—" if tag.mentors is None else str(tag.mentors)
            name = _clip(tag.tag.replace("`", "'"), 24)  # a backtick would end the code block
            rows.append(f"{name:<24} {tag.requests:>8} {mentors:>7}")
        blocks.append(_table("Demand against supply (requests vs mentors listing the tag)", rows))
    if report.capacity:
        rows = [f"{'Mentor':<20} {'Load':<16} Away until"]
        for mentor in report.capacity[:25]:
            name = _clip(mentor.name.replace("`", "'").replace("\n", " "), 20)
            away = mentor.away_until.isoformat() if mentor.away_until else ""
            rows.append(f"{name:<20} {mentor.load_text:<16} {away}".rstrip())
        blocks.append(_table("Mentor load", rows))
        if len(report.capacity) > 25:
            blocks.append(context(f"…and {len(report.capacity) - 25} more mentors in the summary CSV."))
    return blocks


def chart_blocks(charts: ChartSet, file_ids: Sequence[str]) -> list[Block]:
    """The charts as image blocks showing uploaded files (`slack_file`), each with its alt text;
    the friendly sentence instead when there is nothing to chart."""
    if charts.empty_note is not None or not file_ids:
        return [context(escape(charts.empty_note or "No charts yet."))]
    return [
        {
            "type": "image",
            "slack_file": {"id": file_id},
            "alt_text": alt_text(chart.alt_text),
            "title": plain_text(chart.title),
        }
        for chart, file_id in zip(charts.charts, file_ids, strict=False)
    ]


def alt_text(text: str, limit: int = 2000) -> str:
    """An alt text as Slack gets it: names and tags in it are user text, escaped like any."""
    return _clip(escape(text), limit)


def program_blocks(charts: ChartSet, file_ids: Sequence[str]) -> list[Block]:
    """The admins' "Program" section of the App Home."""
    return [
        {"type": "divider"},
        header(f"Program — last {charts.weeks} weeks"),
        *chart_blocks(charts, file_ids),
        context("`/mini-session stats 4`, `12` or `52` shows the figures over 4, 12 or 52 weeks."),
    ]


def help_blocks(*, is_mentor: bool, is_admin: bool, unknown: str | None = None) -> list[Block]:
    lines = [
        "`/mini-session` — ask for a 30–60 minute session with a mentor",
        "`/mini-session list` — your requests and their status",
        "`/mini-session help` — this help",
    ]
    if is_mentor:
        lines.insert(2, "`/mini-session availability` — your weekly mentoring hours and time zone")
        lines.insert(
            3, "`/mini-session profile` — your skills, how many sessions you take at once, time away"
        )
    if is_admin:
        lines.insert(-1, "`/mini-session stats` — program figures and a CSV export")
    blocks: list[Block] = []
    if unknown is not None:
        blocks += notice_blocks(f"I don't know “{_clip(unknown, 40)}”. Here's what I can do:")
    blocks += [header("Mini Mentorship"), section("\n".join(lines))]
    if is_mentor:
        blocks.append(context("Mentors claim requests with the Claim button in the mentors' channel."))
    blocks.append(context("Your requests and claims are also on my App Home tab."))
    return blocks
