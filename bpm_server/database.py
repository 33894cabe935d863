"""Persistence plumbing shared by every domain: the declarative base, UTC
timestamps that behave the same on SQLite and PostgreSQL, id generation and
the per-instance lock."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, CursorResult, DateTime, Executable, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


if TYPE_CHECKING:
    class _ScopedSession(Session):
        def remove(self) -> None: ...

    class _Database(SQLAlchemy):
        # db.session is a scoped_session: a proxy that forwards every call to the
        # current app context's Session (and adds remove()). Services take a
        # Session and are handed db.session, so the type checker sees it as one.
        session: _ScopedSession  # type: ignore[assignment]
else:
    _Database = SQLAlchemy

db = _Database(model_class=Base)

# The models' base class. db.Model is made at run time (Base plus Flask-SQLAlchemy's
# mixin), which a type checker cannot see through; it checks the models against Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model

# JSONB on PostgreSQL (indexable, compact), plain JSON elsewhere.
JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """Stores UTC; always returns timezone-aware UTC datetimes (SQLite drops offsets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and say how many rows it changed (a compare-and-set's answer)."""
    # DML answers with a CursorResult; Session.execute is typed for the general Result.
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount


def new_id() -> str:
    return str(uuid.uuid4())


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # WAL lets the inbox read while a completion writes; the busy timeout makes
    # a second writer wait for the first instead of failing at once, after
    # which the optimistic version check turns the loser into a 409.
    module = type(dbapi_connection).__module__
    if "sqlite" in module:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
