"""gunicorn's logger for every Gather web process, without the secrets that links carry in their paths:
the verify, manage and unsubscribe links of the attendee pages (docs: notes on links in README), the
signup API's verification path, the notifications API's unsubscribe path and SMS short links. An access
log is kept, copied and shipped far more widely than the databases; a working link must never be in it.

deploy/gunicorn.conf.py names it (`logger_class`)."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from gunicorn.glogging import Logger

if TYPE_CHECKING:
    from gunicorn.glogging import _AtomsDict
    from gunicorn.http import Request
    from gunicorn.http.wsgi import Response

REDACTED = "[redacted]"

#: (path prefix up to the secret) + the secret segment.
_SECRET_SEGMENT = re.compile(
    r"(?P<keep>/(?:verify|unsubscribe|v1/verifications|v1/unsubscribe|s)/|/manage/[^/?#\s]+/)[^/?#\s]+"
)


def redact(text: str) -> str:
    """`text` (a request line, a path, a Referer) with every secret path segment replaced."""
    return _SECRET_SEGMENT.sub(lambda m: m.group("keep") + REDACTED, text)


class RedactingLogger(Logger):
    """gunicorn's Logger, with the request line, path and Referer redacted in access lines and the request
    path redacted in its own error lines ("Error handling request /manage/…")."""

    def atoms(
        self, resp: Response, req: Request, environ: MutableMapping[str, Any], request_time: timedelta
    ) -> _AtomsDict:
        atoms = super().atoms(resp, req, environ, request_time)
        # gunicorn adds one "{name}i" atom per request header, which its typed atoms cannot name.
        fields = cast("MutableMapping[str, object]", atoms)
        for key in ("r", "U", "f", "{referer}i"):
            value = fields.get(key)
            if isinstance(value, str):
                fields[key] = redact(value)
        return atoms

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        super().exception(msg, *(redact(a) if isinstance(a, str) else a for a in args), **kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        super().error(msg, *(redact(a) if isinstance(a, str) else a for a in args), **kwargs)
