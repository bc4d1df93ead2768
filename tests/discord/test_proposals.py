"""Proposed times through real discord.py on SimCord, on SQLite and PostgreSQL: the mentor
proposes from a pre-filled modal, the student picks from buttons in their own zone (first pick
wins), says none work, and every refusal changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.domain import Status
from bot.messages import Action
from storage.models import MentorSession
from tests.discord.conftest import World, click_at_once, modal_fields, planted_button
from tests.discord.test_story import badge


def labels(message: object) -> list[str]:
    return [c.label for row in message.components for c in row.children]  # type: ignore[attr-defined]


async def sessions(world: World) -> int:
    async with world.runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(MentorSession)) or 0)


async def claimed_with_availability(world: World) -> int:
    shown = await world.mia.slash(world.lobby, "mini-session availability")
    await world.mia.submit_modal(shown, {"windows": "Tue 18:00-20:00", "timezone": "Europe/Berlin"})
    assert (await world.sam.slash(world.lobby, "mini-session timezone", zone="America/New_York")).response
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    return rid


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_propose_and_pick_in_the_students_zone(world: World) -> None:
    rid = await claimed_with_availability(world)
    card = await world.card(rid)
    assert labels(card) == ["Propose times", "Schedule directly", "Release"]
    shown = await world.mia.click(card, label="Propose times")
    assert shown.modal["custom_id"] == f"mm:form:propose:{rid}"
    fields = modal_fields(shown.modal)
    # Tue 8 Jan 18:00 Berlin onwards, in her own zone.
    assert [fields[f"time_{n}"]["value"] for n in (1, 2, 3)] == [
        "2030-01-08 18:00",
        "2030-01-08 18:30",
        "2030-01-08 19:00",
    ]
    values = {k: str(fields[k]["value"]) for k in ("time_1", "time_2", "time_3")}
    sent = await world.mia.submit_modal(shown, {**values, "note": "@everyone bring code"})
    assert "Sent your times" in sent.response.content
    await world.deliver()
    assert "times proposed, waiting for the student" in str(
        {f.name: f.value for f in (await world.card(rid)).embeds[0].fields}
    )
    offer = world.last_dm(world.sam)
    assert offer.content == "Your mentor proposed times"
    # 17:00 UTC is 12:00 in New York, the student's zone.
    assert labels(offer) == [
        "Tue 08 Jan 12:00 EST",
        "Tue 08 Jan 12:30 EST",
        "Tue 08 Jan 13:00 EST",
        "None of these work",
    ]

    # A forwarded button: another user can't pick.
    value = offer.components[0].children[1].custom_id.removeprefix("mm:pick_time:")
    planted = await planted_button(world, Action.PICK_TIME, value, "Tue 08 Jan 12:30 EST")
    refused = await world.ola.click(planted, label="Tue 08 Jan 12:30 EST")
    assert "Only the student" in refused.response.content
    assert await sessions(world) == 0

    picked = await world.sam.user.click(offer, label="Tue 08 Jan 12:30 EST")
    assert "Booked request" in picked.response.content
    await world.deliver()
    assert badge(await world.card(rid)) == Status.SCHEDULED.badge
    stamp = int(datetime(2030, 1, 8, 17, 30, tzinfo=UTC).timestamp())
    for person in (world.sam, world.mia):
        dm = world.last_dm(person)
        assert dm.content == "Your mentorship session is scheduled"
        assert f"<t:{stamp}:F>" in (dm.embeds[0].description or "")
        assert dm.attachments[0].filename.endswith(".ics")
    again = await world.sam.user.click(offer, label="Tue 08 Jan 12:00 EST")
    assert "already scheduled" in again.response.content
    assert await sessions(world) == 1
    world.env.raise_errors()


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_concurrent_picks_make_one_session(world: World) -> None:
    rid = await claimed_with_availability(world)
    shown = await world.mia.click(await world.card(rid), label="Propose times")
    await world.mia.submit_modal(shown, {"time_1": "2030-01-08 18:00"})
    await world.deliver()
    offer = world.last_dm(world.sam)
    custom_id = offer.components[0].children[0].custom_id
    results = await click_at_once(world.env, [world.sam.user] * 20, offer, custom_id)  # type: ignore[list-item]
    booked = [r for r in results if "Booked" in r.response.content]
    assert len(booked) == 1
    await world.deliver()
    assert await sessions(world) == 1
    scheduled_dms = [m for m in world.dms(world.sam) if m.content == "Your mentorship session is scheduled"]
    assert len(scheduled_dms) == 1


async def test_none_work_tells_the_mentor_who_proposes_again(world: World) -> None:
    rid = await claimed_with_availability(world)
    shown = await world.mia.click(await world.card(rid), label="Propose times")
    bad = await world.mia.submit_modal(shown, {"time_1": "2030-01-20 18:00", "time_2": "2030-01-08 18:00"})
    assert "student's dates" in bad.response.content  # refused on its field, with Edit and resubmit
    shown = await world.mia.click(await world.card(rid), label="Propose times")
    await world.mia.submit_modal(shown, {"time_1": "2030-01-08 18:00"})
    await world.deliver()
    offer = world.last_dm(world.sam)
    form = await world.sam.user.click(offer, label="None of these work")
    assert form.modal["custom_id"].startswith(f"mm:form:none_work:{rid}:")
    done = await world.sam.user.submit_modal(form, {"note": "evenings after 18:00 work"})
    assert "Your mentor has been told" in done.response.content
    await world.deliver()
    told = world.last_dm(world.mia)
    assert told.content == "None of the proposed times work"
    assert "evenings after 18:00 work" in (told.embeds[0].description or "")
    assert labels(told) == ["Propose other times", "Schedule directly"]
    old = await world.sam.user.click(offer, label="Tue 08 Jan 12:00 EST")
    assert "no longer on offer" in old.response.content
    again = await world.mia.user.click(told, label="Propose other times")
    assert again.modal["custom_id"] == f"mm:form:propose:{rid}"
