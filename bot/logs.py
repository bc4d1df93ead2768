"""Log set-up for the CLI: human-readable lines by default, or LOG_FORMAT=json for one JSON
object per line (time, level, logger, message, and exc_info when there is a traceback) for log
collectors."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that are chatty at INFO/DEBUG about things an operator never acts on.
NOISY = ("aiosqlite", "sqlalchemy.engine", "discord.gateway", "slack_bolt.App", "slack_bolt.AsyncApp")


_OURS = "_mini_mentorship_handler"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(*, verbose: bool = False, fmt: str | None = None) -> None:
    """Set up the root logger. `fmt` defaults to LOG_FORMAT from the environment; the CLI calls
    this again with the validated setting once the configuration (and .env) is read."""
    chosen = (fmt or os.environ.get("LOG_FORMAT") or "text").strip().lower()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _OURS, False):  # only our own: a test runner's handlers stay
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
