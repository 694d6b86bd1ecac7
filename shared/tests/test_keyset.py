"""Keyset pages: every item once, in order, whatever is added meanwhile; a forged cursor is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gather_shared import keyset
from gather_shared.db import UTCDateTime, make_engine

START = datetime(2030, 3, 1, 18, 0, tzinfo=UTC)

items = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("at", UTCDateTime),
    sa.Column("id", sa.Uuid, primary_key=True),
)
ORDER = (items.c.at, items.c.id)


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    event_id = uuid.uuid4()
    types = [datetime, uuid.UUID]
    assert keyset.decode(keyset.encode([START, event_id]), types) == (START, event_id)
    assert keyset.decode(keyset.encode([7]), [int]) == (7,)

    def raw(values: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()

    forged = [
        "abc",
        "bm90IGpzb24",
        keyset.encode([START, event_id])[:-3],
        raw(["2030-01-01T00:00:00", str(event_id)]),  # a naive time
        raw(["0001-01-01T00:00:00+01:00", str(event_id)]),  # before the first year in UTC
        raw([START.isoformat()]),  # too short
        raw([START.isoformat(), 5]),  # a number for an id
        raw({"at": START.isoformat()}),
    ]
    for cursor in forged:
        with pytest.raises(keyset.CursorError):
            keyset.decode(cursor, types)
    for cursor in (raw([2**40]), raw([True]), raw(["7"])):  # beyond a database integer, or not a number
        with pytest.raises(keyset.CursorError):
            keyset.decode(cursor, [int])


def test_pages_give_every_item_once_in_order_while_items_are_added(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/items.db")
    items.metadata.create_all(engine)
    # Two items at each time: the id decides between them.
    rows = [{"at": START + timedelta(hours=n // 2), "id": uuid.uuid4()} for n in range(7)]
    with engine.begin() as connection:
        connection.execute(items.insert(), rows)
    seen, cursor = [], None
    with engine.begin() as connection:
        while True:
            page, cursor = keyset.page(connection.execute, sa.select(items), ORDER, 3, cursor)
            seen += [row.id for row in page]
            # Added before the last page read: an earlier item is not shown, a later one is.
            connection.execute(items.insert(), [{"at": START - timedelta(days=1), "id": uuid.uuid4()}])
            if cursor is None:
                break
    assert seen == [row["id"] for row in sorted(rows, key=lambda row: (row["at"], row["id"]))]
    engine.dispose()
