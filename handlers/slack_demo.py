"""`mini-mentorship demo`: the whole story, student to rating, with no credentials.

It runs the real Slack app (Bolt, handlers, Block Kit, the outbox and the sweeps) on a throwaway
SQLite database, against the fake Slack Web API (fakes/slack_api.py), driven by signed HTTP
requests the way Slack sends them (fakes/slack_driver.py). A manual clock jumps to each moment;
after each step it prints what each person now sees in Slack, with times in their own zone.
"""

from __future__ import annotations

import json
import re
import tempfile
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Actor
from bot.runtime import Runtime
from fakes.slack_api import FakeSlack
from fakes.slack_driver import Answer, SlackDriver, buttons, find_button
from handlers.slack import build_app, idle, web_app
from jobs.sweeps import Sweeps
from modals import forms

WIDTH = 78
SECRET = "demo-signing-secret"
FEED, GENERAL = "C_MENTORS", "C_GENERAL"
SAM, MIA, MAX, ADA = "U_SAM", "U_MIA", "U_MAX", "U_ADA"
PEOPLE = {
    SAM: ("Sam (student)", "Europe/Berlin"),
    MIA: ("Mia (mentor)", "America/New_York"),
    MAX: ("Max (mentor)", "Asia/Tokyo"),
    ADA: ("Ada (organiser)", "UTC"),
}
DATE = re.compile(r"<!date\^(\d+)\^([^|>]*)(?:\|[^>]*)?>")
LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
MENTION = re.compile(r"<@(\w+)>")
LEADS = "S0LEADS"  # the demo's SLACK_ESCALATION_USERGROUP, shown as @mentor-leads
FENCE = re.compile(r"```(.*?)```", re.DOTALL)  # Slack draws a code block; here, indented rows
# Where the demo leaves the admin's charts (it says so at the end).
CHARTS_FOLDER = Path(tempfile.gettempdir()) / "mini-mentorship-demo-charts"


class DemoSettings(Settings):
    """The demo's own settings: what it is given, never the environment or a `.env` (a
    REMINDER_OFFSETS set for the real bot would change, or break, the story)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class DemoDriver(SlackDriver):
    """Remembers who acted for each response_url, so private replies can be shown to them."""

    def __init__(self, fake: FakeSlack, *, base_url: str) -> None:
        super().__init__(fake, secret=SECRET, base_url=base_url)
        self.actor_of: dict[str, str] = {}

    def _remember(self, sent: dict[str, Any], user: str) -> None:
        if sent.get("response_url"):
            self.actor_of[str(sent["response_url"]).rsplit("/", 1)[1]] = user

    async def interact(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
        self._remember(payload, str(payload.get("user", {}).get("id", "")))
        return await super().interact(payload, headers)

    def command_body(self, user: str, text: str = "", channel: str = GENERAL) -> dict[str, str]:
        body = super().command_body(user, text, channel)
        self._remember(dict(body), user)
        return body


class Screen:
    """Prints what changed in Slack since the last look: new messages, edited cards, replies."""

    def __init__(self, fake: FakeSlack, driver: DemoDriver, clock: ManualClock) -> None:
        self.fake = fake
        self.driver = driver
        self.clock = clock
        self.seen: dict[tuple[str, str], str] = {}
        self.replies_seen = 0
        self.files_seen = 0

    def to_text(self, blocks: list[dict[str, Any]], zone: str) -> str:
        lines: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                lines.append(f"» {block['text']['text']}")
            elif kind == "section":
                if block.get("text"):
                    lines.append(block["text"]["text"])
                lines += [f"  {field['text'].replace(chr(10), ': ')}" for field in block.get("fields", [])]
            elif kind == "context":
                lines.append("  " + "  ".join(e.get("text", "") for e in block.get("elements", [])))
            elif kind == "actions":
                labels = [e["text"]["text"] for e in block.get("elements", []) if e.get("type") == "button"]
                lines.append("  " + "  ".join(f"[ {label} ]" for label in labels))
        return self.plain("\n".join(lines), zone)

    def plain(self, mrkdwn: str, zone: str) -> str:
        """Slack's markup as a person reads it: times in their zone, names, link labels."""

        def when(match: re.Match[str]) -> str:
            at = datetime.fromtimestamp(int(match.group(1)), UTC)
            if "{ago}" in match.group(2):
                return _relative(at - self.clock.now())
            return at.astimezone(forms.zone(zone)).strftime("%a %d %b %Y, %H:%M %Z")

        text = DATE.sub(when, mrkdwn)
        text = FENCE.sub(
            lambda m: "\n".join(f"    {row}" for row in m.group(1).strip("\n").splitlines()), text
        )
        text = LINK.sub(lambda m: m.group(2) if m.group(2).startswith("http") else f"{m.group(2)} ↗", text)
        text = MENTION.sub(lambda m: "@" + PEOPLE.get(m.group(1), (m.group(1), ""))[0], text)
        text = text.replace(f"<!subteam^{LEADS}>", "@mentor-leads")
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("*", "")

    def show(self) -> None:
        for channel, messages in self.fake.messages.items():
            for message in messages:
                key = (channel, str(message["ts"]))
                if channel == FEED:
                    where, zone = "#mentors", "UTC"
                elif self.fake.channels.get(channel, {}).get("is_mpim"):
                    where, zone = self.group_dm(channel)
                else:
                    user = channel[1:]
                    where, zone = f"DM to {PEOPLE[user][0]}", PEOPLE[user][1]
                raw = json.dumps([message.get("text"), message.get("blocks")], sort_keys=True)
                if self.seen.get(key) == raw:
                    continue  # unchanged (relative times moving on don't count as a change)
                label = "updated" if key in self.seen else "new"
                self.seen[key] = raw
                text = self.to_text(message.get("blocks") or [], zone)
                text = text or self.plain(message.get("text", ""), zone)
                if not text.strip():
                    continue  # the placeholder message of a file upload
                self._box(f"{where} ({label}), times in {zone}", text)
        for upload in self.fake.files[self.files_seen :]:
            self._box(
                f"{self.where(upload)} (file)", f"📎 {upload['filename']} ({len(upload['content'])} bytes)"
            )
        self.files_seen = len(self.fake.files)
        for reply in self.fake.ephemerals[self.replies_seen :]:
            user = str(reply.get("user") or self.driver.actor_of.get(str(reply.get("key")), ""))
            name, zone = PEOPLE.get(user, ("the clicker", "UTC"))
            blocks = reply.get("blocks") or []
            text = self.to_text(blocks, zone) if blocks else self.plain(str(reply.get("text") or ""), zone)
            self._box(f"only {name} sees", text.strip())
        self.replies_seen = len(self.fake.ephemerals)

    def group_dm(self, channel: str) -> tuple[str, str]:
        """The shared conversation of a student and mentor: its people, shown in the first one's
        zone (Slack itself shows each reader their own)."""
        people = [user for user in PEOPLE if user in self.fake.channels[channel]["members"]]
        names = ", ".join(PEOPLE[user][0].split(" ")[0] for user in people)
        return f"Group DM of {names} and the bot", PEOPLE[people[0]][1] if people else "UTC"

    @staticmethod
    def where(upload: dict[str, Any]) -> str:
        """A file's place as a person reads it: "your DM with the bot", not the channel id."""
        channel = str(upload.get("channel_id") or "")
        if channel == FEED:
            return "#mentors"
        person = PEOPLE.get(channel[1:]) if channel.startswith("D") else None
        return f"DM to {person[0]}" if person else channel

    def form_answer(self, user: str, answer: Answer) -> None:
        """A submitted form answers with the next screen of the modal (or inline errors)."""
        reply = answer.json() or {}
        name, zone = PEOPLE[user]
        if reply.get("response_action") == "update":
            self._box(f"{name}'s form now shows", self.to_text(reply["view"].get("blocks", []), zone))
        elif reply.get("response_action") == "errors":
            self._box(f"{name}'s form shows errors", "\n".join(reply["errors"].values()))

    @staticmethod
    def _box(title: str, text: str) -> None:
        print(f"\n  ┌─ {title}")
        for line in text.splitlines():
            # Rows of a table keep their columns; prose wraps to fit the box.
            indent = " " * (len(line) - len(line.lstrip(" ")))
            for wrapped in textwrap.wrap(line, WIDTH - 4, subsequent_indent=indent) or [""]:
                print(f"  │ {wrapped}")


def _relative(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    size = abs(minutes)
    if size == 0:
        return "just now"
    amount = (
        f"{size} minutes"
        if size < 120
        else f"{round(size / 60)} hours"
        if size < 2880
        else f"{round(size / 1440)} days"
    )
    return f"in {amount}" if minutes >= 0 else f"{amount} ago"


def _monday_after(now: datetime) -> datetime:
    start = now.replace(hour=9, minute=0, second=0, microsecond=0)
    return start + timedelta(days=(7 - start.weekday()) % 7 or 7)


@asynccontextmanager
async def _served(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def run_demo() -> None:
    clock = ManualClock(_monday_after(datetime.now(UTC)))
    async with FakeSlack(team_id="T1") as fake:
        for user, (name, zone) in PEOPLE.items():
            fake.add_user(user, name=name, real_name=name, tz=zone, is_admin=user == ADA)
        fake.add_channel(FEED, members=[MIA, MAX, "UBOT"], name="mentors")
        fake.add_channel(GENERAL, members=[*PEOPLE, "UBOT"], name="general")
        with tempfile.TemporaryDirectory() as folder:
            settings = DemoSettings(
                database_url=f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}",
                slack_bot_token="xoxb-demo",
                slack_signing_secret=SECRET,
                slack_api_url=fake.url,
                slack_mentor_channel=FEED,
                slack_channel_post_interval=0,
                slack_escalation_usergroup=LEADS,
            )
            runtime = Runtime(settings, clock=clock)
            await runtime.prepare()
            app = build_app(settings, runtime=runtime)
            async with _served(web_app(app)) as base_url:
                driver = DemoDriver(fake, base_url=base_url)
                await driver.open()
                try:
                    await _story(driver, runtime, clock, Screen(fake, driver, clock), app)
                finally:
                    await driver.close()
                    await idle(app)
            await runtime.close()


async def _story(driver: DemoDriver, runtime: Runtime, clock: ManualClock, screen: Screen, app: Any) -> None:
    sweeps = Sweeps(runtime)

    async def step(title: str) -> None:
        heading = textwrap.fill(f"{clock.now():%a %d %b %Y %H:%M} UTC · {title}", WIDTH)
        print(f"\n{'═' * WIDTH}\n{heading}\n{'═' * WIDTH}")

    async def settle() -> None:
        for _ in range(3):
            await idle(app)
            if (await runtime.delivery.run_once()).handled == 0:
                break
        screen.show()

    print(
        textwrap.fill(
            "Mini Mentorship demo: the real Slack app against a local fake of Slack, on a throwaway "
            "database. The clock jumps to each moment; each box is what one person sees in Slack.",
            WIDTH,
        )
    )

    await step("Mia saves her mentor profile (/mini-session profile): skills and capacity 1")
    await driver.command(MIA, "profile", channel=GENERAL)
    await idle(app)
    answer = await driver.submit(
        MIA, driver.latest_view("mm_profile"), {"skills": "python, interviews", "capacity": "1"}
    )
    screen.form_answer(MIA, answer)
    await settle()

    await step("Sam runs /mini-session and fills the form: Mia's profile fits, so she is suggested")
    await driver.command(SAM, channel=GENERAL)
    await idle(app)
    form = driver.latest_view("mm_request")
    today = clock.now().date()
    answer = await driver.submit(
        SAM,
        form,
        {
            "title": "Mock interview for a junior backend role",
            "session_type": "interview_prep",
            "description": "Interview on Friday; I'd like to practise system design and talk through "
            "my portfolio project.",
            "duration": "45",
            "available_from": today.isoformat(),
            "available_until": (today + timedelta(days=4)).isoformat(),
            "urgency": "high",
            "tags": "python, interviews",
        },
    )
    screen.form_answer(SAM, answer)
    await settle()

    await step("Mia saves her weekly availability (/mini-session availability)")
    await driver.command(MIA, "availability", channel=GENERAL)
    await idle(app)
    answer = await driver.submit(
        MIA,
        driver.latest_view("mm_availability"),
        {"windows": "Tue 09:00-12:00, Thu 14:00-17:00", "timezone": "America/New_York"},
    )
    screen.form_answer(MIA, answer)
    await settle()

    clock.advance(minutes=20)
    await step(
        "Mia and Max both click Claim on the card: Mia wins, and she and Sam get a group DM with "
        "the bot, their place to talk (scheduling news is posted there too)"
    )
    card = driver.fake.messages[FEED][0]
    claim = find_button(card["blocks"], "mm_claim")
    for mentor in (MIA, MAX):
        await driver.click(mentor, claim, channel=FEED, message_ts=card["ts"])
        # Mia's claim lands before Max's click: on a busy machine the two could race the other
        # way, and the story (Mia proposes times next) is told the same way every time.
        await idle(app)
    await settle()

    await step("Sam posts a second request; Mia (1 of 1 active) clicks Claim and is refused")
    await driver.command(SAM, channel=GENERAL)
    await idle(app)
    second: dict[str, str | None] = {
        "title": "Code review of my first API",
        "session_type": "code_review",
        "description": "A small Flask API; I'd like feedback on structure and tests before I apply.",
        "duration": "30",
        "available_from": today.isoformat(),
        "available_until": (today + timedelta(days=4)).isoformat(),
        "urgency": "normal",
        "tags": "python",
    }
    screen.form_answer(SAM, await driver.submit(SAM, driver.latest_view("mm_request"), second))
    await settle()
    newest = driver.fake.messages[FEED][-1]
    await driver.click(MIA, find_button(newest["blocks"], "mm_claim"), channel=FEED, message_ts=newest["ts"])
    await settle()
    await _escalation_step(sweeps, step, settle)

    await step("Mia clicks Propose times: three suggestions from her availability are filled in")
    await driver.click_in(MIA, FEED, "mm_propose", index=0)
    await idle(app)
    propose = driver.latest_view("mm_propose")
    times = {
        b["block_id"]: str(b["element"]["initial_date_time"])
        for b in propose["blocks"]
        if b.get("block_id", "").startswith("time_") and "initial_date_time" in b["element"]
    }
    screen.form_answer(MIA, await driver.submit(MIA, propose, {**times, "note": "Bring your CV"}))
    await settle()

    await step("Sam picks the second time; the buttons show it in his own zone (Berlin)")
    offer = driver.fake.messages[f"D{SAM}"][-1]
    picks = [e for _, e in buttons(offer["blocks"]) if e["action_id"].startswith("mm_pick_time")]
    labels = " · ".join([*(e["text"]["text"] for e in picks), "None of these work"])
    print(textwrap.fill(f"Sam's buttons: {labels}", WIDTH, initial_indent="  ", subsequent_indent="    "))
    await driver.click(SAM, picks[1], channel=f"D{SAM}", message_ts=offer["ts"])
    await settle()

    await _reschedule_ask(driver, screen, step, settle)

    request = next(r for r in (await runtime.mentorship.dashboard(_actor(SAM))).mine if r.session)
    assert request.session is not None, "the session should be scheduled by now"
    clock.set(request.session.starts_at - timedelta(hours=24))
    await step("24 hours before: the jobs send reminders")
    await sweeps.run_all_once()
    await settle()

    clock.set(request.session.starts_at - timedelta(minutes=15))
    await step("15 minutes before")
    await sweeps.run_all_once()
    await settle()

    clock.set(request.session.ends_at + timedelta(minutes=10))
    await step(
        "The session ended 10 minutes ago: it is completed and Sam is asked for a rating (until he"
        " rates, Mia could still report a no-show from the card)"
    )
    await sweeps.run_all_once()
    await settle()

    await step("Sam clicks ★★★★★")
    prompt = next(m for m in reversed(driver.dms(SAM)) if "mm_rate" in str(m["blocks"]))
    await driver.click(
        SAM, find_button(prompt["blocks"], "mm_rate.5"), channel=f"D{SAM}", message_ts=prompt["ts"]
    )
    await settle()

    await step("Sam clicks Write a review and sends a few words")
    await driver.click(
        SAM, find_button(prompt["blocks"], "mm_review"), channel=f"D{SAM}", message_ts=prompt["ts"]
    )
    await idle(app)
    review: dict[str, str | None] = {"rating": "5", "review": "Super practical, I feel ready for Friday!"}
    screen.form_answer(SAM, await driver.submit(SAM, driver.latest_view("mm_review"), review))
    await settle()

    await step("Ada (organiser) runs /mini-session stats")
    await driver.command(ADA, "stats", channel=GENERAL)
    await settle()
    _save_charts(driver.fake, CHARTS_FOLDER)
    print()
    print(
        textwrap.fill(
            "That's the whole flow. Set the SLACK_* or DISCORD_* variables and run "
            "`.venv/bin/mini-mentorship run` to do it for real (see README).",
            WIDTH,
        )
    )


async def _escalation_step(
    sweeps: Sweeps, step: Callable[[str], Awaitable[None]], settle: Callable[[], Awaitable[None]]
) -> None:
    """The escalation ladder: nobody's profile fits the second request, so it is not left to
    wait for its target; the jobs escalate it at once and Sam is told."""
    await step(
        "Nobody else's profile fits the code review (Mia is full): the jobs escalate it at once, "
        "mentioning the mentor leads' user group"
    )
    await sweeps.run("nudge")
    await settle()


async def _reschedule_ask(
    driver: DemoDriver,
    screen: Screen,
    step: Callable[[str], Awaitable[None]],
    settle: Callable[[], Awaitable[None]],
) -> None:
    """Sam asks to reschedule from his scheduled DM, with a reason; Mia keeps the time."""
    await step("Sam clicks Ask to reschedule in his DM and gives a reason")
    booked = next(m for m in reversed(driver.dms(SAM)) if "mm_ask_reschedule" in str(m["blocks"]))
    ask = find_button(booked["blocks"], "mm_ask_reschedule")
    await driver.click(SAM, ask, channel=f"D{SAM}", message_ts=booked["ts"])
    await settle()
    reason: dict[str, str | None] = {"reason": "My interview might move; could we meet a day later?"}
    screen.form_answer(SAM, await driver.submit(SAM, driver.latest_view("mm_reschedule_ask"), reason))
    await settle()

    await step("Mia reads the reason and clicks Keep the time (Propose new times would offer others)")
    asked = next(m for m in reversed(driver.dms(MIA)) if "mm_keep_time" in str(m["blocks"]))
    keep = find_button(asked["blocks"], "mm_keep_time")
    await driver.click(MIA, keep, channel=f"D{MIA}", message_ts=asked["ts"])
    await settle()


def _save_charts(fake: FakeSlack, folder: Path) -> None:
    """The chart images Ada was sent, as PNG files a person can open."""
    charts = [f for f in fake.files if f["filename"].endswith(".png") and f["channels"] == [f"D{ADA}"]]
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nAda's charts, written to {folder}:")
    for chart in charts:
        path = folder / chart["filename"]
        path.write_bytes(chart["content"])
        print(
            textwrap.fill(
                f"{path.name}: {chart['alt_txt']}", WIDTH, initial_indent="  ", subsequent_indent="    "
            )
        )


def _actor(user: str) -> Actor:
    name, zone = PEOPLE[user]
    return Actor("slack", "T1", user, name, zone)
