"""A platform-neutral message: what to say, not how a platform draws it.

The core composes these (bot/notifications.py); handlers/slack.py turns them into Block Kit
and handlers/discord.py into embeds and views. Every `Text` is user-safe plain text: each
renderer escapes it for its own markup, so a title of `<!channel>` or `@everyone` stays inert.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Text:
    text: str
    bold: bool = False


@dataclass(frozen=True)
class When:
    """An instant, drawn in each reader's own zone by the platform (`<!date^…>`, `<t:…>`)."""

    at: datetime
    style: str = "full"  # full | relative | date


@dataclass(frozen=True)
class Person:
    """Refers to a platform user by id; renderers may mention without pinging."""

    external_id: str
    name: str


@dataclass(frozen=True)
class Ping:
    """A deliberate ping the organisers configured: a group (a Slack user group, a Discord role)
    or a person (an admin). Renderers mention exactly these and allow nothing else to ping."""

    kind: str  # "group" | "user"
    external_id: str


@dataclass(frozen=True)
class Link:
    url: str
    label: str


Inline = Text | When | Person | Link
Line = tuple[Inline, ...]


class Action(enum.StrEnum):
    """Button actions. The value carries the request id (and for RATE, `id:stars`)."""

    CLAIM = "claim"
    RELEASE = "release"
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    CANCEL_SESSION = "cancel_session"
    COMPLETE = "complete"
    NO_SHOW = "no_show"
    RATE = "rate"
    REVIEW = "review"
    REPOST = "repost"
    PROPOSE = "propose"  # open the propose-times form
    PICK_TIME = "pick_time"  # value: request:proposal:index
    NONE_WORK = "none_work"  # value: request:proposal
    ASK_RESCHEDULE = "ask_reschedule"  # the student's ask; value: request:session:version
    ASK_PROPOSE = "ask_propose"  # the mentor answers an ask with new times; value: request:ask
    KEEP_TIME = "keep_time"  # the mentor answers an ask by keeping the time; value: request:ask
    CANT_MAKE_IT = "cant_make_it"  # from the 24-hour reminder; value: request:session:version


@dataclass(frozen=True)
class Button:
    label: str
    action: Action
    value: str
    style: str | None = None  # primary | danger


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime: str
    title: str


@dataclass(frozen=True)
class Message:
    headline: str  # plain text: notification preview, header and fallback
    lines: tuple[Line, ...] = ()
    fields: tuple[tuple[str, Line], ...] = ()
    buttons: tuple[Button, ...] = ()
    footer: Line = ()
    attachment: Attachment | None = None
    accent: str | None = None  # "high" urgency, "done", "muted"
    links: tuple[Link, ...] = field(default_factory=tuple)
    pings: tuple[Ping, ...] = ()  # who this message must notify (escalations only)


def t(text: str, bold: bool = False) -> Text:
    return Text(text, bold)


def plain(line: Line) -> str:
    """A line as plain text (fallbacks, CSV, logs). Times in UTC ISO form."""
    parts: list[str] = []
    for item in line:
        if isinstance(item, Text):
            parts.append(item.text)
        elif isinstance(item, When):
            parts.append(item.at.strftime("%Y-%m-%d %H:%M UTC"))
        elif isinstance(item, Person):
            parts.append(item.name)
        else:
            parts.append(f"{item.label} ({item.url})")
    return "".join(parts)


def message_text(message: Message) -> str:
    body = [message.headline, *(plain(line) for line in message.lines)]
    body += [f"{label}: {plain(value)}" for label, value in message.fields]
    return "\n".join(body)
