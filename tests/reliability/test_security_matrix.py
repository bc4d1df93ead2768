"""The authorization table of docs/authorization.md, on Slack: every role × action, driven through signed
HTTP into the Slack app. An allowed pair must do what it says; a refused one must answer with a
short ephemeral explanation (or the refusal in place of the form) and change nothing at all in
the database.

Roles, for each request: its student, another student, the mentor who claimed it, another mentor,
a workspace admin, and an outsider from another workspace (T2) who is an admin there and a member
of our mentors' channel (a Slack Connect shared channel), so only the workspace check stands in
their way: it refuses them everything, politely, before anything is read or written. Mentors
are members of the mentors' channel; the admin is a workspace admin (users.info), not a mentor.

"view" is the gate on a request's full details (Act.VIEW): the one Slack surface that asks for a
request by id is its "Write a review" button, which answers "Only the student who asked, mentors
and admins can see this request." (or, elsewhere, "I couldn't find that request.") before
anything else; the dashboards and the stats CSV must not show the request to those refused.

The changes from either side of a booked session: Ask to reschedule (the student's; from the
scheduled DM), Keep the time and Propose new times (the claiming mentor's answer to an ask) and
Can't make it (either person's, from the 24-hour reminder); the buttons are clicked in the
mentors' channel here, as the checks are the server's and do not depend on where a button is.
Each form is also submitted, forged, by those refused. The daily digest's Claim buttons are the
card's Claim (action id `mm_claim`, the later ones `mm_claim.2`… by the same handler), so the
claim row covers them; the shared conversation (a group DM of student, mentor and the bot) has
no buttons of its own, so nothing to add for it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import Table, select

from bot.clock import ManualClock
from bot.domain import Actor, Ok
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
from tests.conftest import request_form
from tests.slack.conftest import MakeSlack
from tests.slack.harness import (
    ADMIN,
    MENTOR,
    MENTOR_2,
    MENTORS,
    OTHER,
    REQUEST_VALUES,
    STUDENT,
    Answer,
    SlackHarness,
)

OUTSIDER = "UOUTSIDER"


@dataclass(frozen=True)
class Role:
    name: str
    team: str
    user: str


ROLES = [
    Role("student", "T1", STUDENT),
    Role("other student", "T1", OTHER),
    Role("claiming mentor", "T1", MENTOR),
    Role("other mentor", "T1", MENTOR_2),
    Role("admin", "T1", ADMIN),
    Role("outsider", "T2", OUTSIDER),
]
EVERYONE = frozenset(r.name for r in ROLES)
MENTORS_ONLY = frozenset({"claiming mentor", "other mentor"})
CLAIMER = frozenset({"claiming mentor"})
STUDENT_ONLY = frozenset({"student"})
PARTICIPANTS = frozenset({"student", "claiming mentor"})

# Who may, per docs/authorization.md (and the state the request is in when they try).
MATRIX: dict[str, tuple[str, frozenset[str]]] = {
    "create": ("none", EVERYONE - {"outsider"}),
    "view": ("claimed", frozenset({"student", "claiming mentor", "other mentor", "admin"})),
    "claim": ("open", MENTORS_ONLY),
    "release": ("claimed", CLAIMER),
    "schedule": ("claimed", CLAIMER),
    "reschedule": ("scheduled", CLAIMER),
    "mark done": ("started", CLAIMER),
    "no-show": ("started", CLAIMER),
    "cancel": ("claimed", STUDENT_ONLY),
    "rate": ("completed", STUDENT_ONLY),
    "stats": ("open", frozenset({"admin"})),
    "ask to reschedule": ("scheduled", STUDENT_ONLY),
    "keep the time": ("asked", CLAIMER),
    "propose new times": ("asked", CLAIMER),
    "can't make it": ("reminded", PARTICIPANTS),
    "profile": ("open", MENTORS_ONLY),
}

# Where each role's own dashboards show "their" claimed request. The other mentor sees it in the
# mentors' channel (the card) rather than on a dashboard of theirs; the admin in the stats CSV.
SEEN = {
    "student": ["list"],
    "other student": [],
    "claiming mentor": ["list"],
    "other mentor": [],
    "admin": ["csv"],
    "outsider": [],
}
NOT_FOUND = "I couldn't find that request."
REFUSAL_FOR = {
    "view": "Only the student who asked, mentors and admins can see this request.",
    "claim": "Only mentors can do that.",
    "release": "who claimed this request, can do that.",
    "schedule": "who claimed this request, can do that.",
    "reschedule": "who claimed this request, can do that.",
    "mark done": "who claimed this request, can do that.",
    "no-show": "who claimed this request, can do that.",
    "cancel": "Only the student who made this request can do that.",
    "rate": "Only the student who made this request can do that.",
    "stats": "Only admins can see stats.",
    "ask to reschedule": "Only the student who made this request can do that.",
    "keep the time": "who claimed this request, can do that.",
    "propose new times": "who claimed this request, can do that.",
    "can't make it": "Only the student and the mentor of this session can do that.",
    "profile": "Only mentors can do that.",
}
# Actions with a form: refused on the click (or command) and on a forged submission of the form
# the person allowed was given.
WITH_FORM = {
    "create",
    "schedule",
    "reschedule",
    "ask to reschedule",
    "propose new times",
    "can't make it",
    "profile",
}

STUDENT_ACTOR = Actor("slack", "T1", STUDENT, "Sam Student", "Europe/Berlin")
MENTOR_ACTOR = Actor("slack", "T1", MENTOR, "Mia Mentor", "America/New_York", is_mentor=True)
AFTER_STARTS = datetime(2030, 1, 9, 2, 0, tzinfo=UTC)  # every session of the setup has started
NEW_TIME = str(int(datetime(2030, 1, 10, 16, 0, tzinfo=UTC).timestamp()))  # free in everyone's week
# Every session's 24-hour reminder (the one with "Can't make it") is out; none has started.
REMINDED = datetime(2030, 1, 7, 19, 30, tzinfo=UTC)


# Driving Slack as a role ------------------------------------------------------------------------


def as_role(payload: dict[str, Any], role: Role) -> dict[str, Any]:
    """A payload built for our workspace, sent from the role's workspace instead."""
    payload["team"] = {"id": role.team, "domain": "x"}
    payload["user"]["team_id"] = role.team
    return payload


async def command(slack: SlackHarness, role: Role, text: str = "") -> Answer:
    body = {**slack.command_body(role.user, text), "team_id": role.team}
    answer = await slack.post(urlencode(body).encode(), "application/x-www-form-urlencoded")
    answer.sent = dict(body)
    return answer


def button(action_id: str, value: str) -> dict[str, Any]:
    return {"action_id": action_id, "text": {"type": "plain_text", "text": "x"}, "value": value}


async def click(slack: SlackHarness, role: Role, action_id: str, value: str) -> Answer:
    payload = slack.click_payload(role.user, button(action_id, value), channel=MENTORS)
    return await slack.interact(as_role(payload, role))


async def submit(
    slack: SlackHarness, role: Role, view: dict[str, Any], values: dict[str, str | None]
) -> Answer:
    return await slack.interact(as_role(slack.submission(role.user, view, values), role))


def opened(slack: SlackHarness, answer: Answer, callback_id: str) -> dict[str, Any] | None:
    """The modal this interaction opened (its trigger_id was used), if any; the newest view with
    `callback_id`, as interactions here run one at a time."""
    assert answer.sent is not None
    trigger = answer.sent["trigger_id"]
    calls = [c for c in slack.fake.calls_to("views.open") if c.ok and c.args.get("trigger_id") == trigger]
    return slack.latest_view(callback_id) if calls else None


# The database -----------------------------------------------------------------------------------


async def everything(slack: SlackHarness) -> list[Any]:
    """Every row of every table a use case writes, all columns: a refusal must leave it alone."""
    async with slack.runtime.db.transaction() as session:
        rows = []
        for model in (
            Member,
            Request,
            MentorSession,
            AvailabilityWindow,
            FeedPost,
            Notification,
            Proposal,
            RescheduleAsk,
            Conversation,
            MentorProfile,
            MentorSkill,
        ):
            table = model.__table__
            assert isinstance(table, Table)
            rows.append((await session.execute(select(table).order_by(*table.primary_key))).all())
        return rows


async def request_row(
    slack: SlackHarness, request_id: int
) -> tuple[Request, MentorSession | None, str | None]:
    async with slack.runtime.db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        latest = await session.scalar(
            select(MentorSession)
            .where(MentorSession.request_id == request_id)
            .order_by(MentorSession.id.desc())
        )
        claimer = await session.get(Member, request.claimed_by_id) if request.claimed_by_id else None
        return request, latest, claimer.external_id if claimer else None


async def latest_ask(slack: SlackHarness, request_id: int) -> RescheduleAsk | None:
    async with slack.runtime.db.transaction() as session:
        ask: RescheduleAsk | None = await session.scalar(
            select(RescheduleAsk)
            .where(RescheduleAsk.request_id == request_id)
            .order_by(RescheduleAsk.id.desc())
        )
        return ask


async def session_value(slack: SlackHarness, request_id: int) -> str:
    """The value of Ask to reschedule / Can't make it: request, session and its version."""
    _, meeting, _ = await request_row(slack, request_id)
    assert meeting is not None
    return f"{request_id}:{meeting.id}:{meeting.schedule_version}"


async def ask_value(slack: SlackHarness, request_id: int) -> str:
    """The value of Keep the time / Propose new times: request and the student's ask."""
    ask = await latest_ask(slack, request_id)
    assert ask is not None
    return f"{request_id}:{ask.id}"


# Setting the scene (through the core: the subject here is the Slack side) --------------------------


async def prepare(slack: SlackHarness, clock: ManualClock, state: str) -> list[int]:
    """One request per role, each in `state` (a request's role players are the same people)."""
    if state == "none":
        return [0] * len(ROLES)
    m = slack.runtime.mentorship
    ids: list[int] = []
    # One mentor claims every request: room for all of them (the default capacity is 3).
    assert isinstance(await m.save_profile(MENTOR_ACTOR, {"skills": "", "capacity": "10"}), Ok)
    # Newest first on dashboards (which show five): the student's own request is made last.
    for index, role in reversed(list(enumerate(ROLES))):
        created = await m.create_request(STUDENT_ACTOR, request_form(title=f"Request for the {role.name}"))
        assert isinstance(created, Ok), created
        rid = created.value.id
        ids.append(rid)
        if state == "open":
            continue
        assert isinstance(await m.claim(MENTOR_ACTOR, rid), Ok)
        if state == "claimed":
            continue
        # scheduled, and also: asked, reminded, started, completed
        when = f"2030-01-08 {9 + index:02d}:00"  # New York time; one hour apart
        assert isinstance(await m.schedule(MENTOR_ACTOR, rid, {"starts_at": when}), Ok)
    ids.reverse()
    if state == "asked":  # each request's student asks to move it
        for rid in ids:
            _, meeting, _ = await request_row(slack, rid)
            assert meeting is not None
            values = {"reason": "A clash at work"}
            asked = await m.ask_reschedule(STUDENT_ACTOR, rid, meeting.id, meeting.schedule_version, values)
            assert isinstance(asked, Ok), asked
    if state == "reminded":
        clock.set(REMINDED)
    if state in ("started", "completed"):
        clock.set(AFTER_STARTS)
    if state == "completed":
        for rid in ids:
            assert isinstance(await m.complete(MENTOR_ACTOR, rid), Ok)
    await slack.settle()
    # The two people of the setup as Slack describes them (names, zones), so that what their
    # first click records about them is not mistaken for a change made by someone else.
    for user in (STUDENT, MENTOR):
        await slack.command(user, "list")
    await slack.settle()
    return ids


# Doing each action as a role: returns what the person was told --------------------------------------

Act = Callable[[SlackHarness, Role, int], Awaitable[str]]


async def told(slack: SlackHarness, answer: Answer) -> str:
    assert answer.status == 200, answer
    await slack.settle()
    return slack.reply_text(answer)


async def do_create(slack: SlackHarness, role: Role, _: int) -> str:
    answer = await command(slack, role)
    await slack.settle()
    view = opened(slack, answer, "mm_request")
    title = f"Asked by the {role.name}"
    if view is None:  # refused on the command: then a form opened by someone else, forged as theirs
        reply = await told(slack, answer)
        student = await command(slack, ROLES[0])
        await slack.settle()
        form = opened(slack, student, "mm_request")
        assert form is not None, "the request form did not open"
        forged = await submit(slack, role, form, {**REQUEST_VALUES, "title": title})
        assert forged.status == 200 and forged.json()["response_action"] == "update", forged
        return reply + "\n" + json.dumps(forged.json())
    answer = await submit(slack, role, view, {**REQUEST_VALUES, "title": title})
    assert (answer.status, answer.text) == (200, ""), answer  # an empty answer closes the form
    await slack.settle()
    return f"created {title}"


async def do_view(slack: SlackHarness, role: Role, rid: int) -> str:
    """The VIEW gate: the review button asks for the request before anything else."""
    return await told(slack, await click(slack, role, "mm_review", str(rid)))


async def where_seen(slack: SlackHarness, role: Role) -> list[str]:
    """Where the role's own dashboards (`list`, `stats` and its CSV) show the request."""
    listing = await told(slack, await command(slack, role, "list"))
    files = len(slack.fake.files)
    stats = await told(slack, await command(slack, role, "stats"))
    csv = b"".join(f["content"] for f in slack.fake.files[files:])
    title = f"Request for the {role.name}"
    seen = [where for where, text in (("list", listing), ("stats", stats)) if title in text]
    return [*seen, "csv"] if title.encode() in csv else seen


async def do_claim(slack: SlackHarness, role: Role, rid: int) -> str:
    return await told(slack, await click(slack, role, "mm_claim", str(rid)))


async def do_release(slack: SlackHarness, role: Role, rid: int) -> str:
    return await told(slack, await click(slack, role, "mm_release", str(rid)))


async def form_as(
    slack: SlackHarness,
    role: Role,
    action_id: str,
    value: str,
    callback_id: str,
    values: dict[str, str | None],
    owner: Role = ROLES[2],
) -> str:
    """The role clicks the button (a modal opens, or a refusal), and also submits the form
    `owner` (the claiming mentor, unless said) was given: a forged submission must be refused
    just the same."""
    answer = await click(slack, role, action_id, value)
    reply = await told(slack, answer)
    own = opened(slack, answer, callback_id)
    if own is None:
        allowed = await click(slack, owner, action_id, value)
        await slack.settle()
        form = opened(slack, allowed, callback_id)
        assert form is not None
    else:
        form = own
    answer = await submit(slack, role, form, values)
    assert answer.status == 200
    await slack.settle()
    if answer.text:
        body = answer.json()
        assert body["response_action"] in ("update", "errors"), body
        reply += "\n" + json.dumps(body)
    return reply + ("\nFORM OPENED" if own is not None else "")


async def do_schedule(slack: SlackHarness, role: Role, rid: int) -> str:
    return await form_as(slack, role, "mm_schedule", str(rid), "mm_schedule", {"starts_at": NEW_TIME})


async def do_reschedule(slack: SlackHarness, role: Role, rid: int) -> str:
    return await form_as(slack, role, "mm_reschedule", str(rid), "mm_schedule", {"starts_at": NEW_TIME})


async def do_complete(slack: SlackHarness, role: Role, rid: int) -> str:
    return await told(slack, await click(slack, role, "mm_complete", str(rid)))


async def do_no_show(slack: SlackHarness, role: Role, rid: int) -> str:
    return await told(slack, await click(slack, role, "mm_no_show", str(rid)))


async def do_cancel(slack: SlackHarness, role: Role, rid: int) -> str:
    return await told(slack, await click(slack, role, "mm_cancel", str(rid)))


async def do_rate(slack: SlackHarness, role: Role, rid: int) -> str:
    return await told(slack, await click(slack, role, "mm_rate.5", f"{rid}:5"))


async def do_stats(slack: SlackHarness, role: Role, _: int) -> str:
    files = len(slack.fake.files)
    reply = await told(slack, await command(slack, role, "stats"))
    # The requests' CSV (the summary CSV and the charts come with it)
    csvs = [f for f in slack.fake.files[files:] if f["filename"].startswith("mentorship-stats-")]
    csv = b"".join(f["content"] for f in csvs)
    return reply + f"\nCSV {len(csvs)} {b'Request for' in csv or b'Asked by' in csv}"


async def do_ask_reschedule(slack: SlackHarness, role: Role, rid: int) -> str:
    value = await session_value(slack, rid)
    values: dict[str, str | None] = {"reason": f"Asked by the {role.name}"}
    return await form_as(slack, role, "mm_ask_reschedule", value, "mm_reschedule_ask", values, ROLES[0])


async def do_keep_time(slack: SlackHarness, role: Role, rid: int) -> str:
    return await told(slack, await click(slack, role, "mm_keep_time", await ask_value(slack, rid)))


async def do_propose_new_times(slack: SlackHarness, role: Role, rid: int) -> str:
    value = await ask_value(slack, rid)
    return await form_as(slack, role, "mm_ask_propose", value, "mm_propose", {"time_1": NEW_TIME})


async def do_cant_make_it(slack: SlackHarness, role: Role, rid: int) -> str:
    value = await session_value(slack, rid)
    values: dict[str, str | None] = {"reason": f"Called off by the {role.name}"}
    return await form_as(slack, role, "mm_cant_make_it", value, "mm_cant_make_it", values)


async def do_profile(slack: SlackHarness, role: Role, _: int) -> str:
    """`/mini-session profile` (a modal opens, or a refusal), then the form is submitted; when
    refused, a mentor's form is submitted as the role's instead."""
    answer = await command(slack, role, "profile")
    await slack.settle()
    own = opened(slack, answer, "mm_profile")
    reply = "FORM OPENED" if own is not None else await told(slack, answer)
    if own is None:
        mentor = await command(slack, ROLES[2], "profile")
        await slack.settle()
        form = opened(slack, mentor, "mm_profile")
        assert form is not None, "the profile form did not open"
    else:
        form = own
    saved = await submit(slack, role, form, {"skills": f"matrix, {role.name}", "capacity": "4"})
    assert saved.status == 200 and saved.json()["response_action"] == "update", saved
    await slack.settle()
    return reply + "\n" + json.dumps(saved.json())


ACTS: dict[str, Act] = {
    "create": do_create,
    "view": do_view,
    "claim": do_claim,
    "release": do_release,
    "schedule": do_schedule,
    "reschedule": do_reschedule,
    "mark done": do_complete,
    "no-show": do_no_show,
    "cancel": do_cancel,
    "rate": do_rate,
    "stats": do_stats,
    "ask to reschedule": do_ask_reschedule,
    "keep the time": do_keep_time,
    "propose new times": do_propose_new_times,
    "can't make it": do_cant_make_it,
    "profile": do_profile,
}


# What success looks like ----------------------------------------------------------------------------


async def check_success(slack: SlackHarness, action: str, role: Role, rid: int, reply: str) -> None:
    if action == "create":
        async with slack.runtime.db.transaction() as db:
            student = await db.scalar(
                select(Member.external_id)
                .join(Request, Request.student_id == Member.id)
                .where(Request.title == f"Asked by the {role.name}", Member.workspace == role.team)
            )
        assert student == role.user
        return
    if action == "stats":
        assert "Mentorship stats" in reply
        if role.name == "outsider":  # their own workspace: none of ours
            assert "CSV 0 False" in reply and "No CSV" in reply, reply
        else:
            assert "CSV 1 True" in reply, reply
        return
    if action == "view":
        assert REFUSAL_FOR["view"] not in reply and NOT_FOUND not in reply, reply
        return
    if action == "profile":
        assert "FORM OPENED" in reply and "Saved" in reply, reply
        async with slack.runtime.db.transaction() as db:
            profile = await db.scalar(
                select(MentorProfile)
                .join(Member, Member.id == MentorProfile.member_id)
                .where(Member.external_id == role.user, Member.workspace == role.team)
            )
        assert profile is not None and (profile.capacity, profile.skills) == (4, ["matrix", role.name])
        return
    request, meeting, claimer = await request_row(slack, rid)
    if action == "claim":
        assert "You claimed" in reply and (request.status, claimer) == ("claimed", role.user)
    elif action == "release":
        assert "You released" in reply and request.status == "open"
    elif action in ("schedule", "reschedule"):
        assert "FORM OPENED" in reply and request.status == "scheduled", reply
        assert meeting is not None and str(int(meeting.starts_at.timestamp())) == NEW_TIME
    elif action == "mark done":
        assert (
            "Marked" in reply and request.status == "completed" and meeting and meeting.status == "completed"
        )
    elif action == "no-show":
        assert "no-show" in reply and meeting is not None and meeting.status == "no_show"
    elif action == "cancel":
        assert "is cancelled" in reply and request.status == "cancelled"
    elif action == "rate":
        assert "Thanks for your rating" in reply and meeting is not None and meeting.rating == 5
    elif action == "ask to reschedule":
        ask = await latest_ask(slack, rid)
        assert "FORM OPENED" in reply and "session stays booked" in reply, reply
        assert ask is not None and (ask.status, ask.reason) == ("pending", f"Asked by the {role.name}")
        assert request.status == "scheduled"
    elif action == "keep the time":
        ask = await latest_ask(slack, rid)
        assert "Kept the time" in reply and ask is not None and ask.status == "kept", reply
        assert meeting is not None and meeting.schedule_version == 1
    elif action == "propose new times":
        ask = await latest_ask(slack, rid)
        assert "FORM OPENED" in reply and ask is not None and ask.status == "proposed", reply
        assert request.status == "scheduled" and request.proposal_id is not None
    elif action == "can't make it":
        by = "student" if role.name == "student" else "mentor"
        assert "FORM OPENED" in reply and "The session is cancelled" in reply, reply
        assert (request.status, request.cancelled_by) == ("cancelled", by)
        assert meeting is not None and meeting.status == "cancelled"
    else:
        raise AssertionError(action)


def expected_refusal(action: str, role: Role) -> str:
    if role.name == "outsider":
        return "only serves members of the workspace it is installed in"
    return REFUSAL_FOR[action]


@pytest.mark.parametrize("action", list(MATRIX))
async def test_matrix(
    make_slack: MakeSlack, clock: ManualClock, action: str, subtests: pytest.Subtests
) -> None:
    slack = await make_slack(max_open_requests_per_student=50)
    fake = slack.fake
    # The outsider: an admin of their own workspace, in our mentors' channel by Slack Connect.
    fake.add_user(OUTSIDER, name="oscar", tz="UTC", is_admin=True)
    fake.channels[MENTORS]["members"].append(OUTSIDER)
    state, allowed = MATRIX[action]
    ids = await prepare(slack, clock, state)
    for role, rid in zip(ROLES, ids, strict=True):
        with subtests.test(role=role.name, allowed=role.name in allowed):
            before = await everything(slack)
            reply = await ACTS[action](slack, role, rid)
            if role.name in allowed:
                await check_success(slack, action, role, rid, reply)
            else:
                # For an action with a form: refused on the click (or the command) and on the
                # forged form too.
                times = 2 if action in WITH_FORM else 1
                assert reply.count(expected_refusal(action, role)) == times, reply
                after = await everything(slack)
                changed = [t for t, (b, a) in enumerate(zip(before, after, strict=True)) if b != a]
                assert not changed, (changed, [(b, a) for b, a in zip(before, after, strict=True) if b != a])
            if action == "view":  # and the dashboards show it to those allowed only
                assert await where_seen(slack, role) == SEEN[role.name]
    # Every refusal was private: only response_url answers (ephemeral) and nothing in a channel.
    assert all(e["response_type"] == "ephemeral" for e in fake.ephemerals)
    assert fake.validation_errors == []


# The charts' surfaces: `/mini-session stats [4|12|52]` and the App Home's Program section ----------


def _images(blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [b for b in blocks or [] if b.get("type") == "image"]


async def open_home(slack: SlackHarness, role: Role) -> list[dict[str, Any]]:
    body = {
        "token": "legacy-verification-token",
        "team_id": role.team,
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": f"Ev{role.user}",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": role.user, "channel": f"D{role.user}", "tab": "home"},
    }
    answer = await slack.post(json.dumps(body).encode(), "application/json")
    assert answer.status == 200
    await slack.settle()
    return list(slack.fake.home_tabs.get(role.user, {}).get("blocks", []))


async def test_charts_for_admins_only(make_slack: MakeSlack, clock: ManualClock) -> None:
    """Charts (the stats reply's images, their uploads, the Home's Program section) for admins
    of the installed workspace only: an admin of another workspace gets no chart and no Home."""
    slack = await make_slack(max_open_requests_per_student=50)
    fake = slack.fake
    fake.add_user(OUTSIDER, name="oscar", tz="UTC", is_admin=True)
    fake.channels[MENTORS]["members"].append(OUTSIDER)
    await prepare(slack, clock, "claimed")
    for role in ROLES:
        files = len(fake.files)
        before = await everything(slack)
        answer = await command(slack, role, "stats 4")
        reply = await told(slack, answer)
        shown = _images(slack.replies(answer)[-1]["blocks"])
        home = await open_home(slack, role)
        text = json.dumps(home)
        uploaded = fake.files[files:]
        if role.name == "admin":
            assert shown and "Requests per week over the last 4 weeks: 6 posted" in shown[0]["alt_text"]
            assert "Program" in text and _images(home)
            assert all(f["image_type"] == "png" or f["filename"].endswith(".csv") for f in uploaded)
        elif role.name == "outsider":
            # Another workspace is not served at all: refused, no Home, nothing drawn.
            assert "only serves members of the workspace" in reply and not shown, reply
            assert home == [] and uploaded == []
        else:
            assert REFUSAL_FOR["stats"] in reply and not shown
            assert "Program" not in text and not _images(home)
            assert uploaded == []
            assert (await everything(slack))[1:] == before[1:]  # (opening the Home registers a member)
    assert all(e["response_type"] == "ephemeral" for e in fake.ephemerals)
    assert fake.validation_errors == []
