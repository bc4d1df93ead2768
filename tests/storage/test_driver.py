"""The hot-path statements sent on psycopg itself (storage/driver.py), on PostgreSQL: the same
rows and conversions as SQLAlchemy's own path, the same exceptions, and a connection a broken
statement left dead is dropped, not reused; calls sent together (`storage.db.together`) keep
their order, their transaction and their errors."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import Ok
from bot.outage import is_database_outage
from bot.runtime import Runtime
from storage import repository as repo
from storage.db import Database, together
from storage.driver import DriverResult
from storage.models import Member
from tests.conftest import MENTOR, STUDENT, _libpq, request_form

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def owed(member_id: int, key: str) -> dict[str, object]:
    """An outbox row's values, as `bot.outbox` owes a DM."""
    return {
        "platform": "slack",
        "workspace": "T1",
        "audience": "dm",
        "member_id": member_id,
        "request_id": None,
        "session_id": None,
        "kind": "request_claimed",
        "payload": {"n": key},
        "dedupe_key": key,
        "status": "pending",
        "due_at": NOW,
        "next_attempt_at": NOW,
        "attempts": 0,
        "created_at": NOW,
    }


async def test_a_view_read_on_the_driver_is_the_view_sqlalchemy_reads(runtime: Runtime) -> None:
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    claimed = await runtime.mentorship.claim(MENTOR, created.value.id)
    assert isinstance(claimed, Ok)
    db = runtime.db
    async with db.transaction() as session:
        on_driver = await repo.request_view(session, created.value.id)
        many = await repo.request_views_by_id(session, [created.value.id, created.value.id + 999])
        marked = await session.execute(repo._request_view_by_id(), {"request_id": created.value.id})
        assert isinstance(marked, DriverResult)  # it did take the driver's path
    plain = async_sessionmaker(db.engine, class_=AsyncSession)  # SQLAlchemy's own path
    async with plain() as session, session.begin():
        through_sqlalchemy = await repo.request_view(session, created.value.id)
    assert on_driver == through_sqlalchemy == many[created.value.id]
    assert on_driver is not None and on_driver.claimed_by is not None
    assert on_driver.claimed_by.external_id == MENTOR.user_id
    assert on_driver.created_at.tzinfo is UTC  # the UTCDateTime column's own conversion
    assert on_driver.tags == ("python", "interviews")  # JSON decoded as SQLAlchemy does


async def test_expanding_parameters_and_row_counts(runtime: Runtime) -> None:
    created = await runtime.mentorship.create_request(STUDENT, request_form())
    assert isinstance(created, Ok)
    async with runtime.db.transaction() as session:
        retired = await repo.retire_pending(
            session, status="superseded", request_id=created.value.id, kinds=["card", "match_suggested"]
        )
        again = await repo.retire_pending(
            session, status="superseded", request_id=created.value.id, kinds=["card"]
        )
    assert retired >= 1  # the new request's card row, still pending (nothing delivers here)
    assert again == 0


async def test_a_constraint_violation_is_sqlalchemys_integrity_error_and_rolls_back(
    database: Database,
) -> None:
    with pytest.raises(sa_exc.IntegrityError) as raised:
        async with database.transaction() as session:
            member = await repo.upsert_member(
                session,
                platform="slack",
                workspace="T1",
                external_id="U1",
                display_name="Uma",
                timezone=None,
                now=NOW,
            )
            await repo.add_notification(session, **owed(member.id + 1000, "k"))  # no such member
    assert isinstance(raised.value.orig, psycopg.errors.ForeignKeyViolation)
    assert not is_database_outage(raised.value)  # a bug, not the database being away
    async with database.transaction() as session:  # the member's insert was rolled back with it
        assert await repo.find_member(session, "slack", "T1", "U1") is None


async def test_a_connection_killed_mid_transaction_is_an_outage_and_is_not_reused(database: Database) -> None:
    with pytest.raises(sa_exc.DBAPIError) as raised:
        async with database.transaction() as session:
            await _member(session, "U1")
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            with psycopg.connect(_libpq(database.url), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await _member(session, "U2")
    assert raised.value.connection_invalidated
    assert is_database_outage(raised.value)
    # The pool dropped the dead connection: the next transaction gets a live one.
    async with database.transaction() as session:
        await _member(session, "U3")
        assert await repo.find_member(session, "slack", "T1", "U1") is None
        assert (await repo.find_member(session, "slack", "T1", "U3")) is not None


async def test_the_driver_path_keeps_the_transaction_of_the_session(database: Database) -> None:
    """Statements on the driver and through SQLAlchemy in one transaction see each other's
    writes, and a rollback undoes both."""

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        async with database.transaction() as session:
            member = await repo.upsert_member(
                session,
                platform="slack",
                workspace="T1",
                external_id="U9",
                display_name="Ida",
                timezone=None,
                now=NOW,
            )
            found = await repo.find_member(session, "slack", "T1", "U9")  # through the ORM
            assert found is not None and found.id == member.id
            raise Undo
    async with database.transaction() as session:
        assert await repo.find_member(session, "slack", "T1", "U9") is None


async def test_several_rows_of_one_insert_go_at_once_and_a_taken_key_is_left_out(database: Database) -> None:
    async with database.transaction() as session:
        member = await repo.upsert_member(
            session,
            platform="slack",
            workspace="T1",
            external_id="U1",
            display_name="Uma",
            timezone=None,
            now=NOW,
        )
        assert await repo.add_notifications(session, [owed(member.id, "a"), owed(member.id, "b")]) == 2
        # "b" is taken: only "c" and "d" are added, in one call.
        rows = [owed(member.id, "b"), owed(member.id, "c"), owed(member.id, "d")]
        assert await repo.add_notifications(session, rows) == 2
        keys = (
            await session.execute(text("SELECT dedupe_key, payload FROM notifications ORDER BY id"))
        ).all()
    assert [(k, p["n"]) for k, p in keys] == [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")]


def _member(session: AsyncSession, name: str) -> Coroutine[Any, Any, Member]:
    return repo.upsert_member(
        session, platform="slack", workspace="T1", external_id=name, display_name=name, timezone=None, now=NOW
    )


async def test_calls_together_run_in_order_inside_the_transaction(database: Database) -> None:
    """Sent in one pipeline with the transaction's BEGIN: in the order given (the ids say so),
    seen by the statements after them, and undone by a rollback like any other."""

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        async with database.transaction() as session:
            first, second, third = await together(
                session, _member(session, "U1"), _member(session, "U2"), _member(session, "U3")
            )
            assert first.id < second.id < third.id
            found = await repo.members_by_id(session, [first.id, third.id])
            assert sorted(ref.external_id for ref in found.values()) == ["U1", "U3"]
            raw = (await session.connection()).sync_connection.connection.driver_connection  # type: ignore[union-attr]
            assert isinstance(raw, psycopg.AsyncConnection) and not raw.autocommit
            raise Undo
    async with database.transaction() as session:
        assert await repo.find_member(session, "slack", "T1", "U1") is None  # it was a transaction


async def test_a_failure_together_raises_the_first_error_and_keeps_nothing(database: Database) -> None:
    async def bad_dm(session: AsyncSession) -> bool:
        return await repo.add_notification(session, **owed(123456, "k"))  # no such member

    with pytest.raises(sa_exc.IntegrityError) as raised:
        async with database.transaction() as session:
            await together(session, _member(session, "U1"), bad_dm(session), _member(session, "U2"))
    assert isinstance(raised.value.orig, psycopg.errors.ForeignKeyViolation)
    assert not is_database_outage(raised.value)
    async with database.transaction() as session:  # a clean connection from the pool
        assert await repo.find_member(session, "slack", "T1", "U1") is None
        assert await repo.find_member(session, "slack", "T1", "U2") is None
        await _member(session, "U4")
    async with database.transaction() as session:
        assert await repo.find_member(session, "slack", "T1", "U4") is not None


async def test_a_statement_off_the_driver_inside_together_takes_its_turn(database: Database) -> None:
    """A call whose statement goes through SQLAlchemy (an ORM read) waits for the queued ones
    instead of using the connection at the same time."""

    async def upsert_then_find(session: AsyncSession, name: str) -> Member | None:
        await _member(session, name)
        return await repo.find_member(session, "slack", "T1", name)

    async with database.transaction() as session:
        found, other, view = await together(
            session,
            upsert_then_find(session, "U1"),
            upsert_then_find(session, "U2"),
            repo.request_view(session, 999),
        )
    assert found is not None and found.external_id == "U1"
    assert other is not None and other.external_id == "U2"
    assert view is None


async def test_a_statement_sent_later_goes_with_the_commit_or_the_next_statement(database: Database) -> None:
    async with database.transaction() as session:
        member = await _member(session, "U1")
        await repo.add_notifications_later(session, [owed(member.id, "a"), owed(member.id, "b")])
        # The next statement sees it: it went first.
        assert await repo.notification_exists(session, "a")
        await repo.add_notifications_later(session, [owed(member.id, "c")])  # goes with the COMMIT
    async with database.transaction() as session:
        assert await repo.notification_exists(session, "c")


async def test_a_statement_sent_later_fails_its_transaction_and_a_rollback_drops_it(
    database: Database,
) -> None:
    with pytest.raises(sa_exc.IntegrityError):
        async with database.transaction() as session:
            await _member(session, "U1")
            await repo.add_notifications_later(session, [owed(123456, "bad")])  # no such member
    async with database.transaction() as session:  # nothing of it was committed
        assert await repo.find_member(session, "slack", "T1", "U1") is None
        member = await _member(session, "U2")
        await repo.add_notifications_later(session, [owed(member.id, "dropped")])
        await session.rollback()  # the way a refused claim ends
    async with database.transaction() as session:
        assert not await repo.notification_exists(session, "dropped")
        assert await repo.find_member(session, "slack", "T1", "U2") is None
        await _member(session, "U3")  # the pool's connection is clean
    async with database.transaction() as session:
        assert await repo.find_member(session, "slack", "T1", "U3") is not None
