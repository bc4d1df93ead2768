"""The adversarial probes of the hardening issue, each replayed over signed HTTP against the fake
Slack on SQLite and PostgreSQL: the answer is checked, and so is that nothing changed in the
database or in what Slack was sent."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Settings
from fakes.slack_api import FakeSlack
from storage.db import Database
from storage.models import Base, MentorSession, Request, Submission
from tests.slack.conftest import _harness
from tests.slack.harness import (
    ADMIN,
    MENTOR,
    MENTORS,
    REQUEST_VALUES,
    STUDENT,
    SlackHarness,
    block_text,
    find_button,
    sign,
)
from tests.slack.test_flow import _availability, _claim_and_schedule, _request

FORM = "application/x-www-form-urlencoded"
# Calls that only read (and the response_url answers, counted apart as the ephemerals).
READS = {
    "response_url",
    "auth.test",
    "users.info",
    "conversations.members",
    "conversations.info",
    "usergroups.users.list",
}


@pytest.fixture
async def slack10(
    fake: FakeSlack, settings: Settings, database: Database, clock: ManualClock
) -> AsyncIterator[SlackHarness]:
    """The app with room for ten open requests per student, as in the probe."""
    harness = await _harness(fake, settings, database, clock, max_open_requests_per_student=10)
    yield harness
    await harness.stop()


async def snapshot(slack: SlackHarness) -> tuple[dict[str, list[tuple[Any, ...]]], list[str], int]:
    """Every row of every table, what Slack was asked to do, and what was said ephemerally."""
    await slack.settle()
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with slack.runtime.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            rows[table.name] = [tuple(r) for r in result.all()]
    writes = [json.dumps([c.method, c.args], sort_keys=True, default=str) for c in slack.fake.calls]
    writes = [w for w, c in zip(writes, slack.fake.calls, strict=True) if c.method not in READS]
    return rows, writes, len(slack.fake.ephemerals)


def refused_only(before: Any, after: Any, replies: int = 1) -> None:
    """Nothing changed but the polite refusal(s) sent to the person."""
    assert after[0] == before[0]
    assert after[1] == before[1]
    assert after[2] == before[2] + replies


# 1. Replayed submissions -----------------------------------------------------------------------


async def test_a_replayed_request_form_posts_once(slack10: SlackHarness) -> None:
    slack = slack10
    await slack.command(STUDENT)
    await slack.settle()
    payload = slack.submission(STUDENT, slack.latest_view("mm_request"), REQUEST_VALUES)
    first = await slack.interact(payload)
    assert first.status == 200 and first.text == ""
    before = await snapshot(slack)
    for _ in range(4):
        again = await slack.interact(payload)
        assert (again.status, again.text) == (first.status, first.text)  # answered like the first
    assert await snapshot(slack) == before
    async with slack.runtime.db.transaction() as session:
        assert len((await session.scalars(select(Request))).all()) == 1
        [submission] = (await session.scalars(select(Submission))).all()
    view = payload["view"]
    assert submission.key == f"slack:view:{view['id']}:{view['hash']}"
    assert len(slack.fake.messages[MENTORS]) == 1


async def test_copies_of_one_submission_arriving_at_once_post_once(slack10: SlackHarness) -> None:
    """Five copies in flight together (a retry racing the original, two replicas): the key is
    held for the transaction, so exactly one takes effect and every copy gets its answer."""
    slack = slack10
    await slack.command(STUDENT)
    await slack.settle()
    payload = slack.submission(STUDENT, slack.latest_view("mm_request"), REQUEST_VALUES)
    answers = await asyncio.gather(*(slack.interact(payload) for _ in range(5)))
    assert [(a.status, a.text) for a in answers] == [(200, "")] * 5
    await slack.settle()
    async with slack.runtime.db.transaction() as session:
        assert len((await session.scalars(select(Request))).all()) == 1
    assert len(slack.fake.messages[MENTORS]) == 1
    assert len(slack.dms(STUDENT)) == 1


async def test_a_form_corrected_after_errors_still_posts(slack: SlackHarness) -> None:
    """Only a submission that took effect is remembered: the same view sent back with its
    errors fixed (same id and hash) goes through."""
    await slack.command(STUDENT)
    await slack.settle()
    view = slack.latest_view("mm_request")
    wrong = await slack.submit(STUDENT, view, {**REQUEST_VALUES, "title": "Hi"})
    assert wrong.json()["response_action"] == "errors"
    fixed = await slack.submit(STUDENT, view, REQUEST_VALUES)
    assert fixed.text == ""
    await slack.settle()
    assert len(slack.fake.messages[MENTORS]) == 1


async def test_a_replayed_schedule_submission_schedules_once(slack: SlackHarness) -> None:
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    payload = slack.submission(
        MENTOR, slack.latest_view("mm_schedule"), {"slot": "2030-01-07T15:00:00+00:00"}
    )
    first = await slack.interact(payload)
    assert first.status == 200 and first.text == ""
    before = await snapshot(slack)
    for _ in range(4):
        again = await slack.interact(payload)
        assert (again.status, again.text) == (200, "")
    assert await snapshot(slack) == before
    async with slack.runtime.db.transaction() as session:
        [mentor_session] = (await session.scalars(select(MentorSession))).all()
    assert mentor_session.schedule_version == 1


async def test_rescheduling_to_the_time_already_set_sends_nothing(slack: SlackHarness) -> None:
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    slot = await _claim_and_schedule(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_reschedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")  # a new view: a new id and hash
    before = await snapshot(slack)
    answer = await slack.submit(MENTOR, view, {"slot": slot})
    assert answer.status == 200 and answer.text == ""
    assert await snapshot(slack) == before
    async with slack.runtime.db.transaction() as session:
        [mentor_session] = (await session.scalars(select(MentorSession))).all()
    assert mentor_session.schedule_version == 1


async def test_a_replayed_review_is_thanked_again_and_changes_nothing(
    slack: SlackHarness, clock: ManualClock
) -> None:
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    await _claim_and_schedule(slack)
    clock.advance(hours=7)
    assert await slack.runtime.mentorship.complete_due() == 1
    await slack.settle()
    prompt = slack.dms(STUDENT)[-1]
    await slack.click(STUDENT, find_button(prompt["blocks"], "mm_review"), channel=f"D{STUDENT}")
    await slack.settle()
    payload = slack.submission(STUDENT, slack.latest_view("mm_review"), {"rating": "4", "review": "Helpful"})
    first = await slack.interact(payload)
    assert "Thank you" in block_text(first.json()["view"]["blocks"])
    before = await snapshot(slack)
    again = await slack.interact(payload)
    assert again.json() == first.json()
    assert await snapshot(slack) == before


async def test_clicks_stay_safe_when_replayed(slack: SlackHarness) -> None:
    await _request(slack)
    card = slack.card()
    payload = slack.click_payload(MENTOR, find_button(card["blocks"], "mm_claim"), channel=MENTORS)
    await slack.interact(payload)
    before = await snapshot(slack)
    again = await slack.interact(payload)
    assert again.status == 200
    after = await snapshot(slack)
    assert after[0] == before[0] and after[1] == before[1]  # only "you've already claimed it"
    assert "already claimed" in slack.reply_text(again)


# 2. Foreign workspaces -------------------------------------------------------------------------


async def test_a_command_from_another_workspace_is_refused(slack: SlackHarness) -> None:
    before = await snapshot(slack)
    body = {**slack.command_body(STUDENT), "team_id": "T2"}
    answer = await slack.post(urlencode(body).encode(), FORM)
    answer.sent = body
    assert answer.status == 200
    await slack.settle()
    assert "another workspace" in slack.reply_text(answer)
    refused_only(before, await snapshot(slack))


async def test_a_request_form_from_another_workspace_writes_nothing(slack: SlackHarness) -> None:
    await slack.command(STUDENT)
    await slack.settle()
    payload = slack.submission(STUDENT, slack.latest_view("mm_request"), REQUEST_VALUES)
    payload["team"] = {"id": "T2", "domain": "elsewhere"}
    payload["user"]["team_id"] = "T2"
    before = await snapshot(slack)
    answer = await slack.interact(payload)
    assert answer.json()["response_action"] == "update"
    assert "another workspace" in block_text(answer.json()["view"]["blocks"])
    refused_only(before, await snapshot(slack), replies=0)


async def test_a_slack_connect_user_cannot_claim(slack: SlackHarness) -> None:
    """team.id is ours (the channel is), user.team_id is another organisation's."""
    await _request(slack)
    payload = slack.click_payload(MENTOR, find_button(slack.card()["blocks"], "mm_claim"), channel=MENTORS)
    payload["user"]["team_id"] = "T2"
    before = await snapshot(slack)
    answer = await slack.interact(payload)
    assert answer.status == 200
    await slack.settle()
    assert "another workspace or organisation" in slack.reply_text(answer)
    refused_only(before, await snapshot(slack))
    assert "Open" in block_text(slack.card()["blocks"])


# 3. The acting user ----------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["bare string", "missing"])
async def test_the_actor_comes_only_from_user_id(slack: SlackHarness, user: str) -> None:
    await _request(slack)
    payload = slack.click_payload(MENTOR, find_button(slack.card()["blocks"], "mm_claim"), channel=MENTORS)
    if user == "bare string":
        payload["user"] = MENTOR
    else:
        del payload["user"]
        payload["message"]["user"] = MENTOR
    before = await snapshot(slack)
    answer = await slack.interact(payload)
    assert answer.status == 200
    await slack.settle()
    assert "couldn't tell who sent that" in slack.reply_text(answer)
    refused_only(before, await snapshot(slack))


# 4. Far-future dates ---------------------------------------------------------------------------


async def test_far_future_dates_are_refused_on_the_form(slack: SlackHarness) -> None:
    await slack.command(STUDENT)
    await slack.settle()
    view = slack.latest_view("mm_request")
    before = await snapshot(slack)
    values = {**REQUEST_VALUES, "available_from": "9999-12-01", "available_until": "9999-12-31"}
    answer = await slack.submit(STUDENT, view, values)
    assert answer.json()["response_action"] == "errors"
    assert "within 60 days" in answer.json()["errors"]["available_from"]
    assert await snapshot(slack) == before
    # The horizon's last day is fine (today is 2030-01-07 in Berlin).
    ok = await slack.submit(
        STUDENT, view, {**REQUEST_VALUES, "available_from": "2030-03-08", "available_until": "2030-03-10"}
    )
    assert ok.text == ""


async def test_a_far_future_typed_time_is_a_field_error(slack: SlackHarness) -> None:
    await _request(slack)
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    before = await snapshot(slack)
    # The picker sends epoch seconds: year 5138, the last second of 9999, the first of 1970.
    for typed in ("99999999999", "253402300799", "1"):
        answer = await slack.submit(MENTOR, view, {"starts_at": typed})
        assert answer.json()["response_action"] == "errors", typed
        assert "starts_at" in answer.json()["errors"]
    assert await snapshot(slack) == before


# 5. Bolt's parse_body --------------------------------------------------------------------------


async def test_a_command_mentioning_payload_reaches_the_app(slack: SlackHarness) -> None:
    answer = await slack.command(STUDENT, "help payload")
    assert answer.status == 200
    await slack.settle()
    assert "How to use Mini Mentorship" in slack.reply_text(answer)


async def test_a_command_in_a_channel_named_payload_team_reaches_the_app(slack: SlackHarness) -> None:
    body = {**slack.command_body(STUDENT, "list"), "channel_name": "payload-team"}
    answer = await slack.post(urlencode(body).encode(), FORM)
    answer.sent = body
    assert answer.status == 200
    await slack.settle()
    assert "dashboard" in slack.reply_text(answer).lower()


async def test_the_workaround_keeps_the_signature_on_the_raw_body(slack: SlackHarness) -> None:
    body = urlencode({**slack.command_body(STUDENT, "help payload"), "channel_name": "payload-team"}).encode()
    headers = sign(body)
    answer = await slack.post(body.replace(b"help", b"stats"), FORM, headers)
    assert answer.status == 401


# 6. Strict server-side limits ------------------------------------------------------------------


async def test_a_rating_with_a_non_ascii_digit_is_refused(slack: SlackHarness, clock: ManualClock) -> None:
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    await _claim_and_schedule(slack)
    clock.advance(hours=7)
    assert await slack.runtime.mentorship.complete_due() == 1
    await slack.settle()
    prompt = slack.dms(STUDENT)[-1]
    five = find_button(prompt["blocks"], "mm_rate.5")
    forged = {**five, "value": five["value"].split(":")[0] + ":٥"}
    before = await snapshot(slack)
    answer = await slack.click(STUDENT, forged, channel=f"D{STUDENT}")
    await slack.settle()
    assert "choose 1 to 5 stars" in slack.reply_text(answer)
    refused_only(before, await snapshot(slack))


async def test_tags_longer_than_the_form_allows_are_refused(slack: SlackHarness) -> None:
    await slack.command(STUDENT)
    await slack.settle()
    view = slack.latest_view("mm_request")
    before = await snapshot(slack)
    answer = await slack.submit(STUDENT, view, {**REQUEST_VALUES, "tags": "a," * 1500})
    assert answer.json()["response_action"] == "errors"
    assert "160 characters" in answer.json()["errors"]["tags"]
    assert await snapshot(slack) == before


@pytest.mark.parametrize("title", ['＝HYPERLINK("http://x")', "\u200b=1+1 looks harmless", "＠SUM(A1)"])
async def test_csv_cells_with_disguised_formulas_are_guarded(slack: SlackHarness, title: str) -> None:
    await _request(slack, title=title)
    await slack.command(ADMIN, "stats")
    await slack.settle()
    [csv_file] = [f for f in slack.fake.files if f["filename"].startswith("mentorship-stats-")]
    [header, row] = list(csv.reader(io.StringIO(csv_file["content"].decode())))
    assert row[header.index("title")] == "'" + title


# Non-Latin text ---------------------------------------------------------------------------------

TITLE_JA = ("面接の練習をお願いしたいです" * 8)[:100]
NOTE_JA = ("よろしくお願いします。" * 46)[:500]


async def test_a_japanese_title_and_note_keep_the_scheduled_dm_whole(slack: SlackHarness) -> None:
    """Percent-encoded, a Japanese title and note made the Google Calendar link longer than a
    Slack section: the DM fell back to clipped plain text, with the time in UTC, the calendar
    link cut off mid-URL and the mentor's note gone."""
    await _request(slack, title=TITLE_JA, description="説明" * 100)
    await _availability(slack, "Mon 10:00-17:00")
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    slot = next(b for b in view["blocks"] if b.get("block_id") == "slot")["element"]["options"][0]["value"]
    answer = await slack.submit(MENTOR, view, {"slot": str(slot), "note": NOTE_JA})
    assert answer.text == "", answer.text
    await slack.settle()
    for who in (STUDENT, MENTOR):
        text = block_text(slack.dms(who)[-1]["blocks"])
        assert "<!date^" in text  # drawn by Slack in the reader's own zone, not as UTC text
        assert "|Add to Google Calendar>" in text  # a whole link
        assert NOTE_JA in text


async def test_a_description_of_html_is_shown_whole_on_the_card(slack: SlackHarness) -> None:
    """Escaped, 2,000 characters of pasted HTML pass Slack's 3,000 per section: the card fell
    back to 600 characters of plain text, cutting the description to a quarter (and the title
    lost its bold). The lines now go to as many sections as they need."""
    markup = '<li><a href="/docs?a=1&b=2">Docs</a></li>\n'
    description = ("My navbar breaks on mobile. Here is the markup:\n" + markup * 60)[:2000].strip()
    await _request(slack, description=description)
    [card] = slack.fake.messages[MENTORS]
    text = block_text(card["blocks"])
    assert "*Mock interview for a backend role*" in json.dumps(card["blocks"])
    assert description.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in text
    sections = [b["text"]["text"] for b in card["blocks"] if b["type"] == "section" and "text" in b]
    assert all(len(s) <= 3000 for s in sections)
