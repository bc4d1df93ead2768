"""The Slack renderer on its own: escaping, dates, people, links, and Block Kit limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.messages import Action, Button, Link, Message, Person, Text, When
from modals import slack as ui
from modals.slack_mrkdwn import escape, inline, line, safe_url

BERLIN = ZoneInfo("Europe/Berlin")
PING = re.compile(r"<!(channel|here|everyone|subteam)|<@[UW]")


def test_escape() -> None:
    assert escape("a & b <!channel> <@U1> >") == "a &amp; b &lt;!channel&gt; &lt;@U1&gt; &gt;"


def test_bold_keeps_stars_next_to_the_words() -> None:
    assert inline(Text("When: ", bold=True), BERLIN) == "*When:* "
    assert inline(Text("<b>", bold=True), BERLIN) == "*&lt;b&gt;*"
    assert inline(Text("  ", bold=True), BERLIN) == "  "


def test_when_is_localized_by_slack_with_a_fallback_in_the_readers_zone() -> None:
    at = datetime(2030, 1, 7, 15, 0, tzinfo=UTC)
    assert (
        inline(When(at), BERLIN)
        == "<!date^1894028400^{date_short_pretty} at {time}|Mon 07 Jan 2030 16:00 CET>"
    )
    assert inline(When(at, "relative"), ZoneInfo("UTC")).startswith("<!date^1894028400^{ago}|")
    assert inline(When(at, "date"), BERLIN) == "<!date^1894028400^{date_short_pretty}|Mon 07 Jan 2030>"


def test_people_are_mentioned_by_id_only() -> None:
    assert inline(Person("U123ABC", "<!channel>"), BERLIN) == "<@U123ABC>"
    assert inline(Person("not an id>", "<!here>"), BERLIN) == "&lt;!here&gt;"


def test_links() -> None:
    assert inline(Link("https://a.example/x?a=1&b=2", "Join <now>"), BERLIN) == (
        "<https://a.example/x?a=1&amp;b=2|Join &lt;now&gt;>"
    )
    assert inline(Link("https://a.example/<!channel>|x", "x"), BERLIN) == "<https://a.example/!channel%7Cx|x>"
    for bad in ("javascript:alert(1)", "ftp://x.example", "https://", "https://a b.example", ""):
        assert safe_url(bad) is None
        assert inline(Link(bad, "label <b>"), BERLIN) == "label &lt;b&gt;"


@given(st.text())
def test_no_user_text_can_ping(text: str) -> None:
    rendered = line((Text(text), Text(text, bold=True), Link(text, text), Person("x" + text, text)), BERLIN)
    assert not PING.search(rendered)
    assert "<" not in rendered.replace("<http", "")  # the only bracket left opens our own link


@given(st.text(), st.text())
def test_links_never_break_out(url: str, label: str) -> None:
    rendered = inline(Link("https://x.example/" + url, label), BERLIN)
    if safe_url("https://x.example/" + url) is None:  # whitespace in it: shown as its label only
        assert "<" not in rendered and ">" not in rendered
    else:
        assert rendered.startswith("<https://x.example/") and rendered.endswith(">")
        assert rendered.count("<") == 1 and rendered.count(">") == 1


def test_message_blocks_respect_slack_limits() -> None:
    long = "x" * 5000
    message = Message(
        headline="h" * 300,
        lines=((Text(long),), (Text("&" * 2000),)),
        fields=tuple((f"f{n}", (Text("<" * 3000),)) for n in range(12)),
        buttons=tuple(Button("★" * 100, Action.RATE, f"1:{n}") for n in range(5)),
        footer=(Text("foot"),),
        accent="high",
    )
    blocks = ui.message_blocks(message, BERLIN)
    assert len(blocks[0]["text"]["text"]) <= 150
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections if "text" in b)
    field_sections = [b for b in sections if "fields" in b]
    assert [len(b["fields"]) for b in field_sections] == [10, 2]
    assert all(len(f["text"]) <= 2000 for b in field_sections for f in b["fields"])
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "mm_rate",
        "mm_rate.2",
        "mm_rate.3",
        "mm_rate.4",
        "mm_rate.5",
    ]
    assert all(len(e["text"]["text"]) <= 75 for e in actions["elements"])
    assert ui.fallback_text(Message(headline="<!here>")) == "&lt;!here&gt;"


def test_view_values_and_errors() -> None:
    from modals import forms

    view = ui.form_view(forms.SCHEDULE_FORM, callback_id="x", metadata={"r": 3}, choices={"slot": []})
    assert "slot" not in {b.get("block_id") for b in view["blocks"]}
    view["state"] = {
        "values": {
            "starts_at": {"starts_at": {"type": "datetimepicker", "selected_date_time": 1894028400}},
            "meeting_url": {"meeting_url": {"type": "url_text_input", "value": "https://x.example"}},
            "note": {"note": {"type": "plain_text_input", "value": None}},
        }
    }
    assert ui.view_values(view, forms.SCHEDULE_FORM) == {
        "slot": None,
        "starts_at": "1894028400",
        "meeting_url": "https://x.example",
        "note": None,
    }
    assert ui.metadata_of(view) == {"r": 3}
    assert ui.view_errors(view, {"slot": "a", "note": "b", "starts_at": "c"}) == {
        "starts_at": "a c",
        "note": "b",
    }
    assert ui.view_values({"state": "garbage"}, forms.SCHEDULE_FORM)["note"] is None
    assert ui.metadata_of({"private_metadata": "not json"}) == {}


@given(st.text(alphabet="ab<>&\n", max_size=8000))
def test_long_lines_are_split_whole(text: str) -> None:
    """Lines past a section's 3,000 characters go to more sections, every entity whole: joined
    back, the sections are the escaped text (less the line breaks at the cuts)."""
    message = Message(headline="h", lines=((Text("Title", bold=True),), (Text(text),)))
    sections = [b["text"]["text"] for b in ui.message_blocks(message, BERLIN) if b["type"] == "section"]
    assert all(len(s) <= 3000 for s in sections)
    assert sections[0].startswith("*Title*")
    joined = "".join(sections).replace("\n", "")
    assert joined.removeprefix("*Title*").strip() == escape(text).replace("\n", "").strip()
