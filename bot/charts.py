"""The admin charts as PNG images, with alt text that states their main numbers.

matplotlib (Agg, object-oriented API: no pyplot, no global state) is imported inside `draw`,
so a process that never draws a chart never loads it (the idle memory bar). Alt texts and empty
states need no matplotlib. Nothing here queries the database or knows a platform.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.insight import Figures

EMPTY = (
    "No requests in the last {weeks} weeks yet, so there is nothing to chart. "
    "Charts appear here once students post requests."
)
WIDTH, HEIGHT, DPI = 8.0, 4.0, 100  # 800 × 400 px
LABEL_CHARS = 22  # a tag or name beside a bar, at most (the alt text has them whole)
# Draws run in worker threads; matplotlib's caches (fonts, text layout) are not thread-safe.
_DRAWING = threading.Lock()


@dataclass(frozen=True)
class Chart:
    key: str  # file name stem: volume, claim_time, tags, mentors
    title: str
    alt_text: str
    png: bytes


@dataclass(frozen=True)
class ChartSet:
    weeks: int
    charts: list[Chart]
    empty_note: str | None  # the friendly sentence shown instead of charts

    def files(self) -> list[tuple[str, bytes]]:
        return [(f"mentorship-{c.key}-{self.weeks}w.png", c.png) for c in self.charts]


def hours(value: timedelta) -> str:
    total = value.total_seconds() / 3600
    if total < 1:
        return f"{round(total * 60)} min"
    if total < 48:
        return f"{total:.1f} h"
    return f"{total / 24:.1f} days"


def _volume_alt(f: Figures) -> str:
    posted, claimed, completed = (
        sum(getattr(w, k) for w in f.weekly) for k in ("posted", "claimed", "completed")
    )
    busiest = max(f.weekly, key=lambda w: w.posted)
    head = (
        f"Requests per week over the last {f.weeks} weeks: {posted} posted, {claimed} claimed, "
        f"{completed} completed. "
    )
    if not posted:  # claims or completions of older requests only: no week is the busiest
        return head + "No request was posted in these weeks."
    return head + (
        f"Busiest week: {busiest.week:%d %b %Y} with {busiest.posted} posted; "
        f"this week {f.weekly[-1].posted} posted."
    )


def _claim_alt(f: Figures) -> str:
    parts = [
        f"{c.urgency}: median {hours(c.median)} over {c.count} claimed, 90% within {hours(c.p90)}"
        + (
            f", target {hours(c.target)} ({'median within it' if c.median <= c.target else 'median over it'})"
            if c.target is not None
            else ""
        )
        for c in f.claim_times
    ]
    return "Time to claim per urgency. " + (
        "; ".join(parts) + "." if parts else "No request was claimed yet."
    )


def _tags_alt(f: Figures) -> str:
    if not f.tags:
        return "Requests per tag: no request has tags yet."
    supply = f.tags[0].mentors is not None
    head = "Demand and supply per tag (requests, mentors)" if supply else "Requests per tag"
    items = [f"{t.tag} {t.requests}" + (f"/{t.mentors}" if supply else "") for t in f.tags]
    return f"{head}, top {len(f.tags)}: " + ", ".join(items) + "."


def _mentors_alt(f: Figures) -> str:
    if not f.mentors:
        return "Sessions per mentor: no session was completed yet."
    items = [
        f"{m.name} {m.sessions} session{'s' if m.sessions != 1 else ''}"
        + (f", {m.average_rating:.1f} stars" if m.average_rating is not None else "")
        + (f", {m.no_shows} no-show{'s' if m.no_shows != 1 else ''}" if m.no_shows else "")
        for m in f.mentors
    ]
    return "Sessions and average rating per mentor: " + "; ".join(items) + "."


def alt_texts(f: Figures) -> dict[str, str]:
    return {
        "volume": _volume_alt(f),
        "claim_time": _claim_alt(f),
        "tags": _tags_alt(f),
        "mentors": _mentors_alt(f),
    }


TITLES = {
    "volume": "Requests per week",
    "claim_time": "Time to claim per urgency",
    "tags": "Requests per tag (top 10)",
    "mentors": "Sessions and rating per mentor",
}


def draw(f: Figures) -> ChartSet:
    """Every chart with something to show; a friendly note instead when there is no data."""
    if f.empty:
        return ChartSet(f.weeks, [], EMPTY.format(weeks=f.weeks))
    alts = alt_texts(f)
    drawers = {"volume": _volume, "claim_time": _claim_time, "tags": _tags, "mentors": _mentors}
    charts = []
    with _DRAWING:
        drawn = {key: _render(drawer, f) for key, drawer in drawers.items()}
    for key, png in drawn.items():
        if png is not None:
            title = (
                TITLES[key]
                if key != "tags" or not f.tags or f.tags[0].mentors is None
                else "Demand vs supply per tag"
            )
            charts.append(Chart(key, title, alts[key], png))
    return ChartSet(f.weeks, charts, None)


def _render(drawer: Any, f: Figures) -> bytes | None:
    from matplotlib import rc_context

    # Tags and names are user text: "$x^2$" or a lone "$" is drawn as typed, never parsed as TeX
    # (an unbalanced one would raise and take every chart down).
    with rc_context({"text.parse_math": False}):
        return _draw(drawer, f)


def _axes() -> Any:
    """The axes of one chart, on a figure of the charts' size and margins."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Fixed margins: constrained layout costs more than the drawing itself.
    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    figure.subplots_adjust(left=0.17, right=0.97, top=0.9, bottom=0.2)
    FigureCanvasAgg(figure)
    return figure.add_subplot()


def _draw(drawer: Any, f: Figures) -> bytes | None:
    axes = _axes()
    if not drawer(axes, f):
        return None
    axes.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    # Fast zlib: the PNGs are small either way, and encoding was a fifth of the drawing time.
    axes.figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _volume(ax: Any, f: Figures) -> bool:
    labels = [f"{w.week:%d %b}" for w in f.weekly]
    x = range(len(labels))
    width = 0.27
    for offset, key, colour in (
        (-width, "posted", "#4C72B0"),
        (0, "claimed", "#DD8452"),
        (width, "completed", "#55A868"),
    ):
        ax.bar([i + offset for i in x], [getattr(w, key) for w in f.weekly], width, label=key, color=colour)
    step = max(1, len(labels) // 13)
    ax.set_xticks(list(x)[::step], labels[::step], rotation=45 if len(labels) > 13 else 0, fontsize=8)
    ax.set_title(TITLES["volume"])
    ax.set_ylabel("requests")
    ax.yaxis.get_major_locator().set_params(integer=True)
    # Headroom above the tallest bar for the legend, in one row: in a busy program every week
    # reaches about as high, and no place among the bars is free.
    tallest = max(max(w.posted, w.claimed, w.completed) for w in f.weekly)
    ax.set_ylim(0, max(tallest, 1) * 1.25)
    ax.legend(frameon=False, loc="upper right", ncols=3)
    return True


def _claim_time(ax: Any, f: Figures) -> bool:
    if not f.claim_times:
        return False
    for i, c in enumerate(f.claim_times):
        h = [v.total_seconds() / 3600 for v in (c.p10, c.p25, c.median, c.p75, c.p90)]
        ax.plot([h[0], h[4]], [i, i], color="#4C72B0", linewidth=1.5)  # 10th to 90th percentile
        ax.barh(i, h[3] - h[1], left=h[1], height=0.4, color="#A1C4E8", edgecolor="#4C72B0")
        # The median is a dark mark in the box; the urgency's first-claim target, when there is
        # one, a dashed red line across its row.
        ax.vlines(h[2], i - 0.2, i + 0.2, color="#1F3B5C", linewidth=2.5)
        label = f"median {hours(c.median)} (n={c.count})"
        if c.target is not None:
            target = c.target.total_seconds() / 3600
            ax.vlines(target, i - 0.38, i + 0.38, color="#C44E52", linewidth=2, linestyles="dashed")
            label = f"target {hours(c.target)} · {label}"
        ax.annotate(
            label,
            (max(h[4], c.target.total_seconds() / 3600 if c.target is not None else 0), i),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    # From zero, with room for the labels: a single sample must not zoom into a sliver.
    widest = max(max(c.p90, c.target or c.p90).total_seconds() / 3600 for c in f.claim_times)
    ax.set_xlim(0, max(widest * 1.6, 1.0))
    ax.set_yticks(range(len(f.claim_times)), [c.urgency for c in f.claim_times])
    ax.invert_yaxis()
    targets = any(c.target is not None for c in f.claim_times)
    ax.set_xlabel(
        "hours from posting to claim (box: middle half; line: 10th–90th percentile"
        + ("; dashed red: target)" if targets else ")")
    )
    ax.set_title(TITLES["claim_time"])
    return True


def _tags(ax: Any, f: Figures) -> bool:
    if not f.tags:
        return False
    y = range(len(f.tags))
    supply = f.tags[0].mentors is not None
    height = 0.4 if supply else 0.6
    ax.barh(
        [i - (height / 2 if supply else 0) for i in y],
        [t.requests for t in f.tags],
        height,
        label="requests",
        color="#4C72B0",
    )
    if supply:
        ax.barh(
            [i + height / 2 for i in y],
            [t.mentors or 0 for t in f.tags],
            height,
            label="mentors",
            color="#55A868",
        )
        _legend_below(ax)
    _bar_labels(ax, [t.tag for t in f.tags])
    ax.invert_yaxis()
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Demand vs supply per tag" if supply else TITLES["tags"])
    return True


def _mentors(ax: Any, f: Figures) -> bool:
    if not f.mentors:
        return False
    y = range(len(f.mentors))
    ax.barh(list(y), [m.sessions for m in f.mentors], 0.6, color="#55A868", label="sessions")
    ax.barh(
        list(y),
        [m.no_shows for m in f.mentors],
        0.6,
        left=[m.sessions for m in f.mentors],
        color="#C44E52",
        label="no-shows",
    )
    for i, m in enumerate(f.mentors):
        rating = f"{m.average_rating:.1f} ★" if m.average_rating is not None else "no rating"
        ax.annotate(
            rating,
            (m.sessions + m.no_shows, i),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, max(m.sessions + m.no_shows for m in f.mentors) * 1.15 + 0.5)  # room for the ratings
    _bar_labels(ax, [m.name for m in f.mentors])
    ax.invert_yaxis()
    ax.xaxis.get_major_locator().set_params(integer=True)
    _legend_below(ax)
    ax.set_title(TITLES["mentors"])
    return True


def _bar_labels(ax: Any, names: list[str]) -> None:
    """Tags or names beside horizontal bars, shortened with an ellipsis, in a left margin wide
    enough for them: the default one holds about 16 characters, and a longer label ran off."""
    ax.figure.subplots_adjust(left=0.25)
    ax.set_yticks(
        range(len(names)), [n if len(n) <= LABEL_CHARS else n[: LABEL_CHARS - 1] + "…" for n in names]
    )


def _legend_below(ax: Any) -> None:
    """The legend under the axes, at the right: with every bar about as long as the longest
    (one request with a few tags; mentors with as many sessions each) no place inside is free."""
    ax.legend(frameon=False, loc="upper right", bbox_to_anchor=(1.0, -0.08), ncols=2)
