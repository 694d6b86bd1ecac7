"""The copies a service keeps of what another service owns, from its messages (an event, its seat counts).
Each message carries the whole thing and a number that grows with every change (an event's `version`, the
seat counts' `seq`), so a copy keeps the newest it has seen: messages may arrive late or twice, and an older
one changes nothing. (The organizers' keys, copied by message time: organizers.py.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import Session

_Copy = TypeVar("_Copy")


def to_overwrite(
    session: Session, model: type[_Copy], key: Any, number: int, number_field: str = "version", **new: Any
) -> _Copy | None:
    """The copy of `model` kept under primary key `key`, locked for the rest of the transaction, to be
    overwritten by the one numbered `number`; a new row (`model(**new)`, added) where none is kept; None
    where the kept copy's `number_field` is as high or higher."""
    row = session.get(model, key, with_for_update=True, populate_existing=True)
    if row is None:
        row = model(**new)
        session.add(row)
    elif getattr(row, number_field) >= number:
        return None
    return row


def copy_fields(row: object, data: Mapping[str, Any], names: Iterable[str]) -> None:
    """Set each of `names` on `row` to its value in `data`: the fields a copy keeps, named once."""
    for name in names:
        setattr(row, name, data[name])
