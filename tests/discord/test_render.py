"""The Discord renderer and sender, without a gateway: escaping (property-based), links, times,
Discord's payload limits, custom ids, and how REST errors map onto the outbox's outcomes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import aiohttp
import discord
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Actor, Ok
from bot.messages import Action, Attachment, Button, Link, Message, Person, Text, When
from bot.outbox import RetryLater, Undeliverable
from bot.runtime import Runtime
from handlers.discord_sender import classify, retry_after_of
from modals.discord import (
    ACTION_TEMPLATE,
    EMBEDS_TOTAL,
    FIX_TEMPLATE,
    RequestChoices,
    action_custom_id,
    escape,
    modal_values,
    render,
    render_dashboard,
    render_inline,
    render_link,
    request_modal,
    schedule_modal,
)
from tests.conftest import request_form

MENTION = re.compile(r"@(everyone|here)|<[@#]", re.IGNORECASE)
BARE_BRACKET = re.compile(r"(?<!\\)(?:\\\\)*\[")  # a "[" after an even number of backslashes
TOKENS = [*"@<>#&!:/[]()*_~`|\\-> \n", "everyone", "here", "Everyone", "1234567890123456789", "t:1"]
TRICKY = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)


@given(st.one_of(TRICKY, st.text(max_size=80)))
def test_escaped_text_never_mentions_or_links(text: str) -> None:
    out = escape(text)
    assert MENTION.search(out) is None, (text, out)
    assert BARE_BRACKET.search(out) is None, (text, out)  # no masked link can start
    # Nothing is lost: removing the zero-width spaces and backslashes gives the text back.
    visible = str.maketrans("", "", "\u200b\\")
    assert out.translate(visible) == text.translate(visible)


def test_escape_examples() -> None:
    assert escape("@everyone") == "@\u200beveryone"
    assert escape("@HERE") == "@\u200bHERE"
    assert escape("<@&123456789012345678>") == "<\u200b@\u200b&123456789012345678>"
    assert escape("<#123>") == "<\u200b#123>"
    assert escape("**hi** _there_") == "\\*\\*hi\\*\\* \\_there\\_"
    assert escape("# heading") == "\\# heading"
    # Discord's other angle-bracket markup is split too; an HTML closing tag is left as typed.
    for markup in ("</cmd:123>", "</cmd sub:123>", "<:smile:123>", "<a:dance:123>", "<t:1:R>", "<id:browse>"):
        assert escape(markup) == "<\u200b" + markup[1:]
    assert escape("</div>") == "</div>"


def test_links_times_people() -> None:
    assert render_link(Link("https://meet.example/a", "https://meet.example/a")) == "https://meet.example/a"
    assert render_link(Link("https://x.example/p?q=1 2", "bad")) == "bad"  # whitespace: not a link
    assert render_link(Link("javascript:alert(1)", "click [me]")) == "click \\[me\\]"
    assert render_link(Link("https://x.example/a)b(c", "ok")) == "[ok](https://x.example/a%29b%28c)"
    at = datetime(2030, 1, 8, 17, tzinfo=UTC)
    stamp = int(at.timestamp())
    assert render_inline(When(at)) == f"<t:{stamp}:F>"
    assert render_inline(When(at, "relative")) == f"<t:{stamp}:R>"
    assert render_inline(When(at, "date")) == f"<t:{stamp}:D>"
    assert render_inline(Person("1234", "Sam")) == "<@1234>"
    assert render_inline(Person("U123", "@everyone")) == "@\u200beveryone"
    assert render_inline(Text(" When: ", bold=True)) == " **When:** "


async def test_render_respects_discord_limits_and_pings_nobody() -> None:
    message = Message(
        headline="x" * 400,
        lines=((Text("y" * 5000),),),
        fields=tuple((f"f{i}", (Text(""),)) for i in range(30)),
        buttons=(
            Button("Claim", Action.CLAIM, "7", "primary"),
            Button("Nope", Action.RELEASE, "7", "danger"),
        ),
        footer=(Text("Request #7 · posted "), When(datetime(2030, 1, 1, tzinfo=UTC), "relative")),
        attachment=Attachment("mentorship-7.ics", b"BEGIN:VCALENDAR", "text/calendar", "Calendar invite"),
    )
    drawn = render(message, audience="feed")
    embed = drawn.embed
    assert embed.title is not None and len(embed.title) == 256
    assert embed.description is not None and len(embed.description) == 4096
    assert len(embed.fields) == 25 and embed.fields[0].value == "—"
    assert embed.footer.text == "Request #7 · posted" and embed.timestamp == datetime(2030, 1, 1, tzinfo=UTC)
    assert drawn.allowed_mentions.to_dict() == {"parse": []}
    assert drawn.file is not None and drawn.file.filename == "mentorship-7.ics"
    assert drawn.view is not None and drawn.view.is_finished()  # not kept in the view store
    assert [c.custom_id for c in drawn.view.children] == ["mm:claim:7", "mm:release:7"]  # type: ignore[attr-defined]
    dm = render(Message(headline="@everyone hi"), audience="dm")
    assert dm.content == "@\u200beveryone hi" and dm.embed.title is None


def test_custom_ids() -> None:
    template = re.compile(ACTION_TEMPLATE)
    for action in Action:
        value = "12:5" if action is Action.RATE else "12"
        match = template.fullmatch(action_custom_id(action, value))
        assert match is not None and match["action"] == action.value and match["value"] == value
    assert template.fullmatch("mm:cancel_session:9")["action"] == "cancel_session"  # type: ignore[index]
    assert template.fullmatch("mm:claim:9; drop") is None
    fix = re.compile(FIX_TEMPLATE)
    choices = RequestChoices("project_guidance", "60", "normal")
    custom_id = f"mm:fix:0123abcd:{choices.form}"
    assert fix.fullmatch(custom_id) is not None and len(custom_id) <= 100


def test_modals_fit_discord() -> None:
    modal = request_modal(
        RequestChoices("other", "30", "low"),
        {},
        tz="America/Argentina/ComodRivadavia",
        today=datetime(2030, 1, 7).date(),
    )
    payload = modal.to_dict()
    assert len(payload["title"]) <= 45 and len(payload["components"]) == 5
    for label in payload["components"]:
        assert len(label["label"]) <= 45 and len(label.get("description") or "") <= 100
    slots = [
        SimpleNamespace(
            starts_at=datetime(2030, 1, 8, h, tzinfo=UTC), ends_at=datetime(2030, 1, 8, h, 30, tzinfo=UTC)
        )
        for h in range(24)
    ] * 2
    schedule = schedule_modal(7, slots, {}, tz="Europe/Berlin").to_dict()  # type: ignore[arg-type]
    assert len(schedule["components"][0]["component"]["options"]) == 25


def test_modal_values_flattens_rows_labels_and_selects() -> None:
    data = {
        "components": [
            {"type": 18, "component": {"type": 4, "custom_id": "title", "value": "Hi"}},
            {"type": 1, "components": [{"type": 4, "custom_id": "tags", "value": ""}]},
            {
                "type": 18,
                "component": {"type": 3, "custom_id": "slot", "values": ["2030-01-08T17:00:00+00:00"]},
            },
            {"type": 18, "component": {"type": 3, "custom_id": "rating", "values": []}},
        ]
    }
    assert modal_values(data) == {
        "title": "Hi",
        "tags": "",
        "slot": "2030-01-08T17:00:00+00:00",
        "rating": "",
    }


def http_error(
    cls: type[discord.HTTPException], status: int, code: int, headers: dict[str, str] | None = None
) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="x", headers=headers or {})
    return cls(response, {"code": code, "message": "nope"})  # type: ignore[arg-type]


def test_classify_rest_errors() -> None:
    assert classify(http_error(discord.Forbidden, 403, 50007), dm=True) == Undeliverable("DMs closed (50007)")
    assert classify(http_error(discord.NotFound, 404, 10013), dm=True) == Undeliverable(
        "unknown user (10013)"
    )
    assert classify(http_error(discord.HTTPException, 400, 50033), dm=True) == Undeliverable(
        "invalid recipient (50033)"
    )
    limited = classify(http_error(discord.HTTPException, 429, 0, {"Retry-After": "3.5"}), dm=False)
    assert isinstance(limited, RetryLater) and limited.after_seconds == 3.5
    assert classify(http_error(discord.HTTPException, 429, 0), dm=True) == RetryLater(
        "rate limited by Discord (429)", None
    )
    assert classify(discord.RateLimited(42.0), dm=True) == RetryLater(
        "rate limited by Discord (42.0 s)", 42.0
    )
    assert isinstance(classify(http_error(discord.DiscordServerError, 503, 0), dm=True), RetryLater)
    assert isinstance(classify(http_error(discord.Forbidden, 403, 50001), dm=False), RetryLater)  # fixable
    rejected = classify(http_error(discord.HTTPException, 400, 50035), dm=False)
    assert isinstance(rejected, Undeliverable) and "50035" in rejected.reason
    assert isinstance(classify(aiohttp.ClientConnectionError("reset"), dm=True), RetryLater)
    assert isinstance(classify(TimeoutError(), dm=True), RetryLater)
    assert retry_after_of(http_error(discord.HTTPException, 429, 0, {"Retry-After": "soon"})) is None
    with pytest.raises(ValueError):
        classify(ValueError("bug"), dm=True)


async def test_a_full_dashboard_fits_one_message(runtime: Runtime) -> None:
    mentor = Actor("discord", "1", "900", "Mia", is_mentor=True)
    long = {"title": "T" * 100, "tags": ", ".join(["x" * 30] * 5)}
    for n in range(12):
        student = Actor("discord", "1", str(100 + n), "@everyone " * 5)
        for _ in range(2):
            await runtime.mentorship.create_request(student, request_form(**long))
    # Capacity 10, so all ten claims are taken (the default is 3 active at once); the longest
    # profile and availability a mentor can save take their share of the 6,000 characters too.
    skills = ", ".join(f"{chr(97 + n)}" * 30 for n in range(10))
    saved = await runtime.mentorship.save_profile(mentor, {"skills": skills, "capacity": "10"})
    assert isinstance(saved, Ok), saved
    windows = ", ".join(
        f"{day} {h:02d}:00-{h:02d}:30" for day in ("Mon", "Tue", "Wed", "Thu") for h in range(8, 15)
    )
    saved_windows = await runtime.mentorship.set_availability(
        mentor, {"windows": windows, "timezone": "America/Argentina/Buenos_Aires"}
    )
    assert isinstance(saved_windows, Ok), saved_windows
    for request_id in range(1, 11):
        await runtime.mentorship.claim(mentor, request_id)
    await runtime.mentorship.create_request(mentor, request_form(**long))
    dashboard = await runtime.mentorship.dashboard(mentor)
    drawn = render_dashboard(dashboard, mentor.user_id)
    assert sum(len(e) for e in drawn.embeds) <= EMBEDS_TOTAL
    assert all(len(e.description or "") <= 4096 for e in drawn.embeds)
    assert drawn.view is not None and len(drawn.view.children) <= 25
    assert max(item.row or 0 for item in drawn.view.children) <= 4
    assert "more" in (drawn.embeds[1].description or "") + (drawn.embeds[2].description or "")


def test_a_form_opened_before_the_zone_was_read_names_no_wrong_zone() -> None:
    """When the suggestions time out, the form opens without them; its hint named
    DEFAULT_TIMEZONE although the typed time is read in the mentor's own zone."""
    from modals.discord import propose_modal, schedule_modal

    def hints(modal: discord.ui.Modal) -> list[str]:
        return [str(getattr(item, "description", "") or "") for item in modal.children]

    for modal in (schedule_modal(7, [], {}, tz=""), propose_modal(7, [], {}, tz="")):
        assert "YYYY-MM-DD HH:MM in your time zone" in hints(modal) and not any(
            "()" in h for h in hints(modal)
        )
    named = schedule_modal(7, [], {}, tz="Asia/Tokyo")
    assert "YYYY-MM-DD HH:MM in your time zone (Asia/Tokyo)" in hints(named)
