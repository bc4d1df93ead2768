"""Forms on Discord: field-level errors answered ephemerally, with "Edit and resubmit" reopening
the modal with what was typed; time zones; availability; limits from the form specs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from handlers.discord import build_bot
from modals import forms
from storage.models import MentorSession, Request
from tests.discord.conftest import World, attach_sender, modal_fields, request_values


async def count_requests(world: World) -> int:
    async with world.runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Request)) or 0)


async def test_invalid_fields_are_listed_and_the_form_reopens_with_what_was_typed(world: World) -> None:
    sam = world.sam
    shown = await world.open_request_form(sam, session_type="career_advice", urgency="high")
    typed = request_values(
        title="hey", available_from="tomorrow", available_until="2030-01-05", tags="a, b, c, d, e, f"
    )
    rejected = await sam.submit_modal(shown, typed)
    text = rejected.response.content
    assert rejected.response.ephemeral
    assert text.splitlines() == [
        "Please fix these and submit again:",
        "• **What do you need help with?**: Please write at least 5 characters (you wrote 3). "
        "— you typed “hey”",
        "• **Available from**: Please give a date like 2030-01-31. — you typed “tomorrow”",
        "• **Tags**: Please use at most 5 tags (you gave 6). — you typed “a, b, c, d, e, f”",
    ]
    assert await count_requests(world) == 0

    # The button reopens the same form (same choices) with exactly what was typed.
    reopened = await sam.click(rejected.response, label="Edit and resubmit")
    assert reopened.modal["custom_id"] == "mm:form:request:career_advice:30:high"
    prefilled = {key: field.get("value") for key, field in modal_fields(reopened.modal).items()}
    assert prefilled == typed
    # Once "from" is a date, the "until" problem shows too: every round says exactly what's left.
    fixed = {
        **typed,
        "title": "Switching from QA to backend",
        "available_from": "2030-01-07",
        "tags": "career",
    }
    still = await sam.submit_modal(reopened, fixed)
    assert still.response.content.splitlines()[1:] == [
        "• **Available until**: This must be on or after the 'from' date. — you typed “2030-01-05”"
    ]
    reopened = await sam.click(still.response, label="Edit and resubmit")
    posted = await sam.submit_modal(reopened, {**fixed, "available_until": "2030-01-10"})
    assert "Your request #1 is posted" in posted.response.content
    embed = posted.response.embeds[0]
    facts = {f.name: f.value for f in embed.fields}
    assert facts["Type"] == "Career advice" and facts["Urgency"] == "🔥 High"


async def test_edit_and_resubmit_after_a_restart_reopens_a_fresh_form(world: World) -> None:
    """Drafts live in memory; after a restart the button still answers (with a fresh form)."""
    shown = await world.open_request_form(world.sam)
    rejected = await world.sam.submit_modal(shown, request_values(title="hey"))
    runtime = Runtime(world.settings, clock=world.clock, db=world.runtime.db)
    await world.env.restart_bot(
        attach_sender(build_bot(world.settings, runtime=runtime), runtime, world.settings)
    )
    reopened = await world.sam.click(rejected.response, label="Edit and resubmit")
    fields = modal_fields(reopened.modal)
    assert "value" not in fields["title"] and fields["available_from"]["value"] == "2030-01-07"


async def test_limits_come_from_the_form_specs(world: World) -> None:
    shown = await world.open_request_form(world.sam)
    fields = modal_fields(shown.modal)
    for field in forms.REQUEST_FORM.fields:
        if field.id in fields and field.max_length:
            assert fields[field.id]["max_length"] == field.max_length
    assert fields["tags"]["required"] is False and fields["title"]["required"] is True
    labels = [row["label"] for row in shown.modal["components"]]
    assert labels[0] == "What do you need help with?"
    assert len(shown.modal["components"]) == 5  # Discord's limit; the choices came from the command


async def test_dates_are_read_in_the_members_own_zone(world: World) -> None:
    sam = world.sam
    matches = await sam.autocomplete(world.lobby, "mini-session timezone", "zone", "kirit")
    assert matches == [{"name": "Pacific/Kiritimati", "value": "Pacific/Kiritimati"}]
    berlin = await sam.autocomplete(world.lobby, "mini-session timezone", "zone", "berl")
    assert berlin[0]["value"] == "Europe/Berlin"
    # Someone in Berlin typing their winter "GMT+1" is shown that Etc/GMT+1 is UTC-1 (POSIX signs).
    posix = await sam.autocomplete(world.lobby, "mini-session timezone", "zone", "gmt+1")
    assert posix[0] == {"name": "Etc/GMT+1 (= UTC-01:00)", "value": "Etc/GMT+1"}
    east = await sam.autocomplete(world.lobby, "mini-session timezone", "zone", "Etc/GMT-5")
    assert east == [{"name": "Etc/GMT-5 (= UTC+05:00)", "value": "Etc/GMT-5"}]
    assert {"name": "Etc/GMT", "value": "Etc/GMT"} in await sam.autocomplete(
        world.lobby, "mini-session timezone", "zone", "etc/gmt"
    )
    chosen = await sam.slash(world.lobby, "mini-session timezone", zone="Etc/GMT+1")
    assert chosen.response.content.startswith("Your time zone is now **Etc/GMT+1 (= UTC-01:00)**.")
    wrong = await sam.slash(world.lobby, "mini-session timezone", zone="Mars/Olympus")
    assert wrong.response.content.startswith("Please give an IANA zone such as Europe/Berlin.")
    await sam.slash(world.lobby, "mini-session timezone", zone="Pacific/Kiritimati")

    # 11:00 UTC on 7 January is already 8 January in Kiritimati (UTC+14).
    world.clock.set(datetime(2030, 1, 7, 11, 0, tzinfo=UTC))
    shown = await world.open_request_form(sam)
    fields = modal_fields(shown.modal)
    assert fields["available_from"]["value"] == "2030-01-08"
    assert shown.modal["components"][2]["description"] == "YYYY-MM-DD, in your time zone (Pacific/Kiritimati)"
    late = await sam.submit_modal(shown, request_values(available_from="2030-01-07"))
    assert "Please pick today (2030-01-08) or a later date." in late.response.content


async def test_open_request_cap_is_a_polite_refusal_before_the_form(world: World) -> None:
    """At the cap the form does not open at all: nobody fills it in only to lose what they typed."""
    await world.post_request(deliver=False)
    await world.post_request(deliver=False)
    third = await world.open_request_form(world.sam)
    assert third.modal is None
    assert third.response.ephemeral
    assert third.response.content.startswith("You already have 2 active requests.")


async def test_schedule_errors_are_per_field(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    bad = await world.mia.submit_modal(
        shown, {"starts_at": "next tuesday", "meeting_url": "javascript:alert(1)", "note": "Bring code"}
    )
    assert bad.response.content.splitlines() == [
        "Please fix these and submit again:",
        "• **Or pick a time**: Please give a time like 2030-01-31 18:30. — you typed “next tuesday”",
        "• **Meeting link**: Please give a full http:// or https:// link, or leave it empty. "
        "— you typed “javascript:alert(1)”",
    ]
    again = await world.mia.click(bad.response, label="Edit and resubmit")
    assert modal_fields(again.modal)["note"]["value"] == "Bring code"
    outside = await world.mia.submit_modal(again, {"starts_at": "2030-02-20 10:00", "note": "Bring code"})
    assert (
        "Please pick a time inside the student's dates (2030-01-07 – 2030-01-14)." in outside.response.content
    )


async def test_a_meeting_link_with_angle_brackets_is_refused_on_its_field(world: World) -> None:
    """Not quietly changed into a link the mentor never typed; pasted wrapped in <…>, it is taken."""
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    bad = await world.mia.submit_modal(
        shown, {"starts_at": "2030-01-09 10:00", "meeting_url": "https://zoom.us/j/1<2>"}
    )
    assert bad.response.content.splitlines()[1].startswith("• **Meeting link**: A link can't contain < >")
    again = await world.mia.click(bad.response, label="Edit and resubmit")
    done = await world.mia.submit_modal(
        again, {"starts_at": "2030-01-09 10:00", "meeting_url": "<https://zoom.us/j/12>"}
    )
    assert done.response.content.startswith(f"Scheduled request #{rid} for"), done.response.content
    async with world.runtime.db.transaction() as session:
        urls = list(await session.scalars(select(MentorSession.meeting_url)))
    assert urls == ["https://zoom.us/j/12"]


async def test_a_schedule_form_opened_before_the_students_pick_is_refused(world: World) -> None:
    """Schedule directly opened, then times proposed and one picked: the old form, even after
    Edit and resubmit, does not move the session the student chose; a fresh Reschedule does."""
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    stale = await world.mia.click(await world.card(rid), label="Schedule directly")
    bad = await world.mia.submit_modal(stale, {"starts_at": "next tuesday"})
    stale = await world.mia.click(bad.response, label="Edit and resubmit")
    proposed = await world.mia.click(await world.card(rid), label="Propose times")
    answer = await world.mia.submit_modal(
        proposed, {"time_1": "2030-01-09 10:00", "time_2": "2030-01-10 10:00"}
    )
    assert answer.response is not None
    await world.deliver()
    offer = world.last_dm(world.sam)
    assert offer.content == "Your mentor proposed times"
    first = offer.components[0].children[0].label
    picked = await world.sam.user.click(offer, label=first)
    assert "Booked request" in picked.response.content
    await world.deliver()
    before = [n.id for n in await world.outbox()]
    refused = await world.mia.submit_modal(stale, {"starts_at": "2030-01-11 10:00"})
    assert "The session's time changed since you opened this form" in refused.response.content
    assert [n.id for n in await world.outbox()] == before  # nothing owed to anyone
    # Reschedule, opened now, moves it; leaving the same time again changes (and sends) nothing.
    moved = await world.mia.click(await world.card(rid), label="Reschedule")
    assert moved.modal is not None and moved.modal["title"].startswith("Reschedule")
    done = await world.mia.submit_modal(moved, {"starts_at": "2030-01-11 10:00"})
    assert done.response.content.startswith(f"Scheduled request #{rid}")
    await world.deliver()
    same = await world.mia.click(await world.card(rid), label="Reschedule")
    unchanged = await world.mia.submit_modal(same, {"starts_at": "2030-01-11 10:00"})
    assert unchanged.response.content.startswith("Nothing changed")


async def test_availability_is_for_mentors_and_validated(world: World) -> None:
    refused = await world.ola.slash(world.lobby, "mini-session availability")
    assert refused.modal is None
    assert refused.response.content == "Only mentors can do that. Ask an admin if you'd like to mentor."

    shown = await world.mia.slash(world.lobby, "mini-session availability")
    bad = await world.mia.submit_modal(shown, {"windows": "Funday 25:00-26:00", "timezone": "Europe/Berlin"})
    assert "I couldn't read 'Funday 25:00-26:00'; write it like 'Mon 18:00-20:00'." in bad.response.content
    again = await world.mia.click(bad.response, label="Edit and resubmit")
    assert modal_fields(again.modal)["windows"]["value"] == "Funday 25:00-26:00"
    ok = await world.mia.submit_modal(again, {"windows": "Mon 18:00-20:00", "timezone": "Europe/Berlin"})
    assert ok.response.content.startswith("Saved: Mon 18:00-20:00 (Europe/Berlin).")
    reopened = await world.mia.slash(world.lobby, "mini-session availability")
    fields = modal_fields(reopened.modal)
    assert fields["windows"]["value"] == "Mon 18:00-20:00" and fields["timezone"]["value"] == "Europe/Berlin"


async def test_profile_is_for_mentors_validated_and_listed(world: World) -> None:
    refused = await world.ola.slash(world.lobby, "mini-session profile")
    assert refused.modal is None
    assert refused.response.content == "Only mentors can do that. Ask an admin if you'd like to mentor."

    shown = await world.mia.slash(world.lobby, "mini-session profile")
    assert modal_fields(shown.modal)["capacity"]["value"] == "3"  # MENTOR_DEFAULT_CAPACITY
    bad = await world.mia.submit_modal(shown, {"skills": "python", "capacity": "0", "away_until": ""})
    assert "Please give a whole number from 1 to 10." in bad.response.content
    again = await world.mia.click(bad.response, label="Edit and resubmit")
    assert modal_fields(again.modal)["capacity"]["value"] == "0"
    ok = await world.mia.submit_modal(
        again, {"skills": "@everyone, Python", "capacity": "2", "away_until": ""}
    )
    assert ok.response.content.startswith("Saved: 0 of 2 active · ")
    assert "@everyone" not in ok.response.content.replace("@\u200beveryone", "")
    listed = await world.mia.slash(world.lobby, "mini-session list")
    profile = next(e for e in listed.response.embeds if e.title == "Your mentor profile")
    assert "0 of 2 active" in (profile.description or "") and "python" in (profile.description or "")


async def test_the_reschedule_form_shows_the_note_and_can_empty_it(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    shown = await world.mia.click(await world.card(rid), label="Schedule directly")
    await world.mia.submit_modal(shown, {"starts_at": "2030-01-09 10:00", "note": "Bring your CV"})
    await world.deliver()
    again = await world.mia.click(await world.card(rid), label="Reschedule")
    assert modal_fields(again.modal)["note"]["value"] == "Bring your CV"
    emptied = await world.mia.submit_modal(again, {"starts_at": "2030-01-09 10:00", "note": ""})
    assert emptied.response.content.startswith(f"Scheduled request #{rid}")  # the note changed
    async with world.runtime.db.transaction() as session:
        from sqlalchemy import select

        from storage.models import MentorSession

        assert (await session.scalars(select(MentorSession.note))).one() == ""


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_date_the_calendar_lacks_is_named_not_called_the_wrong_shape(world: World) -> None:
    """'2030-02-29' is written exactly like the example, yet the answer was 'Please give a date
    like 2030-01-31.'; it now says the calendar has no such day."""
    shown = await world.open_request_form(world.sam)
    rejected = await world.sam.submit_modal(
        shown, request_values(available_from="2030-02-29", available_until="2030-04-31")
    )
    assert rejected.response.content.splitlines()[1:] == [
        "• **Available from**: There is no 2030-02-29 in the calendar; please check the day and month. "
        "— you typed “2030-02-29”",
        "• **Available until**: There is no 2030-04-31 in the calendar; please check the day and month. "
        "— you typed “2030-04-31”",
    ]
    assert await count_requests(world) == 0
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")
    await world.deliver()
    form = await world.mia.click(await world.card(rid), label="Schedule directly")
    wrong = await world.mia.submit_modal(form, {"starts_at": "2030-02-30 10:00"})
    assert "There is no 2030-02-30 in the calendar" in wrong.response.content
