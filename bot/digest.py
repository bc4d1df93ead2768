"""The daily digest: once a day at DIGEST_TIME (in DEFAULT_TIMEZONE) each mentors' feed gets one
message listing its oldest open requests, each with a Claim button.

Exactly once per feed and day, by construction: the outbox row's dedupe key is
`digest:<platform>:<workspace>:<local date>`, so any number of runners, restarts or late starts
owe it at most once. The sweep owes nothing before the day's DIGEST_TIME, and lists only
requests posted before that moment (a request posted at 14:00 has its own fresh card; it does
not bring a digest of its own). It never sends: the outbox does, composing the list from the
requests' state at delivery, so a request claimed in between is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.domain import RequestView, Status
from bot.messages import Action, Button, Line, Message, t
from bot.notifications import span
from bot.outbox import owe_digest
from storage import repository as repo
from storage.models import Request

if TYPE_CHECKING:
    from bot.workflow import Mentorship

MAX_ITEMS = 10
TITLE_LIMIT = 80  # ten lines must fit one Slack section (3,000 characters)
TAGS_LIMIT = 60


def digest_moment(now: datetime, digest_time: str, timezone: str) -> tuple[date, datetime]:
    """Today's local date in `timezone` and the instant of its digest (DIGEST_TIME that day)."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    return day, datetime.combine(day, time.fromisoformat(digest_time), zone)


def dedupe_key(platform: str, workspace: str, day: date) -> str:
    return f"digest:{platform}:{workspace}:{day.isoformat()}"


async def owe_due(mentorship: Mentorship) -> int:
    """Owe today's digest to every feed with requests open since before DIGEST_TIME; the number
    of digests newly owed (0 before DIGEST_TIME, and once owed)."""
    settings = mentorship.settings
    now = mentorship.clock.now()
    day, moment = digest_moment(now, settings.digest_time, settings.default_timezone)
    if now < moment:
        return 0
    waiting = (Request.status == Status.OPEN.value, Request.created_at < moment)
    targets = {name: target.total_seconds() for name, target in settings.claim_targets.items()}
    count = 0
    async with mentorship.db.transaction() as session:
        feeds = (
            await session.execute(select(Request.platform, Request.workspace).where(*waiting).distinct())
        ).all()
        for platform, workspace in sorted(feeds):
            key = dedupe_key(platform, workspace, day)
            if await repo.notification_exists(session, key):
                continue  # owed already (by us before a restart, or by another runner)
            oldest = await session.scalars(
                select(Request.id)
                .where(*waiting, Request.platform == platform, Request.workspace == workspace)
                .order_by(Request.created_at, Request.id)
                .limit(MAX_ITEMS)
            )
            ids = list(oldest)
            # How many wait in all, for the headline: the digest lists only the oldest few.
            total = len(ids)
            if total == MAX_ITEMS:
                total = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(Request)
                        .where(*waiting, Request.platform == platform, Request.workspace == workspace)
                    )
                    or 0
                )
            if ids and await owe_digest(
                session,
                platform=platform,
                workspace=workspace,
                request_ids=ids,
                key=key,
                payload={"requests": ids, "day": day.isoformat(), "targets": targets, "waiting": total},
                now=now,
            ):
                count += 1
    if count:
        mentorship._owed()
    return count


def waited_vs_target(waited: timedelta, target: timedelta | None) -> str:
    """ "waited 30 h · target 24 h (missed)", in the card's own units (notifications.span)."""
    phrase = f"waited {span(waited)}"
    if target is not None:
        phrase += f" · target {span(target)}"
        if waited >= target:
            phrase += " (missed)"
    return phrase


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def compose(requests: Sequence[RequestView], payload: Mapping[str, Any], now: datetime) -> Message:
    """The digest message over the requests still open at delivery, oldest first."""
    raw = payload.get("targets")
    targets = {str(k): float(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    lines: list[Line] = []
    for request in requests[:MAX_ITEMS]:
        # The request's own ladder when it has one (a release restarts it), else its urgency's.
        since = request.waiting_since or request.created_at
        if request.claim_target_at is not None:
            target: timedelta | None = request.claim_target_at - since
        else:
            seconds = targets.get(request.urgency.value)
            target = timedelta(seconds=seconds) if seconds is not None else None
        details = [request.urgency.label]
        if request.tags:
            details.append(_shorten(", ".join(request.tags), TAGS_LIMIT))
        details.append(waited_vs_target(now - since, target))
        lines.append(
            (
                t(f"#{request.id} "),
                t(_shorten(request.title, TITLE_LIMIT), bold=True),
                t(" — " + " · ".join(details)),
            )
        )
    count = len(lines)
    listed = len(payload.get("requests") or [])
    # "Of M" only when the list was cut short; those taken since it was owed are off M too.
    waiting = int(payload.get("waiting") or 0) - (listed - count)
    headline = (
        f"☀️ Daily digest: the {count} oldest of {waiting} requests waiting for a mentor"
        if int(payload.get("waiting") or 0) > listed and waiting > count
        else f"☀️ Daily digest: {count} request{'s' if count != 1 else ''} waiting for a mentor"
    )
    return Message(
        headline=headline,
        lines=(*lines, (t("Oldest first. Claim one if you can take it."),)),
        buttons=tuple(
            Button(f"Claim #{request.id}", Action.CLAIM, str(request.id), "primary" if n == 0 else None)
            for n, request in enumerate(requests[:MAX_ITEMS])
        ),
    )


def still_open(views: Sequence[RequestView | None]) -> list[RequestView]:
    return [view for view in views if view is not None and view.status is Status.OPEN]
