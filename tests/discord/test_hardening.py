"""The hardening probes on Discord, through SimCord, on SQLite and PostgreSQL: a modal submission
delivered twice takes effect once, and far-future dates are refused on the form. Each checks
the answer and that nothing changed in the database or on Discord."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.domain import Actor, Ok
from storage.models import Base, MentorSession, Request, Submission
from tests.discord.conftest import World, modal_fields, request_values

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def snapshot(world: World) -> tuple[dict[str, list[tuple[Any, ...]]], list[tuple[int, str]]]:
    """Every row of every table, and every message in the feed and the people's DMs."""
    await world.deliver()
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with world.runtime.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            rows[table.name] = [tuple(r) for r in result.all()]
    messages = [(m.id, m.content) for m in world.feed.history()]
    for who in (world.sam, world.mia):
        messages += [(m.id, m.content) for m in world.dms(who)]
    return rows, messages


def record_interactions(world: World) -> list[dict[str, Any]]:
    """The INTERACTION_CREATE payloads SimCord sends the bot, to deliver one again."""
    sent: list[dict[str, Any]] = []
    backend = world.env.backend
    emit = backend.emit

    def recording(event: str, payload: Any) -> Any:
        if event == "INTERACTION_CREATE":
            sent.append(payload)
        return emit(event, payload)

    backend.emit = recording  # type: ignore[method-assign]
    return sent


async def replay(world: World, payload: dict[str, Any]) -> None:
    world.env.backend.emit("INTERACTION_CREATE", payload)
    await world.env.settle()


async def test_a_request_modal_delivered_twice_posts_once(world: World) -> None:
    sent = record_interactions(world)
    rid, posted = await world.post_request()
    assert "is posted" in posted.response.content
    before = await snapshot(world)
    await replay(world, sent[-1])
    await replay(world, sent[-1])
    assert await snapshot(world) == before
    async with world.runtime.db.transaction() as session:
        assert [r.id for r in (await session.scalars(select(Request))).all()] == [rid]
        [submission] = (await session.scalars(select(Submission))).all()
    assert submission.key == f"discord:interaction:{sent[-1]['id']}"


async def test_the_core_answers_a_replayed_discord_submission_like_the_first(world: World) -> None:
    """Even where Discord would let the bot answer a second time (another replica got the
    copy), the submission key makes the use case return the first outcome and change nothing."""
    rid, _ = await world.post_request()
    async with world.runtime.db.transaction() as session:
        [submission] = (await session.scalars(select(Submission))).all()
    before = await snapshot(world)
    actor = Actor("discord", str(world.guild.id), str(world.sam.id), "Sam Student", None)
    again = await world.runtime.mentorship.create_request(
        actor, {**request_values(), "session_type": "interview_prep"}, once=submission.key
    )
    assert isinstance(again, Ok) and again.value.id == rid
    assert await snapshot(world) == before


async def test_a_schedule_modal_delivered_twice_schedules_once(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    sent = record_interactions(world)
    done = await world.mia.submit_modal(shown, {"starts_at": "2030-01-08 10:00"})
    assert "Scheduled request" in done.response.content
    before = await snapshot(world)
    await replay(world, sent[-1])
    assert await snapshot(world) == before
    async with world.runtime.db.transaction() as session:
        [mentor_session] = (await session.scalars(select(MentorSession))).all()
    assert mentor_session.schedule_version == 1


async def test_far_future_dates_are_refused_on_discord(world: World) -> None:
    shown = await world.open_request_form(world.sam)
    assert modal_fields(shown.modal)["available_from"]
    before = await snapshot(world)
    refused = await world.sam.submit_modal(
        shown, request_values(available_from="9999-12-01", available_until="9999-12-31")
    )
    assert refused.response.ephemeral
    assert "within 60 days" in refused.response.content
    after = await snapshot(world)
    assert after[0] == before[0] and after[1] == before[1]


async def test_a_japanese_title_and_note_keep_the_scheduled_dm_whole(world: World) -> None:
    """Percent-encoded, a Japanese title and note made the Google Calendar link longer than the
    embed: it was cut mid-URL (no link, raw text) and the mentor's note after it was lost."""
    title, note = ("面接の練習をお願いしたいです" * 8)[:100], ("よろしくお願いします。" * 46)[:500]
    rid, _ = await world.post_request(title=title)
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-09 15:00", "note": note})
    await world.deliver()
    scheduled = "Your mentorship session is scheduled"
    dm = next(m for m in reversed(world.dms(world.sam)) if m.content == scheduled)
    description = dm.embeds[0].description or ""
    assert note in description
    assert "[Add to Google Calendar](https://calendar.google.com/" in description
    link = description.split("[Add to Google Calendar](", 1)[1]
    assert ")\n" in link  # the link ends where it should, before the note


async def test_html_in_a_description_reaches_the_card_as_typed(world: World) -> None:
    """A zero-width space went after every "<" of an HTML closing tag ("</li>"), so a mentor
    who copied the student's markup from the card got broken HTML."""
    description = "My navbar breaks on mobile:\n<ul><li><a href='/docs'>Docs</a></li></ul>"
    rid, _ = await world.post_request(description=description)
    shown = (await world.card(rid)).embeds[0].description or ""
    assert "<ul><li><a href='/docs'>Docs</a></li></ul>" in shown
    assert "\u200b" not in shown
