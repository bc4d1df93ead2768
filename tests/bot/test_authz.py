"""Every refusal of the authorization table (docs/authorization.md): refused politely, nothing changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.domain import Actor, Ok, Refused, RequestView
from bot.runtime import Runtime
from storage.models import MentorSession, Notification, Request
from tests.conftest import (
    ADMIN,
    MENTOR,
    MENTOR_2,
    OTHER_STUDENT,
    STRANGER_WORKSPACE_MENTOR,
    STUDENT,
    request_form,
)

Call = Callable[[Runtime, Actor, int], Awaitable[Any]]


async def _live(rt: Runtime, rid: int) -> tuple[int, int]:
    """The scheduled session's id and version, as the buttons of its DMs carry them."""
    found = await rt.mentorship.get_request(STUDENT, rid)
    if not isinstance(found, Ok) or found.value.session is None:
        return 1, 1  # no such request: a forged button
    return found.value.session.id, found.value.session.schedule_version


async def _ask(rt: Runtime, a: Actor, rid: int) -> Any:
    return await rt.mentorship.ask_reschedule(a, rid, *await _live(rt, rid), {"reason": "Clash"})


async def _cant_make_it(rt: Runtime, a: Actor, rid: int) -> Any:
    return await rt.mentorship.cant_make_it(a, rid, *await _live(rt, rid), {})


ACTIONS: dict[str, Call] = {
    "claim": lambda rt, a, rid: rt.mentorship.claim(a, rid),
    "release": lambda rt, a, rid: rt.mentorship.release(a, rid),
    "schedule": lambda rt, a, rid: rt.mentorship.schedule(a, rid, {"starts_at": "2030-01-09 10:00"}),
    "suggest_slots": lambda rt, a, rid: rt.mentorship.suggest_slots(a, rid),
    "cancel_session": lambda rt, a, rid: rt.mentorship.cancel_session(a, rid),
    "complete": lambda rt, a, rid: rt.mentorship.complete(a, rid),
    "no_show": lambda rt, a, rid: rt.mentorship.no_show(a, rid),
    "cancel": lambda rt, a, rid: rt.mentorship.cancel(a, rid),
    "rate": lambda rt, a, rid: rt.mentorship.rate(a, rid, 5),
    "view": lambda rt, a, rid: rt.mentorship.get_request(a, rid),
    "repost": lambda rt, a, rid: rt.mentorship.repost(a, rid),
    "ask_reschedule": _ask,
    "cant_make_it": _cant_make_it,
    "keep_time": lambda rt, a, rid: rt.mentorship.keep_time(a, rid, 1),
    "propose_for_ask": lambda rt, a, rid: rt.mentorship.propose_for_ask(
        a, rid, 1, {"time_1": "2030-01-09 10:00"}
    ),
}

# (action, who, expected refusal code) for a request that is scheduled by MENTOR.
REFUSALS = [
    ("claim", OTHER_STUDENT, "not_mentor"),
    ("release", MENTOR_2, "not_claimer"),
    ("release", STUDENT, "not_claimer"),
    ("release", ADMIN, "not_claimer"),
    ("schedule", MENTOR_2, "not_claimer"),
    ("suggest_slots", MENTOR_2, "not_claimer"),
    ("cancel_session", MENTOR_2, "not_claimer"),
    ("complete", MENTOR_2, "not_claimer"),
    ("complete", STUDENT, "not_claimer"),
    ("no_show", MENTOR_2, "not_claimer"),
    ("cancel", MENTOR, "not_student"),
    ("cancel", OTHER_STUDENT, "not_student"),
    ("cancel", ADMIN, "not_student"),
    ("rate", MENTOR, "not_student"),
    ("rate", OTHER_STUDENT, "not_student"),
    ("view", OTHER_STUDENT, "forbidden"),
    ("repost", OTHER_STUDENT, "not_student"),
    ("ask_reschedule", MENTOR, "not_student"),
    ("ask_reschedule", OTHER_STUDENT, "not_student"),
    ("ask_reschedule", ADMIN, "not_student"),
    ("cant_make_it", OTHER_STUDENT, "not_participant"),
    ("cant_make_it", MENTOR_2, "not_participant"),
    ("cant_make_it", ADMIN, "not_participant"),
    ("keep_time", STUDENT, "not_claimer"),
    ("keep_time", MENTOR_2, "not_claimer"),
    ("propose_for_ask", MENTOR_2, "not_claimer"),
    ("propose_for_ask", STUDENT, "not_claimer"),
    ("ask_reschedule", Actor("slack", "T2", STUDENT.user_id), "not_found"),
    ("cant_make_it", STRANGER_WORKSPACE_MENTOR, "not_found"),
    # Another workspace cannot even see it exists.
    ("claim", STRANGER_WORKSPACE_MENTOR, "not_found"),
    ("view", STRANGER_WORKSPACE_MENTOR, "not_found"),
    ("cancel", Actor("slack", "T2", STUDENT.user_id), "not_found"),
]


async def snapshot(runtime: Runtime) -> tuple[Any, ...]:
    async with runtime.db.transaction() as session:
        requests = (await session.execute(select(Request.id, Request.status, Request.version))).all()
        sessions = (await session.execute(select(MentorSession.id, MentorSession.status))).all()
        notes = await session.scalar(select(func.count()).select_from(Notification))
    return tuple(requests), tuple(sessions), notes


async def scheduled_request(runtime: Runtime) -> RequestView:
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    assert isinstance(await runtime.mentorship.claim(MENTOR, created.value.id), Ok)
    done = await runtime.mentorship.schedule(MENTOR, created.value.id, {"starts_at": "2030-01-08 10:00"})
    assert isinstance(done, Ok)
    return done.value


@pytest.mark.parametrize(("action", "actor", "code"), REFUSALS, ids=lambda v: getattr(v, "user_id", v))
async def test_refusal_changes_nothing(runtime: Runtime, action: str, actor: Actor, code: str) -> None:
    request = await scheduled_request(runtime)
    before = await snapshot(runtime)
    result = await ACTIONS[action](runtime, actor, request.id)
    assert isinstance(result, Refused), result
    assert result.code == code
    assert result.message and "Traceback" not in result.message
    assert await snapshot(runtime) == before


@pytest.mark.parametrize("actor", [STUDENT, MENTOR, MENTOR_2, ADMIN], ids=lambda a: a.user_id)
async def test_who_may_view_full_details(runtime: Runtime, actor: Actor) -> None:
    request = await scheduled_request(runtime)
    result = await runtime.mentorship.get_request(actor, request.id)
    assert isinstance(result, Ok) and result.value.description == request.description


async def test_mentor_cannot_claim_own_request(runtime: Runtime) -> None:
    mentor_as_student = Actor("slack", "T1", MENTOR.user_id, "Mia", is_mentor=True)
    created = await runtime.mentorship.create_request(mentor_as_student, request_form())
    assert isinstance(created, Ok)
    result = await runtime.mentorship.claim(MENTOR, created.value.id)
    assert isinstance(result, Refused) and result.code == "own_request"


async def test_unknown_request(runtime: Runtime) -> None:
    for request_id in (999_999, 0, -1, 2**31, 2**63, 10**90):  # forged ids past the column's range too
        for name, call in ACTIONS.items():
            result = await call(runtime, MENTOR, request_id)
            assert isinstance(result, Refused) and result.code in {"not_found", "not_mentor"}, (
                name,
                request_id,
            )
    assert await runtime.mentorship.workspace_of(2**63) is None


async def test_stats_only_for_admins(runtime: Runtime, clock: ManualClock) -> None:
    await scheduled_request(runtime)
    for actor in (STUDENT, MENTOR):
        refused = await runtime.stats.report(actor)
        assert isinstance(refused, Refused) and refused.code == "not_admin"
    report = await runtime.stats.report(ADMIN)
    assert isinstance(report, Ok) and report.value.total == 1


async def test_availability_is_for_mentors(runtime: Runtime) -> None:
    refused = await runtime.mentorship.set_availability(
        STUDENT, {"windows": "Mon 10:00-11:00", "timezone": "UTC"}
    )
    assert isinstance(refused, Refused) and refused.code == "not_mentor"
