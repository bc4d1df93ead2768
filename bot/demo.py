"""`mini-mentorship demo`: the whole story, student to rating, with no credentials.

It runs the real core (use cases, outbox, sweeps) on a throwaway SQLite database, with a
manual clock that jumps to each interesting moment, and a console stand-in for the chat
platform that prints what each person would see.
"""

from __future__ import annotations

import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Actor, Ok, RequestView, Result, Status
from bot.messages import Link, Message, Person, Text, When
from bot.outbox import Delivered, FeedRef, Outgoing
from bot.runtime import Runtime
from bot.stats import format_duration
from jobs.sweeps import Sweeps
from modals import forms

WIDTH = 78


def _relative(at: datetime, now: datetime) -> str:
    minutes = round((at - now).total_seconds() / 60)
    size = abs(minutes)
    amount = (
        f"{size} min"
        if size < 120
        else f"{round(size / 60)} hours"
        if size < 48 * 60
        else (f"{round(size / 1440)} days")
    )
    return f"in {amount}" if minutes >= 0 else f"{amount} ago"


def _when(at: datetime, style: str, tz_name: str, now: datetime | None = None) -> str:
    local = at.astimezone(forms.zone(tz_name))
    if style == "relative":
        return _relative(at, now or at)
    if style == "date":
        return local.strftime("%a %d %b %Y")
    return local.strftime("%a %d %b %Y, %H:%M %Z")


def render_text(message: Message, tz_name: str, now: datetime) -> str:
    """A Message as a person would read it, with times in their own zone."""

    def line(items: tuple[Text | When | Person | Link, ...]) -> str:
        out = []
        for item in items:
            if isinstance(item, Text):
                out.append(item.text)
            elif isinstance(item, When):
                out.append(_when(item.at, item.style, tz_name, now))
            elif isinstance(item, Person):
                out.append(f"@{item.name}")
            else:
                out.append(item.label if item.label == item.url else f"{item.label} <{item.url[:60]}…>")
        return "".join(out)

    parts = [f"» {message.headline}"]
    parts += [textwrap.fill(line(items), WIDTH, subsequent_indent="  ") for items in message.lines]
    parts += [f"  {label}: {line(value)}" for label, value in message.fields]
    if message.attachment:
        parts.append(f"  📎 {message.attachment.filename} ({len(message.attachment.content)} bytes)")
    if message.buttons:
        parts.append("  " + "  ".join(f"[ {b.label} ]" for b in message.buttons))
    return "\n".join(parts)


class ConsoleSender:
    """A stand-in for Slack that prints each delivered message under its reader's name."""

    platform = "slack"
    min_interval = 0.0

    def __init__(self, zones: dict[str, str], clock: ManualClock) -> None:
        self.zones = zones
        self.clock = clock

    def channel_key(self, outgoing: Outgoing) -> str:
        return "feed" if outgoing.recipient is None else outgoing.recipient.external_id

    async def deliver(self, outgoing: Outgoing) -> Delivered:
        if outgoing.recipient is None:
            where = "#mentors feed" + (" (card updated)" if outgoing.feed_ref else "")
            tz_name = "UTC"
        else:
            where = f"DM to {outgoing.recipient.display_name}"
            tz_name = self.zones.get(outgoing.recipient.external_id, "UTC")
        print(f"\n  ┌─ {where} — times in {tz_name}")
        print(textwrap.indent(render_text(outgoing.message, tz_name, self.clock.now()), "  │ "))
        if outgoing.recipient is None and outgoing.feed_ref is None:
            return Delivered(FeedRef("C_MENTORS", f"card-{outgoing.request.id}"))
        return Delivered()


def _step(clock: ManualClock, title: str) -> None:
    print(f"\n{'═' * WIDTH}\n{clock.now():%a %d %b %Y %H:%M} UTC · {title}\n{'═' * WIDTH}")


def _value(result: Result[RequestView]) -> RequestView:
    assert isinstance(result, Ok), result
    return result.value


async def run_demo() -> None:
    student = Actor("slack", "T_DEMO", "U_SAM", "Sam (student)", "Europe/Berlin")
    mentor = Actor("slack", "T_DEMO", "U_MIA", "Mia (mentor)", "America/New_York", is_mentor=True)
    other = Actor("slack", "T_DEMO", "U_MAX", "Max (mentor)", "Asia/Tokyo", is_mentor=True)
    admin = Actor("slack", "T_DEMO", "U_ADA", "Ada (organiser)", "UTC", is_admin=True)
    start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    # Find the next Monday so the mentor's weekly windows line up with the student's dates.
    start += timedelta(days=(7 - start.weekday()) % 7 or 7)
    clock = ManualClock(start)

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        )
        runtime = Runtime(settings, clock=clock)
        await runtime.prepare()
        zones = {a.user_id: a.timezone or "UTC" for a in (student, mentor, other, admin)}
        runtime.delivery.add_sender(ConsoleSender(zones, clock))
        sweeps = Sweeps(runtime)
        m = runtime.mentorship
        try:
            print("Mini Mentorship demo: the real core on a throwaway SQLite database;")
            print("the clock jumps to each moment, and each message shows what its reader sees.")

            _step(clock, "Sam runs /mini-session and fills the form")
            today = start.date()
            request = _value(
                await m.create_request(
                    student,
                    {
                        "title": "Mock interview for a junior backend role",
                        "session_type": "interview_prep",
                        "description": "Interview on Friday; I'd like to practise system design "
                        "and talk through my portfolio project.",
                        "duration": "45",
                        "available_from": today.isoformat(),
                        "available_until": (today + timedelta(days=4)).isoformat(),
                        "urgency": "high",
                        "tags": "python, interviews",
                    },
                )
            )
            await runtime.delivery.run_once()

            _step(clock, "Mia saves her weekly availability, then she and Max both click Claim")
            await m.set_availability(
                mentor, {"windows": "Tue 09:00-12:00, Thu 14:00-17:00", "timezone": "America/New_York"}
            )
            clock.advance(minutes=20)
            _value(await m.claim(mentor, request.id))
            lost = await m.claim(other, request.id)
            print(f"\n  Max sees (only to him): {getattr(lost, 'message', lost)}")
            await runtime.delivery.run_once()

            _step(clock, "Mia opens Schedule, picks the first suggested slot")
            slots = await m.suggest_slots(mentor, request.id)
            assert isinstance(slots, Ok) and slots.value
            print(
                "\n  Suggested for Mia: "
                + ", ".join(_when(s.starts_at, "full", "America/New_York") for s in slots.value[:3])
                + " …"
            )
            request = _value(
                await m.schedule(mentor, request.id, {"slot": slots.value[0].starts_at.isoformat()})
            )
            await runtime.delivery.run_once()

            assert request.session is not None
            session_start = request.session.starts_at
            clock.set(session_start - timedelta(hours=24))
            _step(clock, "24 hours before: the jobs send reminders")
            await sweeps.run_all_once()

            clock.set(session_start - timedelta(minutes=15))
            _step(clock, "15 minutes before")
            await sweeps.run_all_once()

            clock.set(request.session.ends_at + timedelta(minutes=10))
            _step(clock, "The session ended 10 minutes ago: completed, Sam is asked for a rating")
            await sweeps.run_all_once()

            _step(clock, "Sam clicks ★★★★★ and writes a short review")
            _value(await m.rate(student, request.id, 5, "Super practical, I feel ready for Friday!"))
            await runtime.delivery.run_once()

            _step(clock, "Ada (organiser) runs /mini-session stats")
            report = await runtime.stats.report(admin)
            assert isinstance(report, Ok)
            figures = report.value
            print(
                f"\n  Requests: {figures.total} · completed {figures.by_status[Status.COMPLETED]} · "
                f"median time to claim {format_duration(figures.median_time_to_claim)} · "
                f"average rating {figures.average_rating}"
            )
            for row in figures.mentors:
                print(
                    f"  {row.name}: claimed {row.claimed}, completed {row.completed}, "
                    f"rating {row.average_rating}"
                )
            print(
                "\nThat's the whole flow. Set SLACK_* or DISCORD_* variables and run "
                "`mini-mentorship run` to do it for real (see README)."
            )
        finally:
            await runtime.close()
