"""Start-up checks as an operator meets them: the real CLI, a bad setting, exit 2 and a reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.cli import _parser, main
from tests.bot.test_cli import CONTRACT_VARIABLES

PG = "postgresql+psycopg://postgres:s3cret@127.0.0.1:5432"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*CONTRACT_VARIABLES, "REMINDER_OFFSETS"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def _postgres_up() -> bool:
    try:
        psycopg.connect("host=127.0.0.1 user=postgres dbname=test", connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


needs_postgres = pytest.mark.skipif(not _postgres_up(), reason="no PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"startup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@needs_postgres
@pytest.mark.parametrize("command", [["jobs", "--once"], ["migrate"]])
def test_missing_postgres_database_says_create_then_migrate(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"{PG}/no_such_database_here")
    err = _fails(command, capsys)
    assert "'no_such_database_here'" in err and "does not exist" in err
    assert "createdb no_such_database_here" in err and "mini-mentorship migrate" in err
    assert "s3cret" not in err


@needs_postgres
def test_a_database_a_newer_release_migrated_still_serves_this_one(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rolling upgrade: the new release migrated to a revision this code does not know. This
    release's processes still start (migrations only add), and its `migrate` changes nothing."""
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{empty_database}")
    assert main(["migrate"]) == 0
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={empty_database}", autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    capsys.readouterr()
    assert main(["jobs", "--once"]) == 0
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "schema revision 9999, newer than this version knows" in out and "Nothing was changed" in out
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={empty_database}") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("9999",)


def test_a_newer_sqlite_file_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "bot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    assert main(["migrate"]) == 0
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    assert main(["jobs", "--once"]) == 0  # SQLite migrates on start: a newer file is left alone
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("9999",)


def test_database_server_down_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u:s3cret@127.0.0.1:9/mentorship")
    err = _fails(["jobs", "--once"], capsys)
    assert "Cannot reach the database 'mentorship' on 127.0.0.1:9" in err and "running" in err
    assert "s3cret" not in err


@needs_postgres
def test_unmigrated_database_says_run_migrate(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{empty_database}")
    err = _fails(["jobs", "--once"], capsys)
    assert "has no tables yet: run `mini-mentorship migrate`" in err
    assert main(["migrate"]) == 0
    assert main(["jobs", "--once"]) == 0


def test_unknown_scheme_never_echoes_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u:s3cret@h/db")
    err = _fails(["jobs", "--once"], capsys)
    assert "DATABASE_URL='mysql://u:***@h/db'" in err and "s3cret" not in err


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SLACK_BOT_TOKEN", "xoxp-1111-secret", "is a user token (xoxp-…); use the Bot User OAuth Token"),
        ("SLACK_BOT_TOKEN", "xapp-1-secret", "it belongs in SLACK_APP_TOKEN"),
        ("SLACK_APP_TOKEN", "xoxb-1-secret", "it belongs in SLACK_BOT_TOKEN"),
        ("SLACK_APP_TOKEN", "nonsense-secret", "must be an app-level token starting with xapp-"),
        ("SLACK_MENTOR_CHANNEL", "#mentors", "the id is at the bottom of the About tab"),
        ("DISCORD_MENTOR_CHANNEL_ID", "#mentors", "must be a numeric id, not a name: turn on Developer Mode"),
        ("DISCORD_MENTOR_ROLE_ID", "mentors", "Copy ID"),
        ("REMINDER_OFFSETS", "", "is empty; set durations like 24h,15m, or `none`"),
    ],
)
def test_bad_setting_is_refused_with_the_fix(
    variable: str,
    value: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    err = _fails(["run"], capsys)
    assert f"{variable}=" in err and expected in err
    assert "secret" not in err  # tokens are shown by their prefix only


def test_reminders_can_be_turned_off_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDER_OFFSETS", "none")
    assert main(["jobs", "--once"]) == 0


def test_signing_secret_missing_while_tokens_are_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_MENTOR_CHANNEL", "C123")
    err = _fails(["run"], capsys)
    assert "Slack needs these variables set: SLACK_SIGNING_SECRET" in err
    assert "no Slack or Discord credentials" not in err


def test_manifest_needs_no_database_nor_valid_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:9/down")
    assert main(["manifest"]) == 0
    assert "socket_mode_enabled: true" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())  # no database file created either


@pytest.mark.parametrize("url", ["example.org", "ftp://example.org", "https://"])
def test_manifest_http_url_without_scheme_is_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    captured = _fails(["manifest", "--http-url", url], capsys)
    assert (
        "needs to be an https:// address with a host and no query, like https://bot.example.org" in captured
    )
    assert "/slack/events" not in capsys.readouterr().out


def test_verbose_works_before_and_after_the_command() -> None:
    parse = _parser().parse_args
    assert parse(["jobs", "--once", "-v"]).verbose is True
    assert parse(["-v", "jobs", "--once"]).verbose is True
    assert parse(["jobs", "--once"]).verbose is False
    assert main(["jobs", "--once", "--verbose"]) == 0


def test_demo_help_describes_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "against a local fake Slack" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["jobs", "--once"], ["migrate"]])
def test_a_sqlite_path_through_a_file_is_named(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file's folder cannot be made: a path through a file is a typo in DATABASE_URL, said as
    one, not a traceback from creating the folder."""
    (tmp_path / "notes.txt").write_text("not a folder")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'notes.txt' / 'bot.db'}")
    err = _fails(command, capsys)
    assert "Cannot use the SQLite file" in err and "notes.txt" in err and "Check DATABASE_URL" in err


@needs_postgres
@pytest.mark.parametrize(
    ("command", "url"),
    [
        (["migrate"], "postgresql://postgres@127.0.0.1:5432/{db}?password=s3cret"),
        (["jobs", "--once"], "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}?password=s3cret"),
        (["migrate"], "postgresql://postgres@127.0.0.1:5432/{db}?sslmode=disable&password=s3cret"),
    ],
)
def test_a_password_in_the_query_string_is_masked_too(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    empty_database: str,
    command: list[str],
    url: str,
) -> None:
    """libpq takes `?password=`; migrate printed "Database is up to date (…?password=s3cret)"."""
    monkeypatch.setenv("DATABASE_URL", url.format(db=empty_database))
    main(command)
    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err, captured.out + captured.err
    assert "password=***" in captured.out + captured.err
