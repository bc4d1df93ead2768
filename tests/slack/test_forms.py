"""Invalid input comes back inline, on the right field (`response_action: errors`), and nothing is
stored or sent; the modals themselves are drawn from the form specs."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from modals import forms
from storage.models import AvailabilityWindow, MentorSession, Request
from tests.slack.harness import MENTOR, MENTORS, REQUEST_VALUES, STUDENT, SlackHarness
from tests.slack.test_flow import _availability, _request


async def _count(slack: SlackHarness, model: type) -> int:
    async with slack.runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def test_request_modal_follows_the_spec() -> None:
    from datetime import date

    from modals.slack import request_modal

    view = request_modal(date(2030, 1, 7), metadata={})
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b["block_id"] for b in inputs] == [f.id for f in forms.REQUEST_FORM.fields]
    assert all(b["element"]["action_id"] == b["block_id"] for b in inputs)
    kinds = {b["block_id"]: b["element"]["type"] for b in inputs}
    assert kinds == {
        "title": "plain_text_input",
        "session_type": "static_select",
        "description": "plain_text_input",
        "duration": "static_select",
        "available_from": "datepicker",
        "available_until": "datepicker",
        "urgency": "static_select",
        "tags": "plain_text_input",
    }
    by_id = {b["block_id"]: b for b in inputs}
    assert by_id["description"]["element"]["multiline"] is True
    assert by_id["title"]["element"]["max_length"] == 100
    assert by_id["tags"]["optional"] is True and by_id["title"]["optional"] is False


REQUEST_CASES = [
    ("title", {"title": "Hey"}),
    ("title", {"title": ""}),
    ("description", {"description": "too short"}),
    ("session_type", {"session_type": None}),
    ("session_type", {"session_type": "astrology"}),
    ("duration", {"duration": "90"}),
    ("available_from", {"available_from": "2030-01-06"}),
    ("available_until", {"available_until": "2030-01-06"}),
    ("available_until", {"available_until": "2030-03-01"}),
    ("urgency", {"urgency": "extreme"}),
    ("tags", {"tags": "a, b, c, d, e, f"}),
    ("tags", {"tags": "x" * 31}),
]


@pytest.mark.parametrize(
    ("field", "change"), REQUEST_CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(REQUEST_CASES)]
)
async def test_request_form_errors_are_inline(
    slack_lite: SlackHarness, field: str, change: dict[str, str | None]
) -> None:
    slack = slack_lite
    await slack.command(STUDENT)
    await slack.settle()
    answer = await slack.submit(STUDENT, slack.latest_view("mm_request"), {**REQUEST_VALUES, **change})
    body = answer.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [field], body["errors"]
    assert body["errors"][field]
    await slack.settle()
    assert await _count(slack, Request) == 0
    assert slack.fake.messages[MENTORS] == [] and slack.dms(STUDENT) == []
    assert slack.fake.validation_errors == []


async def test_every_bad_request_field_at_once(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    await slack.command(STUDENT)
    await slack.settle()
    bad = {
        "title": "Hey",
        "session_type": None,
        "description": "short",
        "duration": "5",
        "available_from": "2029-01-01",
        "available_until": "not a date",
        "urgency": "meh",
        "tags": ",".join("abcdefg"),
    }
    answer = await slack.submit(STUDENT, slack.latest_view("mm_request"), bad)
    assert set(answer.json()["errors"]) == set(bad)


async def _open_schedule(slack: SlackHarness) -> dict[str, object]:
    await _request(slack)
    await _availability(slack, "Mon 10:00-17:00")
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    return slack.latest_view("mm_schedule")


SCHEDULE_CASES = [
    ("starts_at", {}),  # neither a suggestion nor a time
    ("starts_at", {"starts_at": "1893974400"}),  # 2030-01-07 00:00 UTC: in the past
    ("starts_at", {"starts_at": "1895000000"}),  # after the student's dates
    ("slot", {"slot": "2031-01-01T10:00:00+00:00"}),  # a stale suggestion outside the dates
    ("slot", {"slot": "yesterday"}),
    ("meeting_url", {"slot": "2030-01-07T15:00:00+00:00", "meeting_url": "ftp://example.com/room"}),
    ("meeting_url", {"slot": "2030-01-07T15:00:00+00:00", "meeting_url": "https://zoom.us/j/1<2>"}),
    ("note", {"slot": "2030-01-07T15:00:00+00:00", "note": "n" * 501}),
]


@pytest.mark.parametrize(
    ("field", "values"), SCHEDULE_CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(SCHEDULE_CASES)]
)
async def test_schedule_form_errors_are_inline(
    slack_lite: SlackHarness, field: str, values: dict[str, str | None]
) -> None:
    slack = slack_lite
    view = await _open_schedule(slack)
    answer = await slack.submit(MENTOR, view, values)  # type: ignore[arg-type]
    body = answer.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [field], body["errors"]
    assert await _count(slack, MentorSession) == 0
    assert slack.fake.validation_errors == []


async def test_schedule_without_suggestions_puts_slot_errors_on_the_time(slack_lite: SlackHarness) -> None:
    slack = slack_lite
    await _request(slack)  # the mentor has no availability, so no suggestions are drawn
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    assert "slot" not in {b.get("block_id") for b in view["blocks"]}
    assert "No suggestions" in str(view["blocks"])
    answer = await slack.submit(MENTOR, view, {})
    assert list(answer.json()["errors"]) == ["starts_at"]
    assert slack.fake.validation_errors == []


AVAILABILITY_CASES = [
    ("windows", {"windows": "Someday 9-5", "timezone": "UTC"}),
    ("windows", {"windows": "Mon 18:00-17:00", "timezone": "UTC"}),
    ("timezone", {"windows": "Mon 18:00-20:00", "timezone": "Mars/Olympus"}),
]


@pytest.mark.parametrize(("field", "values"), AVAILABILITY_CASES)
async def test_availability_form_errors_are_inline(
    slack_lite: SlackHarness, field: str, values: dict[str, str | None]
) -> None:
    slack = slack_lite
    await slack.command(MENTOR, "availability")
    await slack.settle()
    view = slack.latest_view("mm_availability")
    answer = await slack.submit(MENTOR, view, values)
    assert list(answer.json()["errors"]) == [field]
    assert await _count(slack, AvailabilityWindow) == 0


REVIEW_CASES = [
    ("rating", {"rating": None}),
    ("rating", {"rating": "7"}),
    ("review", {"rating": "4", "review": "r" * 1001}),
]


@pytest.mark.parametrize(("field", "values"), REVIEW_CASES)
async def test_review_form_errors_are_inline(
    slack_lite: SlackHarness, field: str, values: dict[str, str | None]
) -> None:
    from modals.slack import review_modal

    slack = slack_lite
    view = {**review_modal("A title", metadata={"r": 1}), "id": "V1"}
    answer = await slack.submit(STUDENT, view, values)
    assert list(answer.json()["errors"]) == [field]
