"""The shared conversation of a claim: student, mentor and the bot in one place to talk (a
Slack group DM, a private Discord thread). No platform in sight.

A claim writes the conversation row and owes its opening (with the request summary) through
the outbox, in the claim's transaction; scheduling news is owed there as well as in the DMs
(`owe_news`); a release or cancel closes it with one last line (`close`). If the platform
can't make the conversation, the opening row fails with the reason (dashboards show it), and
later news for it is skipped: the DMs carry on alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain import RequestView
from bot.notifications import Kind
from bot.outbox import owe_shared
from storage import repository as repo


async def open_for_claim(
    session: AsyncSession, settings: Settings, request: RequestView, now: datetime
) -> bool:
    """Right after a claim: the conversation of this claim, opened once by the outbox."""
    if request.claimed_by is None or not settings.shared_conversations(request.platform):
        return False
    conversation_id = await repo.add_conversation(
        session,
        request_id=request.id,
        claim_version=request.version,
        platform=request.platform,
        student_id=request.student.id,
        mentor_id=request.claimed_by.id,
        status="opening",
        created_at=now,
    )
    if conversation_id is None:
        return False
    return await owe_shared(
        session,
        request=request,
        conversation_id=conversation_id,
        kind=Kind.CONVERSATION_OPENED,
        key=f"request:{request.id}",
        now=now,
    )


async def owe_news(
    session: AsyncSession,
    request: RequestView,
    kind: Kind,
    key: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Post `kind` (composed by notifications.compose_shared) in the request's live conversation,
    if it has one that did not fail. `key` as for owe_dm: the same news is owed once."""
    live = await repo.live_conversation(session, request.id)
    if live is None or live.status == "failed":
        return False
    return await owe_shared(
        session, request=request, conversation_id=live.id, kind=kind, key=key, now=now, payload=payload
    )


async def close(session: AsyncSession, request: RequestView, reason: str, now: datetime) -> bool:
    """A release or cancel ends the claim: one closing line, and no news after it."""
    live = await repo.live_conversation(session, request.id)
    if live is None or not await repo.close_conversation(session, live.id, now):
        return False
    if live.status == "failed":
        return False
    return await owe_shared(
        session,
        request=request,
        conversation_id=live.id,
        kind=Kind.CONVERSATION_CLOSED,
        key=f"request:{request.id}",
        now=now,
        payload={"reason": reason},
    )
