"""Discord drawing: neutral Message -> (content, embed, view), the modals drawn from forms.py,
and the restart-proof buttons (DynamicItem).

Nothing here calls the core. A button's callback hands the click to the client
(`ComponentHandler`, implemented by handlers/discord.py); modals are routed by custom id, so a
form submitted after a restart is still handled.

User text is data: every `Text` is markdown-escaped and its mentions neutralised; messages go
out with `allowed_mentions` that can never ping @everyone, @here or a role.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol, Self, runtime_checkable
from urllib.parse import quote, urlparse

import discord

from bot.charts import ChartSet
from bot.domain import RequestView, Slot, Urgency
from bot.messages import Action, Button, Inline, Line, Link, Message, Person, Ping, Text, When
from bot.notifications import dashboard_item, span
from bot.stats import Report
from bot.workflow import Dashboard
from modals import forms

# Limits Discord enforces (a payload over them is rejected with 400 / 50035).
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
EMBEDS_TOTAL = 6000
CONTENT = 2000
BUTTON_LABEL = 80
MODAL_TITLE = 45
LABEL_TEXT = 45
LABEL_DESCRIPTION = 100
PLACEHOLDER = 100
OPTION_LABEL = 100
CUSTOM_ID = 100

MODAL_TIMEOUT = 30 * 60.0  # only frees memory: submissions are routed by custom id anyway

NO_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=False)

ACCENTS = {
    "high": discord.Colour.red(),
    "done": discord.Colour.green(),
    "muted": discord.Colour.light_grey(),
}
DEFAULT_ACCENT = discord.Colour.blurple()
STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger}

OOPS = "Something went wrong on our side — please try again in a moment."


# Text ------------------------------------------------------------------------------------------

_EVERYONE = re.compile(r"@(everyone|here)", re.IGNORECASE)
# <@id> <@!id> <@&id> <#id> </cmd:id> <:emoji:id> <a:emoji:id> <t:…> <id:…>: all inert once split.
# Only those: a "</" or "<:" of any other kind (an HTML closing tag in a code question) is left
# alone, so text copied from a card is what the student typed, with no zero-width space in it.
_ANGLE = re.compile(r"<(?=[@#]|/[^<>\n]*:|a?:[^<>\n]*:|t:|id:)")


def _escape_brackets(text: str) -> str:
    """Escape every "[" not already escaped, so no masked link can start (escape_markdown only
    catches complete one-line `[label](url)`)."""
    out: list[str] = []
    backslashes = 0
    for char in text:
        if char == "[" and backslashes % 2 == 0:
            out.append("\\")
        out.append(char)
        backslashes = backslashes + 1 if char == "\\" else 0
    return "".join(out)


def escape(text: str) -> str:
    """User text as inert Discord markdown: no formatting, no links, no mentions."""
    escaped = _escape_brackets(discord.utils.escape_markdown(text))
    escaped = discord.utils.escape_mentions(escaped)
    escaped = _EVERYONE.sub("@\u200b\\1", escaped)
    return _ANGLE.sub("<\u200b", escaped)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def allowed_mentions(
    user_ids: Iterable[str | int] = (), role_ids: Iterable[str | int] = ()
) -> discord.AllowedMentions:
    """Only the listed users (and roles) may be pinged; never @everyone or @here."""
    users = [discord.Object(int(uid)) for uid in user_ids if str(uid).isdigit()]
    roles = [discord.Object(int(rid)) for rid in role_ids if str(rid).isdigit()]
    return discord.AllowedMentions(
        everyone=False, users=users or False, roles=roles or False, replied_user=False
    )


def ping_mentions(pings: Sequence[Ping]) -> tuple[str, list[str], list[str]]:
    """The configured pings as message content (embeds never ping), and the ids to allow."""
    roles = [p.external_id for p in pings if p.kind == "group" and p.external_id.isdigit()]
    users = [p.external_id for p in pings if p.kind == "user" and p.external_id.isdigit()]
    text = " ".join([*(f"<@&{r}>" for r in roles), *(f"<@{u}>" for u in users)])
    return text, users, roles


def safe_url(url: str) -> str | None:
    """An http(s) URL that cannot break out of `[label](url)`, or None."""
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or any(c.isspace() for c in url):
        return None
    return quote(url, safe=":/?#&=%+,;~!*$")


def timestamp(at: datetime, style: str = "F") -> str:
    return f"<t:{int(at.timestamp())}:{style}>"


_WHEN_STYLES = {"full": "F", "relative": "R", "date": "D"}


def _bold(text: str) -> str:
    core = text.strip()
    if not core:
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}**{core}**{trail}"


def render_link(link: Link) -> str:
    url = safe_url(link.url)
    label = escape(link.label).replace("]", "\\]")  # escape() already did "["
    if url is None:
        return label
    if link.label.strip() == link.url.strip():
        return url  # a bare URL autolinks; a URL as a masked label is not allowed
    return f"[{label or url}]({url})"


def render_inline(item: Inline) -> str:
    if isinstance(item, Text):
        text = escape(item.text)
        return _bold(text) if item.bold else text
    if isinstance(item, When):
        return timestamp(item.at, _WHEN_STYLES.get(item.style, "F"))
    if isinstance(item, Person):
        return f"<@{item.external_id}>" if item.external_id.isdigit() else escape(item.name)
    return render_link(item)


def render_line(line: Line) -> str:
    return "".join(render_inline(item) for item in line)


def plain_line(line: Line) -> tuple[str, datetime | None]:
    """For places without markdown (embed footers): the text, and the first instant if any."""
    parts: list[str] = []
    instant: datetime | None = None
    for item in line:
        if isinstance(item, Text):
            parts.append(item.text)
        elif isinstance(item, When):
            instant = instant or item.at
        elif isinstance(item, Person):
            parts.append(item.name)
        else:
            parts.append(item.label)
    return "".join(parts).strip(" ·"), instant


# Messages ----------------------------------------------------------------------------------------


@dataclass
class Rendered:
    content: str | None
    embed: discord.Embed
    view: discord.ui.View | None
    file: discord.File | None
    allowed_mentions: discord.AllowedMentions

    def send_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for Messageable.send / followup.send."""
        kwargs: dict[str, Any] = {"embed": self.embed, "allowed_mentions": self.allowed_mentions}
        if self.content:
            kwargs["content"] = self.content
        if self.view is not None:
            kwargs["view"] = self.view
        if self.file is not None:
            kwargs["file"] = self.file
        return kwargs


def embed_of(message: Message, *, with_title: bool = True) -> discord.Embed:
    description = "\n".join(render_line(line) for line in message.lines if line)
    extra = [render_link(link) for link in message.links]
    if extra:
        description = "\n".join(filter(None, [description, *extra]))
    embed = discord.Embed(
        title=shorten(escape(message.headline), EMBED_TITLE) if with_title else None,
        description=shorten(description, EMBED_DESCRIPTION) or None,
        colour=ACCENTS.get(message.accent or "", DEFAULT_ACCENT),
    )
    for label, value in message.fields[:EMBED_FIELDS]:
        embed.add_field(
            name=shorten(escape(label), FIELD_NAME),
            value=shorten(render_line(value), FIELD_VALUE) or "—",
            inline=True,
        )
    if message.footer:
        text, instant = plain_line(message.footer)
        if text:
            embed.set_footer(text=shorten(text, FOOTER))
        if instant is not None:
            embed.timestamp = instant
    return embed


def render(
    message: Message,
    *,
    audience: Literal["feed", "dm", "reply"] = "feed",
    ping: Iterable[str] = (),
    label_prefix: str = "",
) -> Rendered:
    """One neutral Message as a Discord message. Feed cards carry the headline as the embed
    title; DMs put it in the content too, so the notification preview says something."""
    content = shorten(escape(message.headline), CONTENT) if audience == "dm" else None
    mentions, ping_users, ping_roles = ping_mentions(message.pings)
    if mentions:
        content = f"{mentions} {content}" if content else mentions
    embed = embed_of(message, with_title=audience != "dm")
    file = None
    if message.attachment is not None:
        file = discord.File(
            io.BytesIO(message.attachment.content),
            filename=message.attachment.filename,
            description=message.attachment.title,
        )
    return Rendered(
        content=content,
        embed=embed,
        view=button_view(message.buttons, label_prefix=label_prefix),
        file=file,
        allowed_mentions=allowed_mentions([*ping, *ping_users], ping_roles),
    )


# Buttons --------------------------------------------------------------------------------------


@runtime_checkable
class ComponentHandler(Protocol):
    """What a client must offer for the buttons below to do anything."""

    async def on_action_button(
        self, interaction: discord.Interaction[Any], action: Action, value: str
    ) -> None: ...

    async def on_fix_button(self, interaction: discord.Interaction[Any], token: str, form: str) -> None: ...


ACTION_TEMPLATE = (
    r"mm:(?P<action>" + "|".join(sorted((a.value for a in Action), key=len, reverse=True)) + r")"
    # request id, then stars (rate), proposal id and time index (pick_time / none_work), session
    # id and version (ask_reschedule / cant_make_it) or ask id (ask_propose / keep_time)
    r":(?P<value>[0-9]{1,19}(?::[0-9]{1,19}){0,2})"
)
FIX_TEMPLATE = r"mm:fix:(?P<token>[0-9a-f]{8}):(?P<form>[a-z_]+(?::[a-z0-9_]+)*)"


def action_custom_id(action: Action, value: str) -> str:
    return f"mm:{action.value}:{value}"


class ActionButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=ACTION_TEMPLATE):
    """Every button of every card and DM: the custom id carries the action and request id, so
    a click on a months-old card still works after any number of restarts."""

    def __init__(
        self,
        action: Action,
        value: str,
        *,
        label: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=shorten(label or action.value.replace("_", " ").capitalize(), BUTTON_LABEL),
                style=style,
                custom_id=action_custom_id(action, value),
            )
        )
        self.action = action
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(Action(match["action"]), match["value"], label=label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, ComponentHandler):
            await client.on_action_button(interaction, self.action, self.value)


class FixButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=FIX_TEMPLATE):
    """ "Edit and resubmit": reopens a rejected form with what the person typed."""

    def __init__(self, token: str, form: str, *, label: str = "Edit and resubmit") -> None:
        super().__init__(
            discord.ui.Button(
                label=label, style=discord.ButtonStyle.primary, custom_id=f"mm:fix:{token}:{form}"
            )
        )
        self.token = token
        self.form = form

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        label = item.label if isinstance(item, discord.ui.Button) and item.label else "Edit and resubmit"
        return cls(match["token"], match["form"], label=label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, ComponentHandler):
            await client.on_fix_button(interaction, self.token, self.form)


def _finished(view: discord.ui.View) -> discord.ui.View:
    # Stopped views are sent but not kept in discord.py's view store: the DynamicItem
    # registry handles their clicks, so nothing per message stays in memory.
    view.stop()
    return view


def button_view(
    buttons: Sequence[Button], *, label_prefix: str = "", view: discord.ui.View | None = None
) -> discord.ui.View | None:
    if not buttons:
        return view
    view = view or discord.ui.View(timeout=None)
    for button in buttons[: 25 - len(view.children)]:
        view.add_item(
            ActionButton(
                button.action,
                button.value,
                label=f"{label_prefix}{button.label}",
                style=STYLES.get(button.style or "", discord.ButtonStyle.secondary),
            )
        )
    return _finished(view)


def fix_view(token: str, form: str, label: str = "Edit and resubmit") -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(FixButton(token, form, label=label))
    return _finished(view)


# Modals ---------------------------------------------------------------------------------------


class FormModal(discord.ui.Modal):
    """A modal whose submission the client handles by custom id (`mm:form:<form>[:…]`), with no
    on_submit of its own: the same code path runs with or without a restart in between."""

    def __init__(self, *, title: str, custom_id: str) -> None:
        super().__init__(title=shorten(title, MODAL_TITLE), custom_id=custom_id, timeout=MODAL_TIMEOUT)


MAX_LENGTH_BY_KIND = {"date": 10, "datetime": 25, "text": 200, "url": 500, "multiline": 4000}


def _label(
    spec: forms.Field, component: discord.ui.Item[Any], hint: str | None = None
) -> discord.ui.Label[Any]:
    description = hint if hint is not None else spec.hint
    return discord.ui.Label(
        text=shorten(spec.label, LABEL_TEXT),
        description=shorten(description, LABEL_DESCRIPTION) if description else None,
        component=component,
    )


def text_input(
    spec: forms.Field,
    value: str | None = None,
    *,
    hint: str | None = None,
    placeholder: str | None = None,
) -> discord.ui.Label[Any]:
    max_length = min(spec.max_length or MAX_LENGTH_BY_KIND.get(spec.kind, 200), 4000)
    default = (value or "")[:max_length] or None
    holder = placeholder if placeholder is not None else spec.placeholder
    component: discord.ui.TextInput[Any] = discord.ui.TextInput(
        custom_id=spec.id,
        style=discord.TextStyle.paragraph if spec.kind == "multiline" else discord.TextStyle.short,
        required=spec.required,
        max_length=max_length,
        placeholder=shorten(holder, PLACEHOLDER) if holder else None,
        default=default,
    )
    return _label(spec, component, hint)


def select_input(
    spec: forms.Field,
    options: Sequence[tuple[str, str, str | None]],
    value: str | None = None,
    *,
    hint: str | None = None,
) -> discord.ui.Label[Any]:
    """options: (value, label, description)."""
    component: discord.ui.Select[Any] = discord.ui.Select(
        custom_id=spec.id,
        required=spec.required,
        min_values=1 if spec.required else 0,
        max_values=1,
        options=[
            discord.SelectOption(
                label=shorten(label, OPTION_LABEL),
                value=option,
                description=shorten(description, OPTION_LABEL) if description else None,
                default=option == value,
            )
            for option, label, description in options[:25]
        ],
    )
    return _label(spec, component, hint)


@dataclass(frozen=True)
class RequestChoices:
    """The slash-command choices of a request, carried in the modal's custom id."""

    session_type: str
    duration: str
    urgency: str

    @property
    def form(self) -> str:
        return f"request:{self.session_type}:{self.duration}:{self.urgency}"

    @classmethod
    def parse(cls, parts: Sequence[str]) -> RequestChoices | None:
        if len(parts) != 3:
            return None
        return cls(*parts)

    def values(self) -> dict[str, str]:
        return {"session_type": self.session_type, "duration": self.duration, "urgency": self.urgency}


def form_custom_id(form: str) -> str:
    return f"mm:form:{form}"


def request_modal(
    choices: RequestChoices, values: Mapping[str, str | None], *, tz: str, today: date
) -> FormModal:
    spec = forms.REQUEST_FORM
    modal = FormModal(title=spec.title, custom_id=form_custom_id(choices.form))
    start, end = forms.default_dates(today)
    modal.add_item(text_input(spec.field("title"), values.get("title")))
    modal.add_item(text_input(spec.field("description"), values.get("description")))
    date_hint = f"YYYY-MM-DD, in your time zone ({tz})"
    modal.add_item(
        text_input(
            spec.field("available_from"),
            values.get("available_from") or start.isoformat(),
            hint=date_hint,
            placeholder=start.isoformat(),
        )
    )
    modal.add_item(
        text_input(
            spec.field("available_until"),
            values.get("available_until") or end.isoformat(),
            hint=date_hint,
            placeholder=end.isoformat(),
        )
    )
    modal.add_item(text_input(spec.field("tags"), values.get("tags")))
    return modal


def slot_label(slot: Slot, tz: str) -> str:
    zone = forms.zone(tz)
    start, end = slot.starts_at.astimezone(zone), slot.ends_at.astimezone(zone)
    return f"{start:%a %d %b, %H:%M}–{end:%H:%M}"


def schedule_modal(
    request_id: int,
    slots: Sequence[Slot],
    values: Mapping[str, str | None],
    *,
    tz: str,
    rescheduling: bool = False,
    opened_for: str | None = None,
) -> FormModal:
    """`opened_for`: the booking the form is opened for, checked on submit (see booking_token)."""
    spec = forms.SCHEDULE_FORM
    title = f"{'Reschedule' if rescheduling else 'Schedule'} request #{request_id}"
    form = f"schedule:{request_id}" + (f":{opened_for}" if opened_for else "")
    modal = FormModal(title=title, custom_id=form_custom_id(form))
    if slots:
        options = [(slot.starts_at.isoformat(), slot_label(slot, tz), tz) for slot in slots]
        modal.add_item(select_input(spec.field("slot"), options, values.get("slot")))
    modal.add_item(
        text_input(
            spec.field("starts_at"),
            values.get("starts_at"),
            hint=_time_hint(tz),
            placeholder="2030-01-31 18:30",
        )
    )
    url_hint = "Leave empty to keep the current link" if rescheduling else None
    modal.add_item(text_input(spec.field("meeting_url"), values.get("meeting_url"), hint=url_hint))
    modal.add_item(text_input(spec.field("note"), values.get("note")))
    return modal


def propose_modal(
    request_id: int,
    slots: Sequence[Slot],
    values: Mapping[str, str | None],
    *,
    tz: str,
    ask_id: int | None = None,
) -> FormModal:
    """Up to three times, the first suggestions from the mentor's availability filled in;
    `ask_id` when they answer the student's ask to reschedule."""
    spec = forms.PROPOSE_FORM
    form = f"propose:{request_id}" + (f":{ask_id}" if ask_id is not None else "")
    modal = FormModal(title=f"Propose times for #{request_id}", custom_id=form_custom_id(form))
    zone = forms.zone(tz)
    for n in range(forms.MAX_PROPOSED):
        field = spec.field(f"time_{n + 1}")
        suggested = f"{slots[n].starts_at.astimezone(zone):%Y-%m-%d %H:%M}" if n < len(slots) else None
        modal.add_item(
            text_input(
                field,
                values.get(field.id) or (None if values else suggested),
                hint=_time_hint(tz),
                placeholder="2030-01-31 18:30",
            )
        )
    modal.add_item(text_input(spec.field("meeting_url"), values.get("meeting_url")))
    modal.add_item(text_input(spec.field("note"), values.get("note")))
    return modal


def _time_hint(tz: str) -> str:
    """The typed time's hint; the zone is named only when known (an empty `tz`: the form was
    opened before the mentor's zone could be read, and the time is read in their zone all the
    same)."""
    return f"YYYY-MM-DD HH:MM in your time zone ({tz})" if tz else "YYYY-MM-DD HH:MM in your time zone"


def none_work_modal(request_id: int, proposal_id: int, values: Mapping[str, str | None]) -> FormModal:
    spec = forms.NONE_WORK_FORM
    modal = FormModal(title=spec.title, custom_id=form_custom_id(f"none_work:{request_id}:{proposal_id}"))
    modal.add_item(text_input(spec.field("note"), values.get("note")))
    return modal


def session_form_modal(
    spec: forms.FormSpec, request_id: int, session_id: int, version: int, values: Mapping[str, str | None]
) -> FormModal:
    """Ask to reschedule / Can't make it: one reason field; the ids say which time it is about."""
    custom_id = form_custom_id(f"{spec.id}:{request_id}:{session_id}:{version}")
    modal = FormModal(title=spec.title, custom_id=custom_id)
    modal.add_item(text_input(spec.field("reason"), values.get("reason")))
    return modal


def review_modal(request_id: int, values: Mapping[str, str | None]) -> FormModal:
    spec = forms.REVIEW_FORM
    modal = FormModal(title=spec.title, custom_id=form_custom_id(f"review:{request_id}"))
    rating = spec.field("rating")
    options = [(c.value, c.label, None) for c in rating.choices]
    modal.add_item(select_input(rating, options, values.get("rating")))
    modal.add_item(text_input(spec.field("review"), values.get("review")))
    return modal


def availability_modal(values: Mapping[str, str | None]) -> FormModal:
    spec = forms.AVAILABILITY_FORM
    modal = FormModal(title=spec.title, custom_id=form_custom_id("availability"))
    modal.add_item(text_input(spec.field("windows"), values.get("windows")))
    modal.add_item(text_input(spec.field("timezone"), values.get("timezone")))
    return modal


def profile_modal(values: Mapping[str, str | None]) -> FormModal:
    spec = forms.PROFILE_FORM
    modal = FormModal(title=spec.title, custom_id=form_custom_id("profile"))
    for field_id in ("skills", "capacity", "away_until"):
        modal.add_item(text_input(spec.field(field_id), values.get(field_id)))
    return modal


def modal_values(data: Mapping[str, Any]) -> dict[str, str]:
    """Flatten MODAL_SUBMIT data (action rows, labels) to {custom_id: value}."""
    out: dict[str, str] = {}

    def walk(nodes: Any) -> None:
        for node in nodes or ():
            if not isinstance(node, Mapping):
                continue
            if "components" in node:
                walk(node["components"])
            elif "component" in node:
                walk([node["component"]])
            elif isinstance(node.get("custom_id"), str):
                raw = node.get("value", node.get("values"))
                if isinstance(raw, list):
                    raw = raw[0] if raw else ""
                out[node["custom_id"]] = raw if isinstance(raw, str) else ""

    walk(data.get("components"))
    return out


# Replies ------------------------------------------------------------------------------------


def form_errors(spec: forms.FormSpec, errors: Mapping[str, str], values: Mapping[str, str | None]) -> str:
    """Exactly what to fix, field by field, with what was typed for short fields."""
    labels = {field.id: field.label for field in spec.fields}
    lines = ["Please fix these and submit again:"]
    for field_id, problem in errors.items():
        label = labels.get(field_id, field_id.replace("_", " ").capitalize())
        line = f"• **{escape(label)}**: {escape(problem)}"
        typed = (values.get(field_id) or "").strip()
        kind = spec.field(field_id).kind if field_id in labels else "text"
        if typed and kind in ("text", "date", "datetime", "url"):
            line += f" — you typed “{escape(shorten(typed, 120))}”"
        lines.append(line)
    return shorten("\n".join(lines), CONTENT)


def request_item(request: RequestView, viewer_id: str, problems: tuple[str, ...] = ()) -> Rendered:
    """A request as the viewer may act on it (used in ephemeral replies)."""
    return render(dashboard_item(request, viewer_id=viewer_id, problems=problems), audience="reply")


def _compact(message: Message) -> str:
    head = f"**{escape(message.headline)}**"
    first = render_line(message.lines[0]) if message.lines else ""
    rest = [render_line(line) for line in message.lines[1:]]
    facts = " · ".join(
        f"{escape(label)}: {render_line(value)}"
        for label, value in message.fields
        if label not in ("Status",)
    )
    return "\n".join(filter(None, [f"{head} {first}".strip(), facts, *rest]))


@dataclass
class DashboardView:
    embeds: list[discord.Embed]
    view: discord.ui.View | None


def render_dashboard(dashboard: Dashboard, viewer_id: str) -> DashboardView:
    """`/mini-session list`: one embed per section, buttons for the first five actionable items."""
    sections: list[tuple[str, list[RequestView], int, str]] = [
        (
            "Your requests",
            dashboard.mine,
            dashboard.total("mine"),
            "You have no requests yet. Start one with `/mini-session request`.",
        ),
    ]
    if dashboard.is_mentor or dashboard.claimed:  # what they hold, even after losing the role
        sections.append(
            ("You're mentoring", dashboard.claimed, dashboard.total("claimed"), "Nothing claimed right now.")
        )
    if dashboard.is_mentor:
        sections.append(("Open requests", dashboard.open, dashboard.total("open"), "No open requests. 🎉"))
    # The mentor's availability and profile and the footer first: the request sections share
    # what is left of Discord's 6,000 characters for all of a message's embeds.
    tail: list[discord.Embed] = []
    if dashboard.is_mentor:
        windows = forms.format_availability(dashboard.availability)
        text = (
            f"{escape(windows)} ({escape(dashboard.availability[0].timezone)})"
            if windows
            else "None yet — set it with `/mini-session availability` to get suggested times."
        )
        tail.append(discord.Embed(title="Your weekly availability", description=text, colour=DEFAULT_ACCENT))
        if dashboard.profile is not None:
            hint = "" if dashboard.profile.saved else "\nSet it with `/mini-session profile`."
            tail.append(
                discord.Embed(
                    title="Your mentor profile",
                    description=escape(dashboard.profile.summary) + hint,
                    colour=DEFAULT_ACCENT,
                )
            )
    footer = (
        f"Times show in your own time zone. Dates you type are read in {dashboard.timezone} "
        "(change it with /mini-session timezone)."
    )
    budget = (
        EMBEDS_TOTAL - sum(len(e.title or "") + len(e.description or "") for e in tail) - len(footer) - 100
    )
    embeds: list[discord.Embed] = []
    rows: list[tuple[int, tuple[Button, ...]]] = []
    seen: set[int] = set()
    for title, requests, total, empty in sections:
        parts: list[str] = []
        for index, request in enumerate(requests):
            item = dashboard_item(
                request, viewer_id=viewer_id, problems=dashboard.problems.get(request.id, ())
            )
            text = _compact(item)
            if len(text) + 2 > budget or sum(len(p) + 2 for p in parts) + len(text) > EMBED_DESCRIPTION - 60:
                parts.append(f"…and {total - index} more")
                break
            parts.append(text)
            budget -= len(text) + 2
            if item.buttons and request.id not in seen and len(rows) < 5:
                rows.append((request.id, item.buttons[:5]))
                seen.add(request.id)
        else:
            if total > len(requests):  # the section lists the first few; say how many more there are
                parts.append(f"…and {total - len(requests)} more")
        description = "\n\n".join(parts) or empty
        budget -= len(title) + (0 if parts else len(empty))
        embeds.append(discord.Embed(title=title, description=description, colour=DEFAULT_ACCENT))
    embeds += tail
    embeds[-1].set_footer(text=footer)
    view: discord.ui.View | None = None
    for row, (request_id, buttons) in enumerate(rows):  # one row per request, at most five
        view = view or discord.ui.View(timeout=None)
        for button in buttons:
            drawn = ActionButton(
                button.action,
                button.value,
                label=f"#{request_id} {button.label}",
                style=STYLES.get(button.style or "", discord.ButtonStyle.secondary),
            )
            drawn.row = row
            view.add_item(drawn)
    return DashboardView(embeds, _finished(view) if view is not None else None)


def render_stats(report: Report) -> tuple[discord.Embed, discord.File]:
    embed = discord.Embed(title="Mini Mentorship — stats", colour=DEFAULT_ACCENT)
    by_status = ", ".join(f"{status.badge} {count}" for status, count in report.by_status.items() if count)
    embed.add_field(
        name="Requests", value=f"{report.total}" + (f" ({by_status})" if by_status else ""), inline=False
    )
    embed.add_field(name="Median time to claim", value=_duration(report.median_time_to_claim))
    embed.add_field(
        name="Completion rate",
        value="—" if report.completion_rate is None else f"{report.completion_rate:.0%}",
    )
    embed.add_field(name="No-shows", value=str(report.no_shows))
    embed.add_field(
        name="Average rating",
        value="—"
        if report.average_rating is None
        else f"{report.average_rating:.1f} ★ ({report.ratings} rating{'s' if report.ratings != 1 else ''})",
    )
    mentors = [
        f"{f'<@{m.external_id}>' if m.external_id.isdigit() else escape(m.name)}: {m.claimed} claimed, "
        f"{m.completed} completed, {m.no_shows} no-show{'s' if m.no_shows != 1 else ''}"
        + (f", {m.average_rating:.1f} ★" if m.average_rating is not None else "")
        for m in report.mentors[:15]
    ]
    if mentors:
        embed.add_field(name="Mentors", value=shorten("\n".join(mentors), FIELD_VALUE), inline=False)
    for share in report.within_target:
        embed.add_field(
            name=f"{Urgency(share.urgency).label}: within {span(share.target)}",
            value="—" if share.share is None else f"{share.within} of {share.decided} ({share.share:.0%})",
        )
    if report.tags:
        demand = [
            f"{escape(tag.tag)}: {tag.requests} request{'s' if tag.requests != 1 else ''}"
            + ("" if tag.mentors is None else f", {tag.mentors} mentor{'s' if tag.mentors != 1 else ''}")
            for tag in report.tags
        ]
        embed.add_field(
            name="Demand against supply", value=shorten("\n".join(demand), FIELD_VALUE), inline=False
        )
    if report.capacity:
        load = [
            f"{f'<@{m.external_id}>' if m.external_id.isdigit() else escape(m.name)}: {m.load_text}"
            + (f", away until {m.away_until.isoformat()}" if m.away_until else "")
            for m in report.capacity[:15]
        ]
        embed.add_field(name="Mentor load", value=shorten("\n".join(load), FIELD_VALUE), inline=False)
    embed.set_footer(text="The CSVs hold every request and session, and these figures.")
    return embed, discord.File(io.BytesIO(report.csv), filename="mini-mentorship-stats.csv")


def render_summary_csv(report: Report) -> discord.File:
    return discord.File(io.BytesIO(report.summary_csv), filename="mini-mentorship-summary.csv")


def render_charts(charts: ChartSet) -> tuple[list[discord.Embed], list[discord.File]]:
    """One embed per chart showing its PNG attachment, with the alt text as the embed's text and
    the attachment's description (what screen readers and text-only clients get); the friendly
    sentence alone when there is nothing to chart."""
    if charts.empty_note is not None:
        return [discord.Embed(description=escape(charts.empty_note), colour=DEFAULT_ACCENT)], []
    embeds, files = [], []
    for chart, (name, png) in zip(charts.charts, charts.files(), strict=True):
        embed = discord.Embed(title=chart.title, description=shorten(escape(chart.alt_text), 4096))
        embed.colour = DEFAULT_ACCENT
        embed.set_image(url=f"attachment://{name}")
        embeds.append(embed)
        files.append(discord.File(io.BytesIO(png), filename=name, description=chart.alt_text[:1024]))
    return embeds, files


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} days"


HELP = (
    "**Mini Mentorship** runs quick, one-off sessions (30–60 min) between students and mentors.\n\n"
    "`/mini-session request` — ask for a session: pick the type, duration and urgency, then describe "
    "what you need and the dates you're free.\n"
    "`/mini-session list` — your requests (and, for mentors, what you're mentoring and what's open), "
    "with buttons to act on them.\n"
    "`/mini-session timezone` — set your time zone; dates and times you type are read in it.\n"
    "`/mini-session availability` — mentors: your weekly availability, used to suggest times.\n"
    "`/mini-session profile` — mentors: your skills, how many sessions you take at once, time away.\n"
    "`/mini-session stats [weeks]` — admins: volume, time to claim, completion, ratings, charts over "
    "4, 12 (default) or 52 weeks, and a CSV.\n"
    "`/mini-session help` — this message.\n\n"
    "Mentors claim requests from the cards in the mentors' channel. I send updates, the meeting link "
    "and a calendar file by DM, so please allow DMs from this server's members."
)
