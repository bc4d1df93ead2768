"""The README's code map ("How it is built") names every module of the core, the handlers and the
renderers, so a newcomer can find any file from it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_how_it_is_built_lists_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## How it is built", 1)[1].split("\n## ", 1)[0]
    for package in ("bot", "handlers", "modals", "storage", "jobs", "fakes"):
        assert f"{package}/" in section
        for module in sorted((ROOT / package).glob("*.py")):
            if module.name != "__init__.py":
                assert module.name in section, f"README's code map does not list {package}/{module.name}"
