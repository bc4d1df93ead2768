"""The CSV export's formula guard: a cell a spreadsheet would run as a formula is kept as text,
whether it starts with the ASCII sign, its full-width form, or invisible characters before it."""

from __future__ import annotations

import pytest

from bot.stats import _csv_safe


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\t=1",
        '＝HYPERLINK("http://x")',
        "＋1",
        "－1",
        "＠SUM(A1)",
        "\u200b=1",
        "\u200d\u200c=1",
        "\ufeff=1",
        "\u2060@x",
        " =1",
    ],
)
def test_formula_starts_are_guarded(text: str) -> None:
    assert _csv_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["Mock interview", "", "1+1", "a=b", "Ｐython", "\u200bplain"])
def test_plain_text_is_left_alone(text: str) -> None:
    assert _csv_safe(text) == text
