"""Changes from either side through real discord.py on SimCord: the student's Ask to reschedule,
the mentor's new times or Keep the time, "Can't make it" from the 24-hour reminder for both
people, Put it back in the feed, and every refusal (forwarded buttons, another mentor, a second
click, a stale button)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.messages import Action
from storage.models import MentorSession, Request, RescheduleAsk
from tests.discord.conftest import World, click_at_once, planted_button


def labels(message: object) -> list[str]:
    return [c.label for row in message.components for c in row.children]  # type: ignore[attr-defined]


def custom_id(message: object, label: str) -> str:
    return next(
        c.custom_id
        for row in message.components  # type: ignore[attr-defined]
        for c in row.children
        if c.label == label
    )


def newest(world: World, who: object, content: str) -> object:
    return next(m for m in reversed(world.dms(who)) if m.content == content)  # type: ignore[arg-type]


async def count(world: World, model: type) -> int:
    async with world.runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def scheduled(world: World) -> int:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-09 15:00"})
    await world.deliver()
    return rid


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_ask_new_times_and_the_pick_moves_the_session(world: World) -> None:
    await scheduled(world)
    dm = newest(world, world.sam, "Your mentorship session is scheduled")
    assert labels(dm)[0] == "Ask to reschedule"
    value = custom_id(dm, "Ask to reschedule").removeprefix("mm:ask_reschedule:")
    # A forwarded button: the form opens, the submit is refused, nothing changes.
    planted = await planted_button(world, Action.ASK_RESCHEDULE, value, "Ask to reschedule")
    form = await world.ola.click(planted, label="Ask to reschedule")
    refused = await world.ola.submit_modal(form, {"reason": "Let me in"})
    assert "Only the student" in refused.response.content
    assert await count(world, RescheduleAsk) == 0

    form = await world.sam.user.click(dm, label="Ask to reschedule")
    assert form.modal["custom_id"] == f"mm:form:reschedule_ask:{value}"
    empty = await world.sam.user.submit_modal(form, {"reason": " "})
    assert "Please fill this in" in empty.response.content
    form = await world.sam.user.click(dm, label="Ask to reschedule")
    sent = await world.sam.user.submit_modal(form, {"reason": "My interview moved @everyone"})
    assert "Your mentor has been asked" in sent.response.content
    await world.deliver()
    asked = newest(world, world.mia, "Your student asks to reschedule")
    assert "My interview moved" in (asked.embeds[0].description or "")  # type: ignore[attr-defined]
    assert asked.mentions == [] and not asked.mention_everyone  # type: ignore[attr-defined]
    assert labels(asked) == ["Propose new times", "Keep the time"]
    ask_value = custom_id(asked, "Keep the time").removeprefix("mm:keep_time:")
    other = await planted_button(world, Action.KEEP_TIME, ask_value, "Keep the time")
    stranger = await world.max.click(other, label="Keep the time")
    assert "who claimed this request" in stranger.response.content

    shown = await world.mia.user.click(asked, label="Propose new times")
    assert shown.modal["custom_id"] == f"mm:form:propose:{ask_value}"
    proposed = await world.mia.user.submit_modal(shown, {"time_1": "2030-01-10 15:00"})
    assert "current time holds" in proposed.response.content
    await world.deliver()
    late = await world.mia.user.click(asked, label="Keep the time")
    assert "already been answered" in late.response.content
    offer = world.last_dm(world.sam)
    assert "stays booked" in (offer.embeds[0].description or "")
    picked = await world.sam.user.click(offer, label="Thu 10 Jan 15:00 UTC")
    assert "Booked request" in picked.response.content
    await world.deliver()
    stamp = int(datetime(2030, 1, 10, 15, 0, tzinfo=UTC).timestamp())
    for person in (world.sam, world.mia):
        moved = world.last_dm(person)
        assert moved.content == "Your mentorship session has a new time"
        assert f"<t:{stamp}:F>" in (moved.embeds[0].description or "")
        assert moved.attachments[0].filename.endswith(".ics")
    assert await count(world, MentorSession) == 1
    stale = await world.sam.user.click(dm, label="Ask to reschedule")
    done = await world.sam.user.submit_modal(stale, {"reason": "again"})
    assert "has moved" in done.response.content
    world.env.raise_errors()


async def test_keep_the_time_once_under_concurrent_clicks(world: World) -> None:
    await scheduled(world)
    dm = newest(world, world.sam, "Your mentorship session is scheduled")
    form = await world.sam.user.click(dm, label="Ask to reschedule")
    await world.sam.user.submit_modal(form, {"reason": "Clash at work"})
    await world.deliver()
    asked = newest(world, world.mia, "Your student asks to reschedule")
    results = await click_at_once(
        world.env,
        [world.mia.user] * 10,  # type: ignore[list-item]
        asked,  # type: ignore[arg-type]
        custom_id(asked, "Keep the time"),
    )
    assert sum("Kept the time" in r.response.content for r in results) == 1
    await world.deliver()
    kept = [m for m in world.dms(world.sam) if m.content == "Your session keeps its time"]
    assert len(kept) == 1
    late = await world.mia.user.click(asked, label="Propose new times")  # type: ignore[arg-type]
    assert late.modal is None and "already been answered" in late.response.content
    # The time stands, but the student is not stuck: they can ask again from the same DM.
    assert labels(kept[0]) == ["Ask to reschedule", "Cancel request"]
    again = await world.sam.user.click(kept[0], label="Ask to reschedule")
    await world.sam.user.submit_modal(again, {"reason": "Still clashes, sorry"})
    await world.deliver()
    asked_again = newest(world, world.mia, "Your student asks to reschedule")
    assert "Still clashes, sorry" in str(asked_again.embeds[0].to_dict())  # type: ignore[attr-defined]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_mentor_cant_make_it_and_the_student_puts_it_back(world: World) -> None:
    rid = await scheduled(world)
    world.clock.set(datetime(2030, 1, 8, 15, 0, tzinfo=UTC))  # 24 hours before
    await world.deliver()
    student_reminder = world.last_dm(world.sam)
    assert labels(student_reminder) == ["Ask to reschedule", "Can't make it"]
    reminder = world.last_dm(world.mia)
    assert labels(reminder) == ["Can't make it"]
    value = custom_id(reminder, "Can't make it").removeprefix("mm:cant_make_it:")
    planted = await planted_button(world, Action.CANT_MAKE_IT, value, "Can't make it")
    form = await world.max.click(planted, label="Can't make it")
    refused = await world.max.submit_modal(form, {})
    assert "Only the student and the mentor" in refused.response.content

    form = await world.mia.user.click(reminder, label="Can't make it")
    done = await world.mia.user.submit_modal(form, {"reason": "Flight delayed"})
    assert "The session is cancelled" in done.response.content
    await world.deliver()
    told = world.last_dm(world.sam)
    assert told.content == "Your session is called off"
    assert "Flight delayed" in (told.embeds[0].description or "")
    assert told.attachments[0].filename.endswith("-cancelled.ics")
    assert labels(told) == ["Put it back in the feed"]
    assert "couldn't make it" in (await world.card(rid)).content + str(
        (await world.card(rid)).embeds[0].title
    )
    twice = await world.sam.user.click(student_reminder, label="Can't make it")
    again = await world.sam.user.submit_modal(twice, {})
    assert "no longer scheduled" in again.response.content
    first = await world.sam.user.click(told, label="Put it back in the feed")
    assert "Posted again" in first.response.content
    second = await world.sam.user.click(told, label="Put it back in the feed")
    assert "already posted again" in second.response.content
    assert await count(world, Request) == 2
    world.env.raise_errors()


async def test_the_student_cant_make_it(world: World) -> None:
    await scheduled(world)
    world.clock.set(datetime(2030, 1, 8, 15, 0, tzinfo=UTC))
    await world.deliver()
    form = await world.sam.user.click(world.last_dm(world.sam), label="Can't make it")
    await world.sam.user.submit_modal(form, {"reason": "I'm ill"})
    await world.deliver()
    told = world.last_dm(world.mia)
    assert told.content == "Your session is called off" and "I'm ill" in (told.embeds[0].description or "")
    assert labels(told) == []
    mine = world.last_dm(world.sam)
    assert mine.content == "Session called off" and labels(mine) == ["Put it back in the feed"]


async def test_the_copy_put_back_after_the_mentor_called_it_off_is_not_offered_to_them(world: World) -> None:
    """Mia couldn't make it; Sam puts the request back: the copy's suggestion DMs go to Max, not
    to Mia, who may still claim it from the card if she changes her mind."""
    from tests.discord.test_escalation import fits_you
    from tests.discord.test_matching import save_profile

    await save_profile(world, world.mia, "python")
    await save_profile(world, world.max, "python")
    rid = await scheduled(world)
    world.clock.set(datetime(2030, 1, 8, 15, 0, tzinfo=UTC))  # 24 hours before
    await world.deliver()
    form = await world.mia.user.click(world.last_dm(world.mia), label="Can't make it")
    await world.mia.user.submit_modal(form, {"reason": "Flight delayed"})
    await world.deliver()
    before = {who: len(fits_you(world, who)) for who in (world.mia, world.max)}
    told = world.last_dm(world.sam)
    assert (
        "Posted again" in (await world.sam.user.click(told, label="Put it back in the feed")).response.content
    )
    await world.deliver()
    assert len(fits_you(world, world.mia)) == before[world.mia]
    assert len(fits_you(world, world.max)) == before[world.max] + 1
    async with world.runtime.db.transaction() as session:
        copy = await session.scalar(select(Request.reposted_as_id).where(Request.id == rid))
    assert copy is not None
    claimed = await world.mia.click(await world.card(copy), label="Claim")
    assert claimed.response.content.startswith(f"You claimed request #{copy}.")
