"""The whole story through real discord.py on SimCord: request, claim, schedule, reminders,
completion, rating and review; then restarts, expiry/repost, nudges and the other buttons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import discord
import pytest

from bot.domain import Status
from bot.runtime import Runtime
from handlers.discord import build_bot
from tests.discord.conftest import World, attach_sender, modal_fields, request_values


def badge(card: discord.Message) -> str:
    """The status badge a card's title starts with (the rest of the headline is the core's copy)."""
    title = card.embeds[0].title or ""
    return next((s.badge for s in Status if title.startswith(s.badge)), title)


async def request_status(world: World, request_id: int) -> Status:
    async with world.runtime.db.transaction() as session:
        from storage import repository as repo

        view = await repo.request_view(session, request_id)
    assert view is not None
    return view.status


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_whole_story_student_to_review(world: World) -> None:
    env, sam, mia = world.env, world.sam, world.mia

    # The mentor's weekly availability (used for suggested slots), in her own zone.
    shown = await mia.slash(world.lobby, "mini-session availability")
    assert modal_fields(shown.modal)["timezone"]["value"] == "UTC"
    saved = await mia.submit_modal(
        shown, {"windows": "Tue 18:00-20:00, Wed 18:00-19:00", "timezone": "Europe/Berlin"}
    )
    assert saved.response.content.startswith("Saved: Tue 18:00-20:00, Wed 18:00-19:00 (Europe/Berlin)")
    assert (await sam.slash(world.lobby, "mini-session timezone", zone="Europe/Berlin")).response.ephemeral

    # The student asks: native choices, then the modal.
    shown = await sam.slash(world.lobby, "mini-session request", session_type="code_review", duration="45")
    assert shown.modal["custom_id"] == "mm:form:request:code_review:45:normal"
    fields = modal_fields(shown.modal)
    assert list(fields) == ["title", "description", "available_from", "available_until", "tags"]
    assert fields["title"]["max_length"] == 100 and fields["description"]["max_length"] == 2000
    assert fields["available_from"]["value"] == "2030-01-07"  # today, in Berlin
    posted = await sam.submit_modal(shown, request_values(title="Review my API design"))
    assert posted.response.ephemeral and "Your request #1 is posted" in posted.response.content
    await world.deliver()

    card = await world.card(1)
    assert card.channel.id == world.feed.id
    [embed] = card.embeds
    assert (embed.title or "").startswith(Status.OPEN.badge)
    assert "**Review my API design**" in (embed.description or "")
    facts = {f.name: f.value for f in embed.fields}
    assert facts["Type"] == "Code review" and facts["Duration"] == "45 min"
    assert facts["Student"] == f"<@{sam.id}>"
    assert [c.label for row in card.components for c in row.children] == ["Claim"]
    assert world.last_dm(sam).content == "Your request is posted"

    # A mentor claims from the card.
    claimed = await mia.click(card, label="Claim")
    assert claimed.response.ephemeral
    assert (
        claimed.response.content
        == "You claimed request #1. Next, **Propose times** or **Schedule directly**."
    )
    await world.deliver()
    card = await world.card(1)
    assert badge(card) == Status.CLAIMED.badge
    assert [c.label for row in card.components for c in row.children] == [
        "Propose times",
        "Schedule directly",
        "Release",
    ]
    assert world.last_dm(sam).content == "A mentor claimed your request"
    assert f"<@{mia.id}> will mentor you on" in (world.last_dm(sam).embeds[0].description or "")

    # Schedule: suggested slots (her availability ∩ the student's dates) in a select.
    shown = await mia.click(card, label="Schedule directly")
    assert shown.modal["custom_id"] == "mm:form:schedule:1:0"  # opened for: no session booked yet
    slot_select = modal_fields(shown.modal)["slot"]
    options = slot_select["options"]
    # Tue 8 Jan 18:00 Berlin is 17:00 UTC; 45-minute slots every 30 minutes inside 18:00-20:00.
    assert options[0]["label"] == "Tue 08 Jan, 18:00–18:45"
    assert options[0]["value"] == "2030-01-08T17:00:00+00:00"
    assert [o["label"] for o in options][:3] == [
        "Tue 08 Jan, 18:00–18:45",
        "Tue 08 Jan, 18:30–19:15",
        "Tue 08 Jan, 19:00–19:45",
    ]
    done = await mia.submit_modal(
        shown, {"slot": [options[0]["value"]], "meeting_url": "https://meet.example.com/room-1"}
    )
    starts = datetime(2030, 1, 8, 17, 0, tzinfo=UTC)
    stamp = int(starts.timestamp())
    assert done.response.content.startswith(f"Scheduled request #1 for <t:{stamp}:F> (<t:{stamp}:R>)")
    await world.deliver()

    card = await world.card(1)
    assert badge(card) == Status.SCHEDULED.badge
    assert {f.name: f.value for f in card.embeds[0].fields}["When"] == f"<t:{stamp}:F>"
    for person in (sam, mia):
        dm = world.last_dm(person)
        assert dm.content == "Your mentorship session is scheduled"
        text = dm.embeds[0].description or ""
        assert f"<t:{stamp}:F>" in text and f"<t:{stamp}:R>" in text
        assert "https://meet.example.com/room-1" in text
        assert "[Add to Google Calendar](https://calendar.google.com/calendar/render?" in text
        [ics] = dm.attachments
        assert ics.filename == "mentorship-1.ics"
        data = await ics.read()
        assert data.startswith(b"BEGIN:VCALENDAR") and b"DTSTART:20300108T170000Z" in data
    assert [c.label for row in world.last_dm(mia).components for c in row.children] == [
        "Reschedule",
        "Cancel session",
    ]

    # Reminders: the jobs' delivery sweep sends them when the core clock reaches them.
    world.clock.set(starts - timedelta(hours=24) + timedelta(seconds=30))
    await world.deliver()
    assert world.last_dm(sam).content.startswith("⏰ Reminder")
    assert world.last_dm(mia).content.startswith("⏰ Reminder")
    assert f"<t:{stamp}:R>" in (world.last_dm(sam).embeds[0].description or "")
    world.clock.set(starts - timedelta(minutes=14))
    await world.deliver()
    await world.deliver()  # nothing twice
    for person in (sam, mia):
        assert len([m for m in world.dms(person) if m.content.startswith("⏰ Reminder")]) == 2

    # After the session the completion sweep asks the student for a rating (buttons in the DM).
    world.clock.set(starts + timedelta(minutes=45 + 11))
    assert await world.runtime.mentorship.complete_due() == 1
    await world.deliver()
    prompt = world.last_dm(sam)
    assert prompt.content == "How was your session?"
    labels = [c.label for row in prompt.components for c in row.children]
    assert labels == ["★", "★★", "★★★", "★★★★", "★★★★★", "Write a review"]
    completed = await world.card(1)
    assert badge(completed) == Status.COMPLETED.badge
    # Marked done by the sweep: Mia may still report a no-show, until Sam rates it.
    assert [c.label for row in completed.components for c in row.children] == ["No-show"]
    # Who mentored and when stay on the completed card.
    assert {"Mentor", "When"} <= {f.name for f in completed.embeds[0].fields}

    rated = await sam.user.click(prompt, label="★★★★★")  # a click in a DM: no server in the payload
    assert rated.response.content == "Thanks for rating your session ★★★★★! You can add a few words too."
    await world.deliver()
    assert world.last_dm(mia).content == "You got a rating"
    assert (await world.card(1)).components == []  # rated: it took place, No-show goes

    shown = await sam.user.click(prompt, label="Write a review")
    assert shown.modal["custom_id"] == "mm:form:review:1"
    stars = modal_fields(shown.modal)["rating"]["options"]  # the form starts at the stars given
    assert [o["value"] for o in stars if o.get("default")] == ["5"]
    reviewed = await sam.user.submit_modal(shown, {"rating": ["5"], "review": "Clear and kind, thank you!"})
    assert reviewed.response.content == "Thank you for your feedback!"
    await world.deliver()
    assert world.last_dm(mia).content == "You got a review"
    assert "Clear and kind, thank you!" in (world.last_dm(mia).embeds[0].description or "")
    again = await sam.user.click(prompt, label="★")
    assert again.response.content == "You've already rated this session. Thank you!"

    listed = await sam.slash(world.lobby, "mini-session list")
    assert "✅ Completed · #1" in (listed.response.embeds[0].description or "")
    env.raise_errors()


async def test_buttons_keep_working_after_a_restart(world: World) -> None:
    """A new process (new client, new Runtime over the same database): old cards still work,
    and a modal opened before the restart is handled when submitted after it."""
    rid, _ = await world.post_request()
    old_card = await world.card(rid)
    open_form = await world.open_request_form(world.ola)

    runtime = Runtime(world.settings, clock=world.clock, db=world.runtime.db)
    fresh = attach_sender(build_bot(world.settings, runtime=runtime), runtime, world.settings)
    await world.env.restart_bot(fresh)
    world.runtime = runtime
    assert world.env.bot is fresh

    claimed = await world.mia.click(old_card, label="Claim")
    assert (
        claimed.response.content
        == f"You claimed request #{rid}. Next, **Propose times** or **Schedule directly**."
    )
    posted = await world.ola.submit_modal(open_form, request_values(title="Career change advice"))
    assert posted.acknowledged and "Your request #2 is posted" in posted.response.content
    await world.deliver()
    assert badge(await world.card(rid)) == Status.CLAIMED.badge
    assert badge(await world.card(2)) == Status.OPEN.badge


async def test_typed_time_reschedule_release_and_cancel_from_a_dm(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()

    # No availability saved: the form has no suggestions, only a typed time (in her zone).
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    assert "slot" not in modal_fields(shown.modal)
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-09 15:00"})
    await world.deliver()
    first = int(datetime(2030, 1, 9, 15, tzinfo=UTC).timestamp())
    assert f"<t:{first}:F>" in (world.last_dm(world.sam).embeds[0].description or "")

    # Reschedule from her DM; the link is kept, the time moves, both are told.
    link = (world.last_dm(world.mia).embeds[0].description or "").split("Join:** ", 1)[1].split("\n")[0]
    shown = await world.mia.user.click(world.last_dm(world.mia), label="Reschedule")
    assert shown.modal["title"] == f"Reschedule request #{rid}"
    moved = await world.mia.user.submit_modal(shown, {"starts_at": "2030-01-10 16:30"})
    assert "Scheduled request" in moved.response.content
    await world.deliver()
    dm = world.last_dm(world.sam)
    assert dm.content == "Your mentorship session has a new time"
    assert link in (dm.embeds[0].description or "")

    # Cancel the session (keeps the request), then release it back to the feed.
    cancelled = await world.mia.user.click(world.last_dm(world.mia), label="Cancel session")
    assert "still yours" in cancelled.response.content
    released = await world.mia.click(await world.card(rid), label="Release")
    assert released.response.content == f"You released request #{rid}; it's back in the mentors' feed."
    await world.deliver()
    assert badge(await world.card(rid)) == Status.OPEN.badge

    # The student cancels from the DM the bot sent when the request was posted.
    posted_dm = next(m for m in world.dms(world.sam) if m.content == "Your request is posted")
    gone = await world.sam.user.click(posted_dm, label="Cancel request")
    assert gone.response.content == f"Request #{rid} is cancelled."
    await world.deliver()
    card = await world.card(rid)
    assert badge(card) == Status.CANCELLED.badge
    assert card.components == []
    assert await request_status(world, rid) is Status.CANCELLED


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_no_show_reported_after_the_sweep_marked_it_done(world: World) -> None:
    """The mentor tells us the next day that nobody came: the completed card still has No-show."""
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-08 10:00"})
    await world.deliver()
    world.clock.set(datetime(2030, 1, 8, 11, 0, tzinfo=UTC))
    assert await world.runtime.mentorship.complete_due() == 1
    await world.deliver()
    prompt = world.last_dm(world.sam)
    assert prompt.content == "How was your session?"
    card = await world.card(rid)
    assert badge(card) == Status.COMPLETED.badge
    assert [c.label for row in card.components for c in row.children] == ["No-show"]
    other = await world.max.click(card, label="No-show")
    assert other.response.content == "Only Mia Mentor, who claimed this request, can do that."

    world.clock.set(datetime(2030, 1, 9, 9, 0, tzinfo=UTC))
    marked = await world.mia.click(card, label="No-show")
    assert marked.response.content == f"Recorded a no-show for request #{rid}."
    twice = await world.mia.click(card, label="No-show")  # the same (old) button again
    assert twice.response.content == "This session is already reported as a no-show."
    await world.deliver()
    assert world.last_dm(world.sam).content == "Session marked as a no-show"
    card = await world.card(rid)
    assert "No-show" in str(card.embeds[0].to_dict()) and card.components == []
    stars = await world.sam.user.click(prompt, label="★★★★★")
    assert stars.response.content == "You can rate a session once it has taken place."


async def test_no_show_expiry_repost_and_nudge(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-08 10:00"})
    await world.deliver()

    early = await world.mia.click(await world.card(rid), label="No-show")
    assert early.response.content == "The session hasn't started yet; you can mark it after it starts."
    world.clock.set(datetime(2030, 1, 8, 10, 20, tzinfo=UTC))
    marked = await world.mia.click(await world.card(rid), label="No-show")
    assert marked.response.content == f"Recorded a no-show for request #{rid}."
    await world.deliver()
    assert world.last_dm(world.sam).content == "Session marked as a no-show"
    # The card and the student's dashboard say so, not only "Completed".
    assert "No-show" in str((await world.card(rid)).embeds[0].to_dict())
    listed = await world.sam.slash(world.lobby, "mini-session list")
    assert "No-show" in (listed.response.embeds[0].description or "")

    # An unclaimed request is escalated in the feed, then expires; the student posts it again.
    other, _ = await world.post_request(world.ola, title="Portfolio review please")
    world.clock.advance(hours=25)
    assert await world.runtime.mentorship.nudge_due() == 1
    await world.deliver()
    nudge = world.feed.history()[-1]
    assert nudge.embeds[0].title == "🚨 Still unclaimed after 25 h"
    card = await world.card(other)
    assert f"/{world.feed.id}/{card.id})" in (nudge.embeds[0].description or "")
    assert [c.label for row in nudge.components for c in row.children] == ["Claim"]
    assert world.last_dm(world.ola).content == "More people have been asked"

    world.clock.advance(days=7)
    assert await world.runtime.mentorship.expire_due() == 1
    await world.deliver()
    # The escalation offers Claim no more (edited in place, not reposted).
    [retired] = [m for m in world.feed.history() if m.id == nudge.id]
    assert retired.embeds[0].title == "No longer open" and retired.components == []
    expired = world.last_dm(world.ola)
    assert expired.content == "Your request expired"
    again = await world.ola.user.click(expired, label="Post again")
    assert again.response.content.startswith("Posted again as request #")
    await world.deliver()
    assert badge(await world.card(other)) == Status.EXPIRED.badge


async def test_mark_done_from_the_card(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-08 10:00"})
    world.clock.set(datetime(2030, 1, 8, 10, 31, tzinfo=UTC))
    await world.deliver()
    done = await world.mia.click(await world.card(rid), label="Mark done")
    assert done.response.content == f"Request #{rid} is marked done. The student will be asked for a rating."
    await world.deliver()
    assert world.last_dm(world.sam).content == "How was your session?"
    assert isinstance(world.env.bot, discord.Client)
