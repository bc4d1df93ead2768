"""Forged, stale and unsigned requests are refused (401) before anything happens; user text can
never ping anyone."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from storage.models import Member, Notification, Request
from tests.slack.harness import (
    ADMIN,
    MENTOR,
    MENTOR_2,
    MENTORS,
    REQUEST_VALUES,
    STUDENT,
    SlackHarness,
    find_button,
    sign,
)
from tests.slack.test_flow import _availability


async def _nothing_happened(slack: SlackHarness) -> None:
    await slack.settle()
    # auth.test is the app learning its workspace at start, before any request came.
    assert [c for c in slack.fake.calls if c.method != "auth.test"] == []
    async with slack.runtime.db.transaction() as session:
        for model in (Member, Request, Notification):
            assert await session.scalar(select(func.count()).select_from(model)) == 0


def _command_body(slack: SlackHarness) -> bytes:
    return urlencode(slack.command_body(STUDENT, "list")).encode()


FORM = "application/x-www-form-urlencoded"


async def test_forged_signature(slack_lite: SlackHarness) -> None:
    body = _command_body(slack_lite)
    answer = await slack_lite.post(body, FORM, sign(body, secret="not-the-secret"))
    assert answer.status == 401
    await _nothing_happened(slack_lite)


async def test_tampered_body(slack_lite: SlackHarness) -> None:
    body = _command_body(slack_lite)
    headers = sign(body)
    answer = await slack_lite.post(body.replace(b"text=list", b"text=stats"), FORM, headers)
    assert answer.status == 401
    await _nothing_happened(slack_lite)


@pytest.mark.parametrize("age", [301, 3600, -301])
async def test_stale_timestamp(slack_lite: SlackHarness, age: int) -> None:
    body = _command_body(slack_lite)
    answer = await slack_lite.post(body, FORM, sign(body, int(time.time()) - age))
    assert answer.status == 401
    await _nothing_happened(slack_lite)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": str(int(time.time()))},
        {"X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=abc"},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""},
    ],
)
async def test_missing_or_garbled_headers(slack_lite: SlackHarness, headers: dict[str, str]) -> None:
    body = _command_body(slack_lite)
    answer = await slack_lite.post(body, FORM, headers)
    assert answer.status == 401
    await _nothing_happened(slack_lite)


async def test_signed_garbage_never_crashes(slack_lite: SlackHarness) -> None:
    """Fuzzed payloads with a valid signature: an error answer at worst, never a crash."""
    bodies = [
        b"payload=%7Bnot+json",
        b"payload=%5B1%2C2%5D",
        urlencode({"payload": json.dumps({"type": "block_actions", "actions": "nope"})}).encode(),
        urlencode(
            {"payload": json.dumps({"type": "view_submission", "view": 5, "user": {"id": STUDENT}})}
        ).encode(),
    ]
    for body in bodies:
        answer = await slack_lite.post(body, FORM)
        assert answer.status == 400, (body, answer)
    # Not UTF-8: no signature over it can be checked, so it is unsigned.
    assert (await slack_lite.post(b"\xff\xfe\x00garbage", FORM)).status == 401
    # The app still works afterwards.
    answer = await slack_lite.command(STUDENT, "help")
    await slack_lite.settle()
    assert "/mini-session list" in slack_lite.reply_text(answer)


PINGS = (
    "<!channel> <!here> <!everyone> <!subteam^S0123|@mentors> <@UADMIN> <#CMENTORS> @here &lt;!channel&gt;"
)
MENTION = re.compile(r"<[!@#]")


async def test_user_text_never_pings(slack: SlackHarness) -> None:
    fake = slack.fake
    # Names come from Slack profiles, which users type too.
    fake.add_user(STUDENT, name="sam", tz="Europe/Berlin", display_name="<!channel> Sam")
    fake.add_user(MENTOR, name="mia", tz="America/New_York", display_name="<!here> Mia")
    values = {
        **REQUEST_VALUES,
        "title": "Help <!channel> me",
        "description": f"Please read: {PINGS} and more words to pass the minimum length.",
        "tags": "<!everyone>, <@UADMIN>, @here",
    }
    await slack.command(STUDENT)
    await slack.settle()
    await slack.submit(STUDENT, slack.latest_view("mm_request"), values)
    await slack.settle()
    await _availability(slack, "Mon 10:00-17:00")
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    # A losing mentor is told the claimer's (hostile) name.
    answer = await slack.click_in(MENTOR_2, MENTORS, "mm_release")
    await slack.settle()
    assert "&lt;!here&gt; Mia" in slack.reply_text(answer)
    await slack.click_in(MENTOR, MENTORS, "mm_schedule")
    await slack.settle()
    view = slack.latest_view("mm_schedule")
    hostile = {"slot": "2030-01-07T15:00:00+00:00", "note": f"Note {PINGS}"}
    # A link with markup in it is refused on its field, not quietly changed ...
    refused = await slack.submit(
        MENTOR, view, {**hostile, "meeting_url": "https://meet.example.org/room?a=<!channel>&b=<@UADMIN>|x"}
    )
    assert refused.json()["response_action"] == "errors" and list(refused.json()["errors"]) == ["meeting_url"]
    # ... and one whose `|` would end Slack's link early keeps its target.
    answer = await slack.submit(
        MENTOR, view, {**hostile, "meeting_url": "https://meet.example.org/room?a=!channel&b=@UADMIN|x"}
    )
    assert answer.text == "", answer.text
    await slack.settle()
    slack.runtime.clock.advance(hours=7)  # type: ignore[attr-defined]
    await slack.runtime.mentorship.complete_due()
    await slack.settle()
    prompt = slack.dms(STUDENT)[-1]
    await slack.click(STUDENT, find_button(prompt["blocks"], "mm_review"), channel="DUSTUDENT")
    await slack.settle()
    await slack.submit(STUDENT, slack.latest_view("mm_review"), {"rating": "5", "review": f"Great {PINGS}"})
    await slack.settle()
    for user in (STUDENT, MENTOR):
        await slack.command(user, "list")
        await slack.home_opened(user)
    await slack.command(ADMIN, "stats")
    await slack.settle()

    # The hostile text did reach Slack (escaped) ...
    sent = json.dumps([c.args for c in fake.calls])
    assert "Help &lt;!channel&gt; me" in sent
    assert "&lt;!here&gt; Mia" in sent
    assert "Great &lt;!channel&gt;" in sent
    # ... yet the only mentions in anything we sent are the two people we mean.
    assert set(fake.raw_mentions()) == {"<@USTUDENT>", "<@UMENTOR>"}
    # The link keeps its target but cannot carry markup; the label is escaped text.
    assert "<https://meet.example.org/room?a=!channel&amp;b=@UADMIN%7Cx|" in sent
    # Nothing else in angle brackets either: only our mentions, dates, links and the feed channel.
    ours = re.compile(r"<@(USTUDENT|UMENTOR)>|<!date\^[^>]+>|<https?://[^>|]+\|[^>]*>|<#CMENTORS>")
    for call in fake.calls:
        for text in _texts(call.args):
            assert not MENTION.search(ours.sub("", text)), text
    assert fake.validation_errors == []


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []
