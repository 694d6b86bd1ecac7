"""The CloudEvents 1.0 structured JSON envelope every message travels in."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from gather_shared import messages

CONTENT_TYPE = "application/cloudevents+json"


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    specversion = fields.String(required=True, validate=validate.Equal("1.0"))
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    source = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(sorted(messages.SCHEMAS)))
    time = fields.AwareDateTime(required=True)
    datacontenttype = fields.String(load_default="application/json")
    # CloudEvents extension attribute: the id of the HTTP request that set this journey off.
    correlationid = fields.String(load_default=None, allow_none=True)
    data = fields.Dict(required=True)


_ENVELOPE = EnvelopeSchema()  # made once: see messages._INSTANCES


def build(type_: str, source: str, data: dict[str, Any], correlation_id: str | None) -> dict[str, Any]:
    """A new envelope around `data` (already dumped by its schema)."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "correlationid": correlation_id,
        "data": data,
    }


def parse(body: bytes | str | dict) -> dict[str, Any]:
    """Parse and validate a received body: the envelope, then `data` against its type's schema.

    Raises ValidationError for anything that is not a valid Gather message."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ValidationError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationError("the envelope must be a JSON object")
    envelope = _ENVELOPE.load(body)
    envelope["data"] = messages.load(envelope["type"], envelope["data"])
    return envelope
