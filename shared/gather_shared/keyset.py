"""Keyset pagination, the one way every list of Gather pages: a page ends with an opaque cursor naming the
position of its last item in the list's order (say `(starts_at, id)`), and the next page starts right
after that position, whatever was added or removed meanwhile. (An offset would skip or repeat items when
earlier ones change, and makes the database count its way to every page.)"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

#: Integer positions are database integers (arrival numbers): a forged one beyond them must fail here,
#: as a bad cursor, not in the database.
_INT_RANGE = range(-(2**31), 2**31)


class CursorError(ValueError):
    """A cursor this service did not give out: answered 422 (gather_shared.web), like any invalid input."""


def page(
    fetch: Callable[[sa.Select[Any]], Any],
    query: sa.Select[Any],
    order: Sequence[Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of `query` in the `order` of its columns (unique together, the last one usually the id),
    after `cursor`; and the next page's cursor, or None on the last page. `fetch` runs the query: say
    `session.scalars` for mapped objects, `connection.execute` for rows; each item must have an attribute
    named after each column of `order`."""
    if cursor:
        query = query.where(_after(order, decode(cursor, [column.type.python_type for column in order])))
    items = list(fetch(query.order_by(*order).limit(limit + 1)).all())
    if len(items) <= limit:
        return items, None
    last = items[limit - 1]
    return items[:limit], encode([getattr(last, column.key) for column in order])


def _after(order: Sequence[Any], position: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`order` past `position`: (a > x) or (a = x and b > y) or …, which uses an index on the columns."""
    return sa.or_(
        *(
            sa.and_(
                *(column == value for column, value in zip(order[:i], position, strict=False)), order[i] > position[i]
            )
            for i in range(len(order))
        )
    )


def encode(position: Sequence[datetime | uuid.UUID | int]) -> str:
    values = [value.isoformat() if isinstance(value, datetime) else value for value in position]
    raw = json.dumps([str(value) if isinstance(value, uuid.UUID) else value for value in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The position `cursor` names, each value of its type (datetime, UUID or int); CursorError when it is
    not one this service gave out."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("not a position of this list")
        return tuple(_value(kind, value) for kind, value in zip(types, values, strict=True))
    # UnicodeDecodeError is a ValueError; RecursionError: a forged cursor of deeply nested JSON.
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error) as exc:
        raise CursorError("Not a cursor this service gave out.") from exc


def _value(kind: type, value: Any) -> Any:
    if kind is datetime and isinstance(value, str):
        position = datetime.fromisoformat(value)
        if position.tzinfo is None:
            raise ValueError("naive time")
        # In UTC, as stored: a forged time the database could not hold fails here, not there.
        return position.astimezone(UTC)
    if kind is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if kind is int and type(value) is int and value in _INT_RANGE:
        return value
    raise ValueError(f"not a {kind.__name__}")
