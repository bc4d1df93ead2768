"""Charts on Discord: `/mini-session stats [weeks]` answers, ephemerally, with the stats embed,
one embed per chart showing its PNG attachment (alt text as the embed's text and the
attachment's description), and the CSV; the friendly sentence when there is nothing to chart."""

from __future__ import annotations

import io

from PIL import Image

from tests.discord.conftest import World


async def test_stats_charts_arrive_as_attachments_inside_embeds(world: World) -> None:
    rid, _ = await world.post_request()
    await world.mia.click(await world.card(rid), label="Claim")

    report = await world.ada.slash(world.lobby, "mini-session stats", weeks=4)
    assert report.response.ephemeral
    stats, *charts = report.response.embeds
    assert stats.title == "Mini Mentorship — stats"
    assert [e.title for e in charts] == [
        "Requests per week",
        "Time to claim per urgency",
        "Requests per tag (top 10)",
    ]
    files = {a.filename: a for a in report.response.attachments}
    assert set(files) == {
        "mini-mentorship-stats.csv",
        "mini-mentorship-summary.csv",
        "mentorship-volume-4w.png",
        "mentorship-claim_time-4w.png",
        "mentorship-tags-4w.png",
    }
    for embed in charts:
        assert embed.image.url is not None
        name = embed.image.url.rsplit("/", 1)[-1]
        attachment = files[name]
        image = Image.open(io.BytesIO(await attachment.read()))
        assert image.format == "PNG" and image.size == (800, 400)
        assert attachment.description == embed.description
    assert (charts[0].description or "").startswith(
        "Requests per week over the last 4 weeks: 1 posted, 1 claimed"
    )


async def test_stats_with_no_data_says_so_and_students_are_refused(world: World) -> None:
    report = await world.ada.slash(world.lobby, "mini-session stats", weeks=52)
    stats, note = report.response.embeds
    assert stats.title == "Mini Mentorship — stats"
    assert note.description == (
        "No requests in the last 52 weeks yet, so there is nothing to chart. "
        "Charts appear here once students post requests."
    )
    assert [a.filename for a in report.response.attachments] == [
        "mini-mentorship-stats.csv",
        "mini-mentorship-summary.csv",
    ]
    refused = await world.ola.slash(world.lobby, "mini-session stats", weeks=12)
    assert refused.response.content == "Only admins can see stats." and not refused.response.attachments
