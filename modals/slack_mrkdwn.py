"""Slack mrkdwn for the neutral inline pieces of bot/messages.py.

User text is data: every `Text` is escaped (`&`, `<`, `>`), so nothing a user typed can become a
`<!channel>`, `<!here>`, `<!subteam^…>` or `<@U…>` ping. The only mentions we ever write are
`Person`s, whose ids come from Slack itself, and `<!date^…>`, which Slack draws in each reader's
own time zone.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from bot.messages import Inline, Line, Link, Person, Text, When

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
# Slack's date tokens; the fallback (after `|`) is shown by clients that can't localize.
_DATE_TOKENS = {
    "full": "{date_short_pretty} at {time}",
    "relative": "{ago}",
    "date": "{date_short_pretty}",
}


def escape(text: str) -> str:
    """The three characters Slack wants escaped in mrkdwn (and in plain `text` fallbacks)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: str) -> str | None:
    """An http(s) URL fit for `<url|label>`, or None. `|`, `<` and `>` would end the link early
    (and could smuggle markup into it): `|` is percent-encoded (the same link to any server), and
    `<`/`>`, which the forms refuse, are dropped; `&` is escaped as Slack expects."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    cleaned = url.translate({ord("|"): "%7C", ord("<"): None, ord(">"): None})
    parsed = urlparse(cleaned)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc:
        return None
    return cleaned.replace("&", "&amp;")


def bold(text: str) -> str:
    """`*text*` around the escaped text; Slack only bolds when the stars touch non-space."""
    core = text.strip()
    if not core:
        return escape(text)
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}*{escape(core)}*{trail}"


def fallback_time(at: datetime, zone: ZoneInfo, style: str = "full") -> str:
    local = at.astimezone(zone)
    text = local.strftime("%a %d %b %Y") if style == "date" else local.strftime("%a %d %b %Y %H:%M")
    if style != "date":
        text += f" {local.tzname() or zone.key}"
    return text.replace("|", "/").replace(">", "").replace("<", "")


def when(item: When, zone: ZoneInfo) -> str:
    token = _DATE_TOKENS.get(item.style, _DATE_TOKENS["full"])
    return f"<!date^{int(item.at.timestamp())}^{token}|{fallback_time(item.at, zone, item.style)}>"


def person(item: Person) -> str:
    if _USER_ID.fullmatch(item.external_id):
        return f"<@{item.external_id}>"
    return escape(item.name)  # not a Slack id (another platform, a test): the name, inert


def link(item: Link) -> str:
    url = safe_url(item.url)
    label = escape(item.label.replace("\n", " ")) or (url or "")
    return f"<{url}|{label}>" if url else label


def inline(item: Inline, zone: ZoneInfo) -> str:
    if isinstance(item, Text):
        return bold(item.text) if item.bold else escape(item.text)
    if isinstance(item, When):
        return when(item, zone)
    if isinstance(item, Person):
        return person(item)
    return link(item)


def line(items: Line, zone: ZoneInfo) -> str:
    return "".join(inline(item, zone) for item in items)
