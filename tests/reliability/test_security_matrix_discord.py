"""The security matrix, Discord half: every (role × action) pair of docs/authorization.md, driven through
the real discord.py client on SimCord — slash commands, button clicks and modal submissions.

Each row of BUTTON_ROWS / SLASH_ROWS is one action taken from one state; each column is one
role. A cell is OK (the action succeeds: the right reply, the right change in the database) or
the refusal the clicker must see: an ephemeral reply with exactly that text, no form opened
where the adapter checks before the form, NOTHING changed (requests, sessions, notifications,
availability and feed posts are compared before and after) and nothing written to Discord
besides the reply.

Roles (people from tests/discord/conftest.py's `world`):
- student: Sam, who made the request;           - other_student: Ola (no mentor role);
- claimer: Mia, the mentor who claimed it (in the open/expired states: simply a mentor);
- other_mentor: Max (holds the mentor role);     - admin: Ada (Administrator, no mentor role);
- outsider: Eve, not in the home server at all: Administrator and holder of a role *named*
  "Mentor" in another server the bot is also in (commands are synced globally, so she can run
  them there). For buttons she also clicks from a DM with the bot (outsider_dm), where the
  adapter resolves her against the request's server and finds no member.

Refusals all act on one state (they change nothing, which is asserted); every role the table
allows then acts on a fresh copy of that state (a new request taken through the same steps), so
each success stands alone. Successes click the real surface (the feed card, or the person's own
DM) when it carries the button; refusals click the card or a copy of the button posted where the
role can click it (server-side checks must not depend on where a button is).

The changes from either side of a booked session are rows too: Ask to reschedule (Sam's
scheduled DM), Keep the time and Propose new times (Mia's DM with the ask: state "asked") and
Can't make it (both people's 24-hour reminder: state "reminded"). The daily digest's Claim
buttons carry the card's custom id (`mm:claim:<request>`) and reach the same handler, so the
claim rows cover them; the shared conversation (a private thread) has no buttons, so it has no
row.

SQLite only: the core's own authz tests cover both engines; this file is about the adapter.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord
from simcord.builders import ChannelHandle, UserHandle
from simcord.results import InteractionResult
from sqlalchemy import select

from bot.config import Settings
from bot.domain import RequestView, SessionStatus, Status
from bot.messages import Action, Button
from modals.discord import button_view
from storage import repository as repo
from storage.models import (
    AvailabilityWindow,
    Conversation,
    FeedPost,
    Member,
    MentorProfile,
    MentorSession,
    MentorSkill,
    Notification,
    Proposal,
    Request,
    RescheduleAsk,
)
from tests.conftest import make_settings
from tests.discord import conftest as discord_conftest
from tests.discord.conftest import World, modal_fields, planted_button, request_values

# The real bot on SimCord, and the home server's people (tests/discord/conftest.py).
simcord_bot = discord_conftest.simcord_bot
world = discord_conftest.world

# Roles ---------------------------------------------------------------------------------------

STUDENT, OTHER_STUDENT, CLAIMER, OTHER_MENTOR, ADMIN, OUTSIDER, OUTSIDER_DM = ROLES = (
    "student",
    "other_student",
    "claimer",
    "other_mentor",
    "admin",
    "outsider",
    "outsider_dm",
)

# Outcomes: OK, or the exact (ephemeral) text the role is refused with ------------------------

OK = "ok"
NA = None  # not applicable: the slash commands are server-only (guild_only), so no DM column
NOT_MENTOR = "Only mentors can do that. Ask an admin if you'd like to mentor."
NOT_CLAIMER = "Only Mia Mentor, who claimed this request, can do that."
NOT_STUDENT = "Only the student who made this request can do that."
NOT_PARTICIPANT = "Only the student and the mentor of this session can do that."
NOT_ADMIN = "Only admins can see stats."
NOT_FOUND = "I couldn't find that request."  # another server's request does not exist there
NOT_HOME = "This server isn't set up for Mini Mentorship."
ALREADY_YOURS = "You've already claimed this request."
TAKEN = "Already claimed by Mia Mentor."
# Answered, but with the outsider's own server's (empty) figures: nothing of the home server.
OWN_SERVER_ONLY = OWN = "own server only"

M, C, S, F, A, P = NOT_MENTOR, NOT_CLAIMER, NOT_STUDENT, NOT_FOUND, NOT_ADMIN, NOT_PARTICIPANT


@dataclass(frozen=True)
class Row:
    action: str
    state: str
    cells: tuple[str | None, ...]  # one per role, in ROLES order

    def __post_init__(self) -> None:
        assert len(self.cells) == len(ROLES), self

    @property
    def id(self) -> str:
        return f"{self.action}@{self.state}"

    def expect(self, role: str) -> str | None:
        return self.cells[ROLES.index(role)]


# fmt: off
BUTTON_ROWS = [
    #   action            state        student other_st claimer        other_m admin outsider outsider_dm
    Row("claim",          "open",      (M,      M,       OK,            OK,     M,    F,       M)),
    Row("claim",          "claimed",   (M,      M,       ALREADY_YOURS, TAKEN,  M,    F,       M)),
    Row("release",        "claimed",   (C,      C,       OK,            C,      C,    F,       C)),
    Row("release",        "scheduled", (C,      C,       OK,            C,      C,    F,       C)),
    Row("schedule",       "claimed",   (C,      C,       OK,            C,      C,    F,       C)),
    Row("reschedule",     "scheduled", (C,      C,       OK,            C,      C,    F,       C)),
    Row("cancel_session", "scheduled", (C,      C,       OK,            C,      C,    F,       C)),
    Row("complete",       "started",   (C,      C,       OK,            C,      C,    F,       C)),
    Row("no_show",        "started",   (C,      C,       OK,            C,      C,    F,       C)),
    Row("cancel",         "open",      (OK,     S,       S,             S,      S,    F,       S)),
    Row("cancel",         "claimed",   (OK,     S,       S,             S,      S,    F,       S)),
    Row("cancel",         "scheduled", (OK,     S,       S,             S,      S,    F,       S)),
    Row("rate",           "completed", (OK,     S,       S,             S,      S,    F,       S)),
    Row("review",         "completed", (OK,     S,       S,             S,      S,    F,       S)),
    Row("repost",         "expired",   (OK,     S,       S,             S,      S,    F,       S)),
    Row("ask_reschedule", "scheduled", (OK,     S,       S,             S,      S,    F,       S)),
    Row("keep_time",      "asked",     (C,      C,       OK,            C,      C,    F,       C)),
    Row("ask_propose",    "asked",     (C,      C,       OK,            C,      C,    F,       C)),
    Row("cant_make_it",   "reminded",  (OK,     P,       OK,            P,      P,    F,       P)),
]
SLASH_ROWS = [
    Row("create",         "open",      (OK,     OK,      OK,            OK,     OK,   NOT_HOME, NA)),
    Row("stats",          "open",      (A,      A,       A,             A,      OK,   OWN,     NA)),
    Row("availability",   "open",      (M,      M,       OK,            OK,     M,    M,       NA)),
    Row("profile",        "open",      (M,      M,       OK,            OK,     M,    M,       NA)),
]
# fmt: on

# The button behind each action, and what a form asks for once it opens.
BUTTONS = {
    "claim": Action.CLAIM,
    "release": Action.RELEASE,
    "schedule": Action.SCHEDULE,
    "reschedule": Action.RESCHEDULE,
    "cancel_session": Action.CANCEL_SESSION,
    "complete": Action.COMPLETE,
    "no_show": Action.NO_SHOW,
    "cancel": Action.CANCEL,
    "rate": Action.RATE,
    "review": Action.REVIEW,
    "repost": Action.REPOST,
    "ask_reschedule": Action.ASK_RESCHEDULE,
    "keep_time": Action.KEEP_TIME,
    "ask_propose": Action.ASK_PROPOSE,
    "cant_make_it": Action.CANT_MAKE_IT,
}
# Buttons whose value names the live session and its version, or the student's ask.
SESSION_BUTTONS = {Action.ASK_RESCHEDULE, Action.CANT_MAKE_IT}
ASK_BUTTONS = {Action.KEEP_TIME, Action.ASK_PROPOSE}
STARS = 4
REVIEW = "Clear and kind, thank you!"
WINDOWS = "Tue 18:00-20:00"
REASON = "A clash at work"
# Forms the adapter only opens for someone allowed to submit them (the review form, Ask to
# reschedule and Can't make it open for anyone who has the button and are checked when submitted).
CHECKED_BEFORE_FORM = {"schedule", "reschedule", "create", "availability", "ask_propose", "profile"}
SUCCESS_REPLY = {
    "claim": "You claimed request #{rid}. Next, **Propose times** or **Schedule directly**.",
    "release": "You released request #{rid}; it's back in the mentors' feed.",
    "schedule": "Scheduled request #{rid} for <t:{ts}:F>",
    "reschedule": "Scheduled request #{rid} for <t:{ts}:F>",
    "cancel_session": "The session for request #{rid} is cancelled.",
    "complete": "Request #{rid} is marked done. The student will be asked for a rating.",
    "no_show": "Recorded a no-show for request #{rid}.",
    "cancel": "Request #{rid} is cancelled.",
    "rate": "Thanks for rating your session ★★★★☆! You can add a few words too.",
    "review": "Thank you for your feedback!",
    "repost": "Posted again as request #",
    "create": "Your request #",
    "stats": "",  # the figures come as an embed and a CSV file
    "availability": f"Saved: {WINDOWS} (UTC).",
    "profile": "Saved: 0 of 4 active",
    "ask_reschedule": "Your mentor has been asked, with your reason.",
    "keep_time": "Kept the time for request #{rid}; the student has been told.",
    "ask_propose": "Sent new times for request #{rid}; the current time holds until a pick.",
    "cant_make_it": "The session is cancelled and the other person told",
}
SLOT_FORMAT = "%Y-%m-%d %H:%M"
TABLES = (
    Request,
    MentorSession,
    Notification,
    AvailabilityWindow,
    FeedPost,
    Proposal,
    RescheduleAsk,
    Conversation,
    MentorProfile,
    MentorSkill,
)


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'matrix.db'}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Every allowed role gets a fresh request of Sam's, so the cap is out of the way here;
    # test_create_is_capped_per_student puts it back to the default of 2.
    return make_settings(
        database_url, discord_token="simcord-token", default_timezone="UTC", max_open_requests_per_student=50
    )


Clicker = simcord.MemberActor | UserHandle


@dataclass
class Outcome:
    result: InteractionResult
    form_opened: bool
    http_mark: int  # env.http_requests index before the interaction
    value: dict[str, Any] = field(default_factory=dict)  # e.g. the time typed into a form

    @property
    def reply(self) -> str:
        assert self.result.response is not None, "no reply at all"
        return self.result.response.content


@dataclass
class Stage:
    """The home server's people, plus Eve in her own server, and the states a row starts from."""

    world: World
    eve: simcord.MemberActor
    elsewhere: ChannelHandle
    made: int = 0
    next_start: datetime = datetime(2030, 1, 8, 10, 0, tzinfo=UTC)

    def member(self, role: str) -> simcord.MemberActor:
        w = self.world
        people = {STUDENT: w.sam, OTHER_STUDENT: w.ola, CLAIMER: w.mia, OTHER_MENTOR: w.max, ADMIN: w.ada}
        return people.get(role, self.eve)

    # States --------------------------------------------------------------------------------

    def slot(self, lead: timedelta = timedelta(hours=2)) -> datetime:
        """A start time at least `lead` ahead, inside the student's dates, clashing with nothing
        of Mia's."""
        now = self.world.clock.now().replace(minute=0, second=0, microsecond=0)
        start = max(self.next_start, now + lead)
        self.next_start = start + timedelta(hours=1)
        return start

    async def make(self, state: str) -> int:
        """A new request of Sam's, taken to `state` the way people and the jobs would."""
        w = self.world
        self.made += 1
        rid, _ = await w.post_request(w.sam, title=f"Matrix request {self.made}")
        if state == "open":
            return rid
        if state == "expired":
            w.clock.advance(days=w.settings.request_expiry_days + 1)
            assert await w.runtime.mentorship.expire_due() >= 1
            await w.deliver()
            return await self.expect_status(rid, Status.EXPIRED)
        claimed = await w.mia.click(await w.card(rid), custom_id=f"mm:claim:{rid}")
        assert claimed.response.content.startswith("You claimed"), claimed.response.content
        await w.deliver()
        if state == "claimed":
            return rid
        # A reminded session gets its 24-hour reminder (the one with Can't make it) in the future.
        starts = self.slot(timedelta(hours=26) if state == "reminded" else timedelta(hours=2))
        shown = await w.mia.click(await w.card(rid), custom_id=f"mm:schedule:{rid}")
        done = await w.mia.submit_modal(shown, {"starts_at": starts.strftime(SLOT_FORMAT)})
        assert done.response.content.startswith("Scheduled request"), done.response.content
        await w.deliver()
        if state == "scheduled":
            return rid
        if state == "asked":  # Sam asks from his scheduled DM; Mia gets the ask with its buttons
            value = await self.button_value(Action.ASK_RESCHEDULE, rid)
            dm = next(m for m in reversed(w.dms(w.sam)) if has_button(m, f"mm:ask_reschedule:{value}"))
            form = await w.sam.user.click(dm, custom_id=f"mm:ask_reschedule:{value}")
            asked = await w.sam.user.submit_modal(form, {"reason": REASON})
            assert asked.response.content.startswith(SUCCESS_REPLY["ask_reschedule"]), asked.response
            await w.deliver()
            return rid
        if state == "reminded":
            w.clock.set(starts - timedelta(hours=24) + timedelta(minutes=1))
            await w.deliver()
            value = await self.button_value(Action.CANT_MAKE_IT, rid)
            for person in (w.sam, w.mia):
                assert has_button(w.last_dm(person), f"mm:cant_make_it:{value}"), "no 24-hour reminder"
            return rid
        w.clock.set(starts + timedelta(minutes=5))  # the session is under way
        await w.deliver()
        if state == "started":
            return rid
        assert state == "completed", state
        w.clock.set(starts + timedelta(minutes=30 + 11))  # ended, plus the sweep's grace
        assert await w.runtime.mentorship.complete_due() >= 1
        await w.deliver()
        return await self.expect_status(rid, Status.COMPLETED)

    async def view(self, rid: int) -> RequestView:
        async with self.world.runtime.db.transaction() as session:
            view = await repo.request_view(session, rid)
        assert view is not None
        return view

    async def expect_status(self, rid: int, status: Status) -> int:
        assert (await self.view(rid)).status is status
        return rid

    async def latest_ask(self, rid: int) -> RescheduleAsk | None:
        async with self.world.runtime.db.transaction() as session:
            ask: RescheduleAsk | None = await session.scalar(
                select(RescheduleAsk).where(RescheduleAsk.request_id == rid).order_by(RescheduleAsk.id.desc())
            )
            return ask

    async def button_value(self, action: Action, rid: int) -> str:
        """The value the bot puts on `action`'s button for request `rid`."""
        if action is Action.RATE:
            return f"{rid}:{STARS}"
        if action in SESSION_BUTTONS:
            live = (await self.view(rid)).session
            assert live is not None
            return f"{rid}:{live.id}:{live.schedule_version}"
        if action in ASK_BUTTONS:
            ask = await self.latest_ask(rid)
            assert ask is not None
            return f"{rid}:{ask.id}"
        return str(rid)

    # Where each role clicks ----------------------------------------------------------------

    async def button(self, role: str, action: Action, value: str) -> tuple[Clicker, discord.Message]:
        custom_id = f"mm:{action.value}:{value}"
        who = self.member(role)
        view = button_view([Button("Go", action, value)])
        if role == OUTSIDER:  # a copy of the button in her own server
            channel = self.world.env.bot.get_channel(self.elsewhere.id)
            assert isinstance(channel, discord.TextChannel)
            message = await channel.send("Buttons", view=view)
            await self.world.env.settle()
            return who, message
        if role == OUTSIDER_DM:  # a copy of the button in her DM with the bot
            user = await self.world.env.bot.fetch_user(who.id)
            message = await user.send("Buttons", view=view)
            await self.world.env.settle()
            return who.user, message
        card = await self.world.card(int(value.split(":")[0]))
        if has_button(card, custom_id):
            return who, card
        for message in reversed(self.world.dms(who)):
            if has_button(message, custom_id):
                return who.user, message
        return who, await planted_button(self.world, action, value, "Go")

    # Acting ----------------------------------------------------------------------------------

    async def press(self, role: str, action: str, rid: int) -> Outcome:
        button = BUTTONS[action]
        value = await self.button_value(button, rid)
        clicker, message = await self.button(role, button, value)
        mark = len(self.world.env.http_requests)
        result = await clicker.click(message, custom_id=f"mm:{button.value}:{value}")
        outcome = Outcome(result, result.modal is not None, mark)
        if result.modal is not None:
            if action == "review":
                values: dict[str, Any] = {"rating": [str(STARS)], "review": REVIEW}
            elif button in SESSION_BUTTONS:
                values = {"reason": f"{REASON}, says {role}"}
            elif button is Action.ASK_PROPOSE:
                starts = self.slot()
                outcome.value["starts_at"] = starts
                values = {"time_1": starts.strftime(SLOT_FORMAT)}
            else:
                starts = self.slot()
                outcome.value["starts_at"] = starts
                values = {"starts_at": starts.strftime(SLOT_FORMAT)}
            outcome.result = await clicker.submit_modal(result, values)
        return outcome

    async def slash(self, role: str, action: str) -> Outcome:
        who = self.member(role)
        channel = self.elsewhere if role == OUTSIDER else self.world.lobby
        mark = len(self.world.env.http_requests)
        values: dict[str, Any] = {}
        if action == "create":
            result = await who.slash(channel, "mini-session request", session_type="interview_prep")
            if result.modal is not None:
                prefilled = modal_fields(result.modal)
                dates = {k: str(prefilled[k]["value"]) for k in ("available_from", "available_until")}
                values = request_values(title=f"Created by {role}", **dates)
        elif action == "availability":
            result = await who.slash(channel, "mini-session availability")
            values = {"windows": WINDOWS, "timezone": "UTC"}
        elif action == "profile":
            result = await who.slash(channel, "mini-session profile")
            values = {"skills": f"matrix, {role}", "capacity": "4", "away_until": ""}
        else:
            result = await who.slash(channel, f"mini-session {action}")
        outcome = Outcome(result, result.modal is not None, mark)
        if result.modal is not None:
            outcome.result = await who.submit_modal(result, values)
        return outcome

    # Checking --------------------------------------------------------------------------------

    async def refused(self, outcome: Outcome, expected: str, before: Snapshot, *, no_form: bool) -> None:
        response = outcome.result.response
        assert response is not None, "no reply at all"
        assert response.content == expected
        assert response.ephemeral, "a refusal is for the clicker's eyes only"
        if no_form:
            assert not outcome.form_opened, "a form opened for someone who may not submit it"
        assert await snapshot(self.world) == before, "a refusal changed the database"
        assert discord_writes(self.world.env, outcome.http_mark) == []

    async def succeeded(self, outcome: Outcome, role: str, action: str, rid: int) -> None:
        """The reply the table promises, and the change in the database that goes with it."""
        response = outcome.result.response
        assert response is not None, "no reply at all"
        assert response.ephemeral
        starts: datetime | None = outcome.value.get("starts_at")
        ts = int(starts.timestamp()) if starts else 0
        assert outcome.reply.startswith(SUCCESS_REPLY[action].format(rid=rid, ts=ts)), outcome.reply
        who = str(self.member(role).id)
        if action in ("create", "stats", "availability", "profile"):
            return await self.slash_effect(outcome, role, action)
        if action == "repost":
            rid = int(outcome.reply.split("#", 1)[1].split(".", 1)[0])
            view = await self.view(rid)
            assert (view.status, view.student.external_id) == (Status.OPEN, who)
            return
        view = await self.view(rid)
        session = view.session
        claimer = view.claimed_by.external_id if view.claimed_by else None
        if action == "claim":
            assert (view.status, claimer) == (Status.CLAIMED, who)
        elif action == "release":
            assert (view.status, claimer) == (Status.OPEN, None)
            assert session is None or session.status is SessionStatus.CANCELLED
        elif action in ("schedule", "reschedule"):
            assert view.status is Status.SCHEDULED and session is not None
            assert (session.starts_at, session.mentor.external_id) == (starts, who)
            assert session.schedule_version == (2 if action == "reschedule" else 1)
        elif action == "cancel_session":
            assert (view.status, claimer) == (Status.CLAIMED, who)
            assert session is not None and session.status is SessionStatus.CANCELLED
        elif action in ("complete", "no_show"):
            outcome_status = SessionStatus.COMPLETED if action == "complete" else SessionStatus.NO_SHOW
            assert view.status is Status.COMPLETED
            assert session is not None and session.status is outcome_status
        elif action == "cancel":
            assert view.status is Status.CANCELLED
            assert session is None or session.status is SessionStatus.CANCELLED
        elif action in ("rate", "review"):
            assert session is not None and session.rating == STARS
            assert session.review == (REVIEW if action == "review" else None)
        elif action == "ask_reschedule":
            ask = await self.latest_ask(rid)
            assert ask is not None and (ask.status, ask.reason) == ("pending", f"{REASON}, says {role}")
            assert view.status is Status.SCHEDULED and session is not None and session.schedule_version == 1
        elif action in ("keep_time", "ask_propose"):
            ask = await self.latest_ask(rid)
            assert ask is not None and ask.status == ("kept" if action == "keep_time" else "proposed")
            assert view.status is Status.SCHEDULED and session is not None and session.schedule_version == 1
            assert (view.proposal_id is not None) == (action == "ask_propose")
        elif action == "cant_make_it":
            assert (view.status, view.cancelled_by) == (
                Status.CANCELLED,
                "student" if role == STUDENT else "mentor",
            )
            assert session is not None and session.status is SessionStatus.CANCELLED
        else:  # pragma: no cover
            raise AssertionError(action)

    async def slash_effect(self, outcome: Outcome, role: str, action: str) -> None:
        who = str(self.member(role).id)
        home = str(self.world.guild.id)
        if action == "create":
            rid = int(outcome.reply.split("#", 1)[1].split(" ", 1)[0])
            view = await self.view(rid)
            assert (view.status, view.student.external_id, view.workspace) == (Status.OPEN, who, home)
        elif action == "stats":
            rows = await stats_rows(outcome.result)
            assert {row["title"] for row in rows} >= {"Matrix request 1"}
        elif action == "profile":
            async with self.world.runtime.db.transaction() as session:
                mine = await repo.find_member(session, "discord", home, who)
                assert mine is not None
                profile = await session.get(MentorProfile, mine.id)
            assert profile is not None and (profile.capacity, profile.skills) == (4, ["matrix", role])
        else:
            async with self.world.runtime.db.transaction() as session:
                mine = await repo.find_member(session, "discord", home, who)
                assert mine is not None
                windows = await repo.availability(session, mine.id)
            assert [(w.weekday, w.start, w.end) for w in windows] == [(1, "18:00", "20:00")]

    async def own_server_only(self, outcome: Outcome, before: Snapshot) -> None:
        """Stats asked for in another server: that server's figures, none of the home server's."""
        response = outcome.result.response
        assert response is not None and response.ephemeral
        embed, note = response.embeds  # the figures, and "nothing to chart" instead of charts
        assert {f.name: f.value for f in embed.fields}["Requests"] == "0"
        assert "nothing to chart" in (note.description or "")
        assert await stats_rows(outcome.result) == []
        assert await snapshot(self.world) == before
        assert discord_writes(self.world.env, outcome.http_mark) == []


@pytest.fixture
async def stage(world: World) -> Stage:
    env = world.env
    elsewhere = env.create_guild("Elsewhere")
    admins = elsewhere.create_role("Admins", permissions=discord.Permissions(administrator=True))
    lookalike = elsewhere.create_role("Mentor")  # same name as the home role, another id
    channel = elsewhere.create_text_channel("general")
    eve = elsewhere.add_member(env.create_user("eve", global_name="Eve Elsewhere"), roles=[admins, lookalike])
    await env.settle()
    return Stage(world, eve, channel)


# Helpers -------------------------------------------------------------------------------------

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(world: World) -> Snapshot:
    """Every row of the tables a use case may change."""
    out: Snapshot = {}
    async with world.runtime.db.transaction() as session:
        for model in TABLES:
            table = model.__table__
            rows = await session.execute(select(table).order_by(*table.primary_key))
            out[table.name] = [tuple(row) for row in rows.all()]
    return out


def discord_writes(env: simcord.Env, mark: int) -> list[str]:
    """What the bot changed on Discord since `mark`, other than answering the interaction."""
    return [
        f"{r.method} {r.path}"
        for r in env.http_requests[mark:]
        if r.method != "GET" and not r.path.startswith(("/interactions/", "/webhooks/"))
    ]


def has_button(message: discord.Message, custom_id: str) -> bool:
    return any(
        getattr(item, "custom_id", None) == custom_id for row in message.components for item in row.children
    )


async def stats_rows(result: InteractionResult) -> list[dict[str, str]]:
    """The stats reply's CSV, one dict per request; the charts after it each show an attachment
    of the same reply (or one embed says there is nothing to chart)."""
    response = result.response
    assert response is not None
    embed, *charts = response.embeds
    assert embed.title == "Mini Mentorship — stats"
    attachment, summary, *pngs = response.attachments
    assert attachment.filename == "mini-mentorship-stats.csv"
    assert summary.filename == "mini-mentorship-summary.csv"
    if pngs:
        assert [c.image.url for c in charts] == [f"attachment://{p.filename}" for p in pngs]
    else:
        [note] = charts
        assert "nothing to chart" in (note.description or "")
    return list(csv.DictReader(io.StringIO((await attachment.read()).decode())))


# The matrix ----------------------------------------------------------------------------------


def order(row: Row) -> list[str]:
    """Refusals first, all on the same state; then each allowed role on a fresh one."""
    roles = [role for role in ROLES if row.expect(role) is not NA]
    return sorted(roles, key=lambda role: row.expect(role) == OK)


@pytest.mark.parametrize("row", BUTTON_ROWS, ids=lambda row: row.id)
async def test_buttons_and_forms(stage: Stage, row: Row, subtests: pytest.Subtests) -> None:
    rid = await stage.make(row.state)
    fresh = False
    for role in order(row):
        expected = row.expect(role)
        assert expected is not None
        if expected == OK and fresh:
            rid = await stage.make(row.state)
        with subtests.test(role=role, expected=expected):
            before = await snapshot(stage.world)
            outcome = await stage.press(role, row.action, rid)
            if expected == OK:
                await stage.succeeded(outcome, role, row.action, rid)
            else:
                await stage.refused(outcome, expected, before, no_form=row.action in CHECKED_BEFORE_FORM)
        fresh = fresh or expected == OK
    stage.world.env.raise_errors()


@pytest.mark.parametrize("row", SLASH_ROWS, ids=lambda row: row.id)
async def test_slash_commands(stage: Stage, row: Row, subtests: pytest.Subtests) -> None:
    await stage.make(row.state)  # something in the home server to see (or not)
    for role in order(row):
        expected = row.expect(role)
        assert expected is not None
        with subtests.test(role=role, expected=expected):
            before = await snapshot(stage.world)
            outcome = await stage.slash(role, row.action)
            if expected == OK:
                await stage.succeeded(outcome, role, row.action, 0)
            elif expected == OWN_SERVER_ONLY:
                await stage.own_server_only(outcome, before)
            else:
                await stage.refused(outcome, expected, before, no_form=row.action in CHECKED_BEFORE_FORM)
    stage.world.env.raise_errors()


# View / list -----------------------------------------------------------------------------------

# `/mini-session list` with two requests of Sam's: one "open", one "claimed" by Mia. Which of
# them each role is shown, and the buttons offered with them (action:which). Discord has no
# per-request "view" surface besides this dashboard and the feed card (whose channel's visibility
# is Discord's business), so admins without the mentor role see only their own requests.
# fmt: off
LISTED = {
    STUDENT:       ({"open", "claimed"}, {"cancel:open", "cancel:claimed"}),
    OTHER_STUDENT: (set(),               set()),
    CLAIMER:       ({"open", "claimed"}, {"claim:open", "schedule:claimed", "release:claimed"}),
    OTHER_MENTOR:  ({"open"},            {"claim:open"}),
    ADMIN:         (set(),               set()),
    OUTSIDER:      (set(),               set()),
}
# fmt: on


async def test_list_shows_each_role_only_what_it_may_see(stage: Stage, subtests: pytest.Subtests) -> None:
    rids = {"open": await stage.make("open"), "claimed": await stage.make("claimed")}
    titles = {name: f"**{(await stage.view(rid)).title}**" for name, rid in rids.items()}
    for role, (shown, buttons) in LISTED.items():
        with subtests.test(role=role):
            before = await snapshot(stage.world)
            outcome = await stage.slash(role, "list")
            response = outcome.result.response
            assert response is not None and response.ephemeral
            text = "\n".join(embed.description or "" for embed in response.embeds)
            assert {name for name, title in titles.items() if title in text} == shown
            offered = {
                f"{action}:{name}"
                for row in response.message.components
                for item in row.children
                for name, rid in rids.items()
                for action in ("claim", "release", "schedule", "cancel")
                if getattr(item, "custom_id", None) == f"mm:{action}:{rid}"
            }
            assert offered == buttons
            assert await snapshot(stage.world) == before
            assert discord_writes(stage.world.env, outcome.http_mark) == []
    stage.world.env.raise_errors()


# The edges of the table --------------------------------------------------------------------------


async def test_slash_commands_are_server_only(stage: Stage) -> None:
    """Why the slash rows have no DM column: the group is guild_only, so Discord offers none of
    its commands in a DM, to members and outsiders alike."""
    for user in (stage.world.sam.user, stage.world.ada.user, stage.eve.user):
        for command in ("request", "list", "stats", "availability"):
            with pytest.raises(simcord.SetupError, match="not visible to this user here"):
                await user.slash(
                    f"mini-session {command}", **({"session_type": "other"} if command == "request" else {})
                )


async def test_create_is_capped_per_student(stage: Stage) -> None:
    """Any member may ask, up to MAX_OPEN_REQUESTS_PER_STUDENT active requests (default 2)."""
    stage.world.settings.max_open_requests_per_student = 2
    await stage.make("open")
    await stage.make("claimed")
    before = await snapshot(stage.world)
    outcome = await stage.slash(STUDENT, "create")
    expected = (
        "You already have 2 active requests. Cancel one or wait until it's done before posting another."
    )
    # Checked before the form opens (and again when it comes back): nobody fills in a form for nothing.
    await stage.refused(outcome, expected, before, no_form=True)
    other = await stage.slash(OTHER_STUDENT, "create")  # the cap is per student
    await stage.succeeded(other, OTHER_STUDENT, "create", 0)


async def test_configured_admins_get_stats_and_nothing_more(stage: Stage) -> None:
    """ADMIN_USER_IDS makes Ola an admin without any Discord permission: stats, yes; someone
    else's request, no."""
    w = stage.world
    w.settings.admin_user_ids = f"{w.ola.id}"
    rid = await stage.make("open")
    await stage.succeeded(await stage.slash(OTHER_STUDENT, "stats"), OTHER_STUDENT, "stats", rid)
    for action, expected in (("claim", NOT_MENTOR), ("cancel", NOT_STUDENT)):
        before = await snapshot(w)
        await stage.refused(await stage.press(OTHER_STUDENT, action, rid), expected, before, no_form=False)
    w.env.raise_errors()


async def test_a_form_kept_open_by_the_former_claimer_changes_nothing(stage: Stage) -> None:
    """Mia opens Reschedule, releases, Max claims; Mia's late submission is checked again, as Max's
    request now, and refused."""
    w = stage.world
    rid = await stage.make("scheduled")
    shown = await w.mia.click(await w.card(rid), custom_id=f"mm:reschedule:{rid}")
    assert shown.modal is not None
    released = await stage.press(CLAIMER, "release", rid)
    await stage.succeeded(released, CLAIMER, "release", rid)
    await w.deliver()
    claimed = await stage.press(OTHER_MENTOR, "claim", rid)
    await stage.succeeded(claimed, OTHER_MENTOR, "claim", rid)
    await w.deliver()
    before = await snapshot(w)
    mark = len(w.env.http_requests)
    late = await w.mia.submit_modal(shown, {"starts_at": stage.slot().strftime(SLOT_FORMAT)})
    expected = "Only Max Mentor, who claimed this request, can do that."
    await stage.refused(Outcome(late, False, mark), expected, before, no_form=False)
    w.env.raise_errors()


@pytest.mark.parametrize(("action", "state"), [("schedule", "claimed"), ("repost", "expired")])
async def test_refusals_do_not_record_the_refused_as_members(stage: Stage, action: str, state: str) -> None:
    w = stage.world
    rid = await stage.make(state)

    async def members() -> list[tuple[str, str]]:
        async with w.runtime.db.transaction() as session:
            rows = await session.execute(select(Member.workspace, Member.external_id).order_by(Member.id))
            return [(workspace, external_id) for workspace, external_id in rows.all()]

    before = await members()
    outcome = await stage.press(OUTSIDER_DM, action, rid)
    assert outcome.reply == (NOT_CLAIMER if action == "schedule" else NOT_STUDENT)
    assert await members() == before, "the outsider is now a member of the home workspace"


async def test_a_form_open_to_anyone_refuses_before_it_validates(stage: Stage) -> None:
    """Ask to reschedule opens for whoever has the button: a blank reason (Discord lets spaces
    through a required field) from someone refused gets the refusal, not a field error and an
    "Edit and resubmit" button for a form they may never send. (Can't make it's reason is
    optional, and Discord itself keeps it under its length.)"""
    w = stage.world
    rid = await stage.make("scheduled")
    value = await stage.button_value(Action.ASK_RESCHEDULE, rid)
    clicker, message = await stage.button(OTHER_STUDENT, Action.ASK_RESCHEDULE, value)
    form = await clicker.click(message, custom_id=f"mm:ask_reschedule:{value}")
    assert form.modal is not None
    before = await snapshot(w)
    mark = len(w.env.http_requests)
    submitted = await clicker.submit_modal(form, {"reason": " "})
    await stage.refused(Outcome(submitted, False, mark), NOT_STUDENT, before, no_form=False)
    assert not submitted.response.message.components  # no "Edit and resubmit"
    w.env.raise_errors()
