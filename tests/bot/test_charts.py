"""The charts: PNGs decoded with Pillow (size, and that each chart drew something), alt texts
that state the numbers, the empty state, and the per-workspace cache redrawn on change."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date, timedelta

from PIL import Image

from bot.charts import EMPTY, draw
from bot.clock import ManualClock
from bot.domain import Ok, Refused
from bot.insight import ClaimTimes, Figures, MentorLoad, TagDemand, WeekCounts
from bot.runtime import Runtime
from tests.conftest import ADMIN, MENTOR, STUDENT, request_form

H = timedelta(hours=1)


def sample() -> Figures:
    weeks = [
        WeekCounts(date(2030, 2, 11) + timedelta(weeks=i), p, c, d)
        for i, (p, c, d) in enumerate([(3, 1, 0), (0, 0, 0), (5, 4, 2), (2, 2, 3)])
    ]
    return Figures(
        4,
        date(2030, 2, 11),
        weeks,
        [
            ClaimTimes("high", 2, 0.5 * H, H, 2 * H, 3 * H, 4 * H),
            ClaimTimes("normal", 5, H, 2 * H, 5 * H, 9 * H, 30 * H),
        ],
        [TagDemand("python", 6), TagDemand("career", 2)],
        [MentorLoad("U1", "Mia", 4, 1, 4.75, 4), MentorLoad("U2", "Noor", 1, 0, None, 0)],
    )


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_each_chart_is_a_drawn_png_with_its_numbers_in_the_alt_text() -> None:
    charts = draw(sample())
    assert charts.empty_note is None
    assert [c.key for c in charts.charts] == ["volume", "claim_time", "tags", "mentors"]
    for chart in charts.charts:
        image = decoded(chart.png)
        assert image.format == "PNG" and image.size == (800, 400)
        # Drawn, not blank: many distinct colours (bars, text, antialiasing), not a white canvas.
        colours = image.convert("RGB").getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 50
    alt = {c.key: c.alt_text for c in charts.charts}
    assert alt["volume"] == (
        "Requests per week over the last 4 weeks: 10 posted, 7 claimed, 5 completed. "
        "Busiest week: 25 Feb 2030 with 5 posted; this week 2 posted."
    )
    assert alt["claim_time"] == (
        "Time to claim per urgency. high: median 2.0 h over 2 claimed, 90% within 4.0 h; "
        "normal: median 5.0 h over 5 claimed, 90% within 30.0 h."
    )
    assert alt["tags"] == "Requests per tag, top 2: python 6, career 2."
    assert alt["mentors"] == (
        "Sessions and average rating per mentor: Mia 4 sessions, 4.8 stars, 1 no-show; Noor 1 session."
    )
    assert {c.key: c.title for c in charts.charts}["tags"] == "Requests per tag (top 10)"


def test_user_text_with_dollar_signs_is_drawn_as_text_not_tex() -> None:
    """A tag like "$\\frac{$" or a name with "$" once made matplotlib's TeX parser raise, and
    every admin's stats failed with it."""
    f = sample()
    f = Figures(
        f.weeks,
        f.since,
        f.weekly,
        f.claim_times,
        [TagDemand("$\\frac{$", 3), TagDemand("$x^2$", 1)],
        [MentorLoad("U1", "Mia $\\frac{$", 2, 0, 5.0, 2)],
    )
    charts = draw(f)
    assert [c.key for c in charts.charts] == ["volume", "claim_time", "tags", "mentors"]
    assert all(decoded(c.png).format == "PNG" for c in charts.charts)
    assert "$\\frac{$ 3" in {c.key: c.alt_text for c in charts.charts}["tags"]


def test_supply_and_targets_once_they_are_passed_in() -> None:
    figures = sample()
    with_supply = Figures(
        figures.weeks,
        figures.since,
        figures.weekly,
        [ClaimTimes("high", 2, 0.5 * H, H, 2 * H, 3 * H, 4 * H, target=4 * H)],
        [TagDemand("python", 6, mentors=1), TagDemand("career", 2, mentors=3)],
        figures.mentors,
    )
    charts = {c.key: c for c in draw(with_supply).charts}
    assert charts["tags"].title == "Demand vs supply per tag"
    assert (
        charts["tags"].alt_text
        == "Demand and supply per tag (requests, mentors), top 2: python 6/1, career 2/3."
    )
    assert charts["claim_time"].alt_text == (
        "Time to claim per urgency. high: median 2.0 h over 2 claimed, 90% within 4.0 h, "
        "target 4.0 h (median within it)."
    )


def test_no_data_is_a_friendly_sentence_not_an_empty_plot() -> None:
    empty = Figures(
        4,
        date(2030, 2, 11),
        [WeekCounts(date(2030, 2, 11) + timedelta(weeks=i), 0, 0, 0) for i in range(4)],
        [],
        [],
        [],
    )
    charts = draw(empty)
    assert charts.charts == [] and charts.empty_note == EMPTY.format(weeks=4)


def test_only_charts_with_data_are_drawn() -> None:
    figures = sample()
    posted_only = Figures(figures.weeks, figures.since, figures.weekly, [], [], [])
    charts = draw(posted_only)
    assert [c.key for c in charts.charts] == ["volume"]


async def test_charts_are_cached_per_workspace_and_range_until_the_data_changes(
    runtime: Runtime, clock: ManualClock
) -> None:
    stats = runtime.stats
    refused = await stats.charts(STUDENT, 12)
    assert isinstance(refused, Refused) and refused.message == "Only admins can see stats."
    first = await stats.charts(ADMIN, 12)
    assert isinstance(first, Ok) and first.value.empty_note and stats.drawn == 1
    again = await stats.charts(ADMIN, 12)
    assert isinstance(again, Ok) and again.value is first.value and stats.drawn == 1
    other_range = await stats.charts(ADMIN, 4)
    assert isinstance(other_range, Ok) and other_range.value is not first.value and stats.drawn == 2
    # A new request changes the data: redrawn, now with a chart.
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    fresh = await stats.charts(ADMIN, 12)
    assert (
        isinstance(fresh, Ok)
        and stats.drawn == 3
        and [c.key for c in fresh.value.charts] == ["volume", "tags"]
    )
    # A claim is a change too.
    assert isinstance(await runtime.mentorship.claim(MENTOR, created.value.id), Ok)
    claimed = await stats.charts(ADMIN, 12)
    assert (
        isinstance(claimed, Ok) and stats.drawn == 4 and "claim_time" in [c.key for c in claimed.value.charts]
    )
    # Unchanged data, but the cache lasts only a few minutes.
    await stats.charts(ADMIN, 12)
    assert stats.drawn == 4
    clock.advance(timedelta(minutes=6))
    await stats.charts(ADMIN, 12)
    assert stats.drawn == 5


def test_matplotlib_loads_only_when_a_chart_is_drawn() -> None:
    """The idle memory bar: starting every part of the app must not import matplotlib."""
    code = (
        "import sys, bot.cli, bot.runtime, bot.stats, bot.charts\n"
        "import handlers.slack, handlers.discord, jobs.sweeps\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at start'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def _red_pixels(png: bytes) -> int:
    """Pixels of the target line's red (#C44E52), give or take anti-aliasing."""
    data = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    pixels = zip(data[0::3], data[1::3], data[2::3], strict=True)
    return sum(1 for r, g, b in pixels if abs(r - 196) < 12 and abs(g - 78) < 12 and abs(b - 82) < 12)


def test_the_target_line_is_drawn_only_when_there_is_a_target() -> None:
    figures = sample()

    def claim_png(target: timedelta | None) -> bytes:
        times = [ClaimTimes("high", 2, 0.5 * H, H, 2 * H, 3 * H, 4 * H, target=target)]
        with_times = Figures(
            figures.weeks, figures.since, figures.weekly, times, figures.tags, figures.mentors
        )
        return next(c.png for c in draw(with_times).charts if c.key == "claim_time")

    assert _red_pixels(claim_png(None)) == 0
    assert _red_pixels(claim_png(6 * H)) > 100  # a dashed line across the row


async def test_the_charts_carry_the_configured_targets(runtime: Runtime, clock: ManualClock) -> None:
    """CLAIM_TARGET_HOURS reaches the time-to-claim figures on both engines (the runtime's
    settings: high=4, normal=24, low=72 by default)."""
    high = await runtime.mentorship.create_request(STUDENT, request_form(urgency="high"))
    assert isinstance(high, Ok)
    clock.advance(hours=1)
    assert isinstance(await runtime.mentorship.claim(MENTOR, high.value.id), Ok)
    figures = await runtime.stats.figures(ADMIN, 4)
    assert isinstance(figures, Ok)
    assert [(c.urgency, c.median, c.target) for c in figures.value.claim_times] == [("high", H, 4 * H)]
    charts = await runtime.stats.charts(ADMIN, 4)
    assert isinstance(charts, Ok)
    [claim] = [c for c in charts.value.charts if c.key == "claim_time"]
    assert (
        "high: median 1.0 h over 1 claimed, 90% within 1.0 h, target 4.0 h (median within it)"
        in claim.alt_text
    )
    assert _red_pixels(claim.png) > 100


def _legend_overlaps(drawer_name: str, f: Figures) -> list[str]:
    """Draw one chart as bot.charts does and name the bars its legend covers."""
    from bot import charts

    axes = charts._axes()
    assert getattr(charts, drawer_name)(axes, f)
    axes.figure.canvas.draw()
    legend = axes.get_legend()
    if legend is None:
        return []
    box = legend.get_window_extent()
    bars = [
        f"bar {i} ({bar.get_label()})"
        for i, bar in enumerate(axes.patches)
        if bar.get_width() > 0 and bar.get_height() > 0 and box.overlaps(bar.get_window_extent())
    ]
    notes = [f"label {t.get_text()!r}" for t in axes.texts if box.overlaps(t.get_window_extent())]
    return bars + notes


def test_a_legend_never_covers_the_bars_of_a_small_program() -> None:
    """One request whose tags a mentor lists: every bar of the tag chart is as long as the
    longest, and the legend ("best" place) was drawn over the first one."""
    week = date(2030, 2, 11)
    one_request = Figures(
        4,
        week,
        [WeekCounts(week + timedelta(weeks=i), 1 if i == 3 else 0, 1 if i == 3 else 0, 0) for i in range(4)],
        [ClaimTimes("normal", 1, H, H, H, H, H, target=24 * H)],
        [TagDemand("python", 1, mentors=1), TagDemand("api", 1, mentors=1), TagDemand("sql", 1, mentors=1)],
        [MentorLoad("U1", "Mia", 1, 0, 5.0, 1)],
    )
    for drawer in ("_volume", "_tags", "_mentors"):
        assert _legend_overlaps(drawer, one_request) == [], drawer


def test_a_legend_never_covers_the_bars_of_a_busy_program() -> None:
    """Every week about as busy as the others, ten mentors with ten sessions each: the volume
    chart's legend ("best" place) sat on the last weeks' bars, the mentor chart's ("lower
    right") on the last mentors' bars and ratings."""
    week = date(2030, 2, 11)
    busy = Figures(
        12,
        week,
        [WeekCounts(week + timedelta(weeks=i), 40 + i % 3, 38, 35) for i in range(12)],
        [ClaimTimes("normal", 400, H, 2 * H, 3 * H, 5 * H, 9 * H, target=24 * H)],
        [TagDemand(f"tag{i}", 50, mentors=50) for i in range(10)],
        [MentorLoad(f"U{i}", f"Mentor {i}", 10, 1, 4.5, 8) for i in range(10)],
    )
    for drawer in ("_volume", "_tags", "_mentors"):
        assert _legend_overlaps(drawer, busy) == [], drawer


def _clipped_labels(drawer_name: str, f: Figures) -> list[str]:
    """Draw one chart as bot.charts does and name the tick labels that run off the image."""
    from bot import charts

    axes = charts._axes()
    assert getattr(charts, drawer_name)(axes, f)
    axes.figure.canvas.draw()
    return [label.get_text() for label in axes.get_yticklabels() if label.get_window_extent().x0 < 0]


def test_long_mentor_names_and_tags_stay_inside_the_image() -> None:
    """Names and tags were cut to 24 characters, but the left margin holds about 16: the
    start of a long name or tag ran off the image ("dria Konstantinopo")."""
    week = date(2030, 2, 11)
    long = Figures(
        4,
        week,
        [WeekCounts(week + timedelta(weeks=i), 1, 1, 1) for i in range(4)],
        [],
        [TagDemand("kubernetes-observability", 3, mentors=1), TagDemand("python", 1, mentors=2)],
        [
            MentorLoad("U1", "Alexandria Konstantinopoulou", 3, 0, 4.5, 2),
            MentorLoad("U2", "Mia", 1, 0, None, 0),
        ],
    )
    for drawer in ("_tags", "_mentors"):
        assert _clipped_labels(drawer, long) == [], drawer


async def test_a_mentor_saving_a_profile_redraws_the_tag_chart(runtime: Runtime) -> None:
    """The tag chart becomes "Demand vs supply" once a mentor lists tags; the cached drawing
    (stamped by requests and sessions only) kept showing requests alone for five minutes."""
    assert isinstance(await runtime.mentorship.create_request(STUDENT, request_form()), Ok)
    before = await runtime.stats.charts(ADMIN, 4)
    assert isinstance(before, Ok)
    assert {c.key: c.title for c in before.value.charts}["tags"] == "Requests per tag (top 10)"
    saved = await runtime.mentorship.save_profile(MENTOR, {"skills": "python", "capacity": "2"})
    assert isinstance(saved, Ok)
    after = await runtime.stats.charts(ADMIN, 4)
    assert isinstance(after, Ok)
    [tags] = [c for c in after.value.charts if c.key == "tags"]
    assert tags.title == "Demand vs supply per tag"
    assert tags.alt_text == (
        "Demand and supply per tag (requests, mentors), top 2: interviews 1/0, python 1/1."
    )


async def test_weeks_with_claims_but_no_new_requests_name_no_busiest_week(
    runtime: Runtime, clock: ManualClock
) -> None:
    """A request posted on a Sunday and claimed on the Monday, seen three weeks later over 4
    weeks: nothing was posted in the range, and the alt text named its first week the busiest,
    "with 0 posted"."""
    sunday = request_form(available_from="2030-01-13", available_until="2030-01-17")
    clock.set(clock.now() + timedelta(days=6))  # Sunday 2030-01-13
    created = await runtime.mentorship.create_request(STUDENT, sunday)
    assert isinstance(created, Ok)
    clock.advance(timedelta(days=1))  # Monday 2030-01-14: a new week
    assert isinstance(await runtime.mentorship.claim(MENTOR, created.value.id), Ok)
    clock.advance(timedelta(weeks=3))
    charts = await runtime.stats.charts(ADMIN, 4)
    assert isinstance(charts, Ok)
    [volume] = [c for c in charts.value.charts if c.key == "volume"]
    assert volume.alt_text == (
        "Requests per week over the last 4 weeks: 0 posted, 1 claimed, 0 completed. "
        "No request was posted in these weeks."
    )
