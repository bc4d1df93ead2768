"""Charts on Slack: `/mini-session stats [4|12|52]` uploads the PNGs (files.getUploadURLExternal,
the upload, files.completeUploadExternal) to the admin's DM and shows them as `slack_file` image
blocks with their alt text; the admin's App Home has a Program section; everything passes the
fake Slack's Block Kit validation (checked by the `fake` fixture on teardown)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.slack.harness import ADMIN, MENTOR, MENTORS, STUDENT, SlackHarness, block_text
from tests.slack.test_flow import _request


def images(blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [b for b in blocks or [] if b.get("type") == "image"]


async def test_stats_reply_shows_uploaded_charts_with_alt_text(slack: SlackHarness) -> None:
    await _request(slack, tags="python, career")
    await slack.click_in(MENTOR, MENTORS, "mm_claim")
    await slack.settle()
    answer = await slack.command(ADMIN, "stats 4")
    await slack.settle()
    [reply] = slack.replies(answer)
    shown = images(reply["blocks"])
    pngs = [f for f in slack.fake.files if f["filename"].endswith(".png")]
    assert [f["filename"] for f in pngs] == [
        "mentorship-volume-4w.png",
        "mentorship-claim_time-4w.png",
        "mentorship-tags-4w.png",
    ]
    assert [b["slack_file"]["id"] for b in shown] == [f["id"] for f in pngs]
    for block, upload in zip(shown, pngs, strict=True):
        assert upload["channels"] == ["DUADMIN"] and upload["image_type"] == "png"
        assert Image.open(io.BytesIO(upload["content"])).size == (800, 400)
        assert block["alt_text"] == upload["alt_txt"]
    assert shown[0]["alt_text"].startswith("Requests per week over the last 4 weeks: 1 posted, 1 claimed")
    assert shown[2]["alt_text"] == "Requests per tag, top 2: career 1, python 1."
    assert [c.method for c in slack.fake.calls].count("files.completeUploadExternal") == 2  # CSV + charts
    # The same drawing again: the files already in the DM are shown, nothing is uploaded twice.
    again = await slack.command(ADMIN, "stats 4")
    await slack.settle()
    assert [b["slack_file"] for b in images(slack.replies(again)[0]["blocks"])] == [
        b["slack_file"] for b in shown
    ]
    assert len([f for f in slack.fake.files if f["filename"].endswith(".png")]) == 3


async def test_stats_range_and_empty_state(slack: SlackHarness) -> None:
    answer = await slack.command(ADMIN, "stats 7")
    await slack.settle()
    assert "Choose a range of 4, 12 or 52 weeks" in slack.reply_text(answer)
    answer = await slack.command(ADMIN, "stats 52")
    await slack.settle()
    text = slack.reply_text(answer)
    assert "No requests in the last 52 weeks yet, so there is nothing to chart." in text
    assert not slack.fake.files and not images(slack.replies(answer)[0]["blocks"])


async def test_program_section_on_the_admins_home_only(slack: SlackHarness) -> None:
    await slack.home_opened(ADMIN)
    await slack.settle()
    home = slack.fake.home_tabs[ADMIN]
    assert "Program — last 12 weeks" in block_text(home["blocks"])
    assert "nothing to chart" in block_text(home["blocks"]) and not images(home["blocks"])

    await _request(slack)
    await slack.home_opened(ADMIN)
    await slack.settle()
    shown = images(slack.fake.home_tabs[ADMIN]["blocks"])
    assert [b["title"]["text"] for b in shown] == ["Requests per week", "Requests per tag (top 10)"]
    assert shown[0]["alt_text"].startswith("Requests per week over the last 12 weeks: 1 posted, 0 claimed")
    # The Home's files are the bot's own, shared nowhere (no DM message for each redraw).
    assert all(f["channels"] == [] for f in slack.fake.files)
    uploads = len(slack.fake.files)
    await slack.home_opened(ADMIN)  # unchanged data: the cached drawing and its files
    await slack.settle()
    assert len(slack.fake.files) == uploads

    await slack.home_opened(STUDENT)
    await slack.settle()
    student_home = slack.fake.home_tabs[STUDENT]
    assert "Program" not in block_text(student_home["blocks"]) and not images(student_home["blocks"])


async def test_a_tag_with_backticks_stays_inside_the_stats_table(slack: SlackHarness) -> None:
    """A tag like "```*urgent*" closed the table's code block early: the rest of the table was
    drawn as mrkdwn (bold, misaligned). Mentor names already had their backticks replaced."""
    await _request(slack, tags="```*urgent*, python")
    answer = await slack.command(ADMIN, "stats")
    await slack.settle()
    [reply] = slack.replies(answer)
    [table] = [
        b["text"]["text"]
        for b in reply["blocks"]
        if b.get("type") == "section" and "Demand against supply" in b.get("text", {}).get("text", "")
    ]
    assert table.count("```") == 2 and table.endswith("```"), table
    assert "'''*urgent*" in table
