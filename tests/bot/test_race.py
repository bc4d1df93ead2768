"""50 mentors click Claim on one request at the same instant: exactly one wins, on both engines."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.domain import Actor, Ok, Refused
from bot.runtime import Runtime
from storage.models import Notification
from tests.conftest import STUDENT, request_form


async def test_fifty_concurrent_claims_one_winner(runtime: Runtime) -> None:
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    mentors = [Actor("slack", "T1", f"U_M{i:02d}", f"Mentor {i}", is_mentor=True) for i in range(50)]
    results = await asyncio.gather(*(runtime.mentorship.claim(m, created.value.id) for m in mentors))
    winners = [r for r in results if isinstance(r, Ok)]
    losers = [r for r in results if isinstance(r, Refused)]
    assert len(winners) == 1 and len(losers) == 49
    winner = winners[0].value.claimed_by
    assert winner is not None
    assert {r.code for r in losers} == {"already_claimed"}
    assert all(winner.display_name in r.message for r in losers)
    async with runtime.db.transaction() as session:
        claimed_dms = (
            await session.scalars(select(Notification).where(Notification.kind == "request_claimed"))
        ).all()
    assert len(claimed_dms) == 1


async def test_concurrent_cancel_and_claim_never_both_win(runtime: Runtime) -> None:
    for _ in range(5):
        created = await runtime.mentorship.create_request(STUDENT, request_form())
        assert isinstance(created, Ok)
        mentor = Actor("slack", "T1", "U_RACER", "Racer", is_mentor=True)
        claim, cancel = await asyncio.gather(
            runtime.mentorship.claim(mentor, created.value.id),
            runtime.mentorship.cancel(STUDENT, created.value.id),
        )
        # Cancel works from claimed too, so the cancel always wins; the claim may win first.
        assert isinstance(cancel, Ok)
        final = await runtime.mentorship.get_request(STUDENT, created.value.id)
        assert isinstance(final, Ok) and final.value.status.value == "cancelled"
        assert isinstance(claim, Ok | Refused)
