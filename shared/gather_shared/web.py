"""What every Gather web service shares: the Flask app with its OpenAPI docs, RFC 9457 problem details
for every error (the rules' refusals included), correlation ids, health checks, the security headers of
every HTML page, the client's address behind trusted proxies, rate limits, the input every service checks
the same way (storable text, one-line text, time zone names, JSON bodies), and bearer-token helpers."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from importlib import resources
from typing import Any, Protocol, Self, TypeVar

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, g, jsonify, make_response, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask_limiter import RateLimitExceeded
from flask_smorest import Api
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, ValidationError, fields
from sqlalchemy.orm import Session
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gather_shared import bus, keyset, logs, metrics, ratelimit
from gather_shared.audit import Actor
from gather_shared.config import Settings
from gather_shared.errors import Refusal
from gather_shared.service import Runtime

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_BODY_BYTES = 64 * 1024
REQUEST_ID_HEADER = "X-Request-ID"

#: Every HTML page of Gather (the attendee pages, the APIs' /docs and their unsubscribe and manage pages):
#: nothing from another origin, no inline script or style, no framing, forms post to their own origin.
#: (Swagger UI draws its icons as data: images.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HTML_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Problem(Exception):  # noqa: N818 - it is the answer, not a failure
    """Raise to answer with a problem+json: `code` names the problem for machines (e.g. `event_full`)."""

    def __init__(self, status: int, code: str, detail: str, errors: dict[str, Any] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors, self.extra = status, code, detail, errors, extra


def problem_response(
    status: int, title: str, detail: str, code: str | None = None, errors: dict[str, Any] | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:gather:problem:{code}" if code else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


def answer(problem: Problem) -> Response:
    return problem_response(
        problem.status,
        problem.code.replace("_", " ").capitalize(),
        problem.detail,
        code=problem.code,
        errors=problem.errors,
        **problem.extra,
    )


def answer_refusals(blueprint: Blueprint, as_problem: Callable[[Refusal], Problem]) -> None:
    """Answer every refusal of the rules raised in `blueprint`'s routes with the problem `as_problem`
    makes of it: the one place where a service turns its rules' words into HTTP."""
    blueprint.register_error_handler(Refusal, lambda refusal: answer(as_problem(refusal)))


class ProblemOut(Schema):
    """RFC 9457 problem details, as every error is answered (`problem_response`)."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


def problems(
    blueprint: ApiBlueprint, *statuses: int, schema: type[Schema] = ProblemOut
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the problem+json answers a route gives besides its own (422 is documented by arguments)."""

    def document(view: Callable[..., Any]) -> Callable[..., Any]:
        for status in statuses:
            view = blueprint.alt_response(
                status, schema=schema, content_type=PROBLEM_JSON, description=HTTPStatus(status).phrase
            )(view)
        return view

    return document


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict → {"venue.city": ["…"]}, so each message names its field."""
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": messages}
    if not isinstance(messages, dict):
        return {prefix or "_schema": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = str(key) if not prefix else f"{prefix}.{key}"
        flat.update(flatten_errors(value, name))
    return flat


class ProblemApi(Api):
    """flask-smorest's Api, answering every HTTP error as problem+json."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        webargs_messages = data.get("messages")
        if webargs_messages is not None:
            # webargs nests errors by location ({"json": {...}, "query": {...}}); the field names suffice.
            errors: dict[str, list[str]] = {}
            for location_errors in webargs_messages.values():
                errors.update(flatten_errors(location_errors))
            fields_named = ", ".join(sorted(errors))
            # webargs answers a body that is not JSON at all with 400; to a client it is invalid input
            # like any other, so it gets the same 422 as every validation failure.
            return problem_response(
                422, "Invalid request", f"Invalid input in: {fields_named}", code="validation_error", errors=errors
            )
        if status >= 500:
            log.error("unhandled error: %s", error)
        response = problem_response(status, error.name, error.description or error.name)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response


#: What a route that takes a bearer token (an API key, the admin token, a manage token) says in its OpenAPI
#: operation (called_with_key does it): the `bearer` scheme create_app declares.
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def called_with_key(
    blueprint: ApiBlueprint,
    *statuses: int,
    whose: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
    limit: ratelimit.RateLimit = ratelimit.PER_KEY,
    schema: type[Schema] = ProblemOut,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A route called with an organizer's API key (or the admin token, `limit=ratelimit.ADMIN`): limited per
    key, documented as taking the bearer scheme, answering 401 and the problems `statuses` besides its own.
    Placed right under @blp.route (and @web.no_store), like the rate limit it sets. `whose` is the check of
    whose key it takes that runs before the body is read (admin_only, or a service's checked_first); a route
    without one checks in its body (bearer_organizer)."""
    return stacked(
        ratelimit.limited(limit),
        problems(blueprint, 401, *statuses, schema=schema),
        blueprint.doc(security=BEARER),
        *([] if whose is None else [whose]),
    )


def stacked(*decorators: Callable[[Callable[..., Any]], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One decorator that applies `decorators` as if they were stacked in this order above a view."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):  # the innermost first, as stacked decorators apply
            view = decorator(view)
        return view

    return decorate


def create_app(rt: Runtime, description: str) -> tuple[Flask, ProblemApi]:
    service, settings, engine = rt.settings.service, rt.settings, rt.engine
    app = Flask(f"gather_{service}")
    app.extensions["gather_runtime"] = rt
    app.config.update(
        API_TITLE=f"Gather {service}",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        # /docs is served below, from the swagger-ui-bundle package: nothing loaded from another origin.
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An organizer's API key, the admin token, or a registration's manage "
                        "token: each operation says whose.",
                    }
                },
            },
        },
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    provider = DefaultJSONProvider(app)
    provider.sort_keys = False  # answers keep the order their schema declares
    app.json = provider
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    api = ProblemApi(app)
    metrics.instrument(app)

    app.register_error_handler(Problem, answer)

    @app.before_request
    def _json_body() -> None:
        # Checked here, before a rate limit or a schema reads it: JSON nested deeper than Python's recursion
        # limit (64 KiB of `[`) makes the parser raise RecursionError, and a number of more than 4300 digits
        # a ValueError that is no JSONDecodeError: neither reaches the schemas' own handling of bad JSON.
        body = request.get_data(cache=True) if request.is_json else b""
        if body:
            try:
                json.loads(body)
            except (RecursionError, ValueError):
                raise Problem(
                    422, "validation_error", "Invalid input in: json", errors={"json": ["Not valid JSON."]}
                ) from None

    app.config.update(
        RATELIMIT_ENABLED=settings.rate_limit_enabled,
        RATELIMIT_STORAGE_URI=settings.rate_limit_storage_url or f"{ratelimit.DATABASE_SCHEME}://",
        RATELIMIT_STORAGE_OPTIONS={"engine": engine} if settings.rate_limit_storage_url is None else {},
        # Services sharing one Redis count apart.
        RATELIMIT_KEY_PREFIX=f"gather-{service}",
        # A store that is down lets requests through (logged): a limit guards against abuse, and must not
        # take registration down with it.
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    ratelimit.limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _too_many(_exc: RateLimitExceeded) -> Response:
        current = ratelimit.limiter.current_limit
        wait = math.ceil(current.reset_at - time.time()) if current is not None else 60
        response = answer(Problem(429, "rate_limited", "Too many requests; please wait a moment and try again."))
        response.headers["Retry-After"] = str(max(1, wait))
        return response

    @app.errorhandler(keyset.CursorError)
    def _bad_cursor(exc: keyset.CursorError) -> Response:
        return answer(Problem(422, "validation_error", "Invalid input in: cursor", errors={"cursor": [str(exc)]}))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        if isinstance(exc, sa.exc.OperationalError):
            # The database went away (a restart invalidates every pooled connection: the first use of
            # each fails, and the pool then reconnects), is refusing connections, or gave up on a
            # deadlock: nothing wrong with the request, so the client is told to try again.
            log.warning("database unavailable: %s", exc.orig)
            response = problem_response(
                503,
                "Service Unavailable",
                "The database is unavailable for a moment; please try again.",
                code="database_unavailable",
            )
            response.headers["Retry-After"] = "1"
            return response
        log.exception("unhandled error")
        return problem_response(500, "Internal Server Error", "Something went wrong on our side.")

    @app.before_request
    def _correlation() -> None:
        cid = (
            request.headers.get(REQUEST_ID_HEADER)
            or logs.trace_id(request.headers.get("traceparent"))
            or uuid.uuid4().hex
        )
        g.correlation_id = cid[:100]
        g.correlation_token = logs.correlation_id.set(g.correlation_id)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("correlation_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.mimetype == "text/html":
            response.headers.update(HTML_SECURITY_HEADERS)
        return response

    @app.teardown_request
    def _reset_correlation(_exc: BaseException | None) -> None:
        token = g.pop("correlation_token", None)
        if token is not None:
            logs.correlation_id.reset(token)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz() -> Response | tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            bus.check(settings.broker_url)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503

    @app.get("/docs")
    def docs() -> Response:
        return Response(DOCS_PAGE.format(title=f"Gather {service} API"), mimetype="text/html")

    @app.get("/docs/start.js")
    def docs_script() -> Response:
        return Response(DOCS_SCRIPT, mimetype="text/javascript")

    @app.get("/docs/assets/<path:name>")
    def docs_assets(name: str) -> Response:
        return send_from_directory(swagger_ui_path, name, max_age=3600)

    return app, api


#: Interactive docs: Swagger UI from the swagger-ui-bundle package, started by a script of our own (the
#: Content-Security-Policy allows no inline script). Relative paths: they work behind a path prefix too.
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/start.js"></script>
</body>
</html>
"""
DOCS_SCRIPT = 'window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui"});\n'


class TrustedProxies:
    """WSGI middleware: the client's address (REMOTE_ADDR) as the trusted proxies in front of the service
    saw it. Walking X-Forwarded-For from its end, each hop added by a trusted proxy is believed and the
    first address no trusted proxy vouches for is the client; a request from anyone else keeps its peer's
    address, whatever its X-Forwarded-For says. (werkzeug's ProxyFix believes a fixed number of hops from
    any peer: a client that reached the service past the proxy could name any address it liked.)"""

    def __init__(self, app: Any, proxies: Iterable[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(proxy, strict=False) for proxy in proxies]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        client = environ.get("REMOTE_ADDR", "")
        if self.networks and self.trusted(client):
            hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
            while hops and self.trusted(client):
                client = hops.pop()
            environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)


# --- input ------------------------------------------------------------------------------------------


def storable(text: str) -> str:
    """Refuse what no person types and PostgreSQL cannot store: NUL characters, and lone surrogates (which
    JSON's \\u escapes can carry but UTF-8 cannot encode)."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError("Must be valid Unicode text.") from exc
    return text


#: What may not be in text meant for one line (a title, a name, a reason, an email's subject): line
#: breaks of every kind (\r \n \v \f, \x1c-\x1e, NEL \x85, \u2028, \u2029) and every other C0 or C1
#: control character, tab included. A line break in a title would end an email header and start another.
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`storable` text on one line, without control characters: the one rule for single-line fields."""
    if _NOT_ONE_LINE.search(storable(text)):
        raise ValidationError("Must be one line of text, without line breaks or control characters.")
    return text


class Text(fields.String):
    """Text a person wrote, refused unless `storable`: every string field of a request that is kept."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return storable(super()._deserialize(value, attr, data, **kwargs))


class Line(fields.String):
    """Text for one line (`one_line`): titles, names, places, reasons, subjects."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return one_line(super()._deserialize(value, attr, data, **kwargs))


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split())


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone (e.g. Europe/London), as listed by the tzdata package.
    (`zoneinfo.available_timezones()` lists every file of the system's zoneinfo folder, `localtime`
    included: the server's own zone, which no attendee or organizer means.)"""
    return name in _time_zones()


# --- auth -------------------------------------------------------------------------------------------


def bearer_token() -> str | None:
    """The bearer token of the request; None when there is none, or when it has characters no key or token
    of Gather has (they are printable ASCII: anything else is answered 401, never compared)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not (token.isascii() and token.isprintable()):
        return None
    return token


def hash_secret(secret: str) -> str:
    """Keys and tokens are random with ≥128 bits, so one SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def no_store(view: Callable[..., Any]) -> Callable[..., Any]:
    """For answers that carry personal data or a token (attendee lists, a registration seen with its manage
    token): never kept by a browser or a proxy. Place it right under @blp.route."""

    @functools.wraps(view)
    def private(*args: Any, **kwargs: Any) -> Response:
        response = make_response(view(*args, **kwargs))
        response.headers["Cache-Control"] = "no-store"
        return response

    return private


def unauthorized(detail: str = "A valid bearer token is required.") -> Problem:
    return Problem(401, "unauthorized", detail)


def require_admin(settings: Settings) -> None:
    token = bearer_token()
    if token is None or not hmac.compare_digest(token, settings.admin_token):
        raise unauthorized("This call needs the admin token.")


def admin_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """A route for the admin token only: 401 for anyone else before anything else, the body unread (placed
    above @blp.arguments, like checked_first)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        require_admin(current_runtime().settings)
        return view(*args, **kwargs)

    return checked


def is_admin(settings: Settings) -> bool:
    token = bearer_token()
    return token is not None and hmac.compare_digest(token, settings.admin_token)


def find_by_token_hash(lookup: Callable[[str], Any]) -> Any:
    """Look up whoever holds the bearer token, by its hash; None when there is no token or no match."""
    token = bearer_token()
    return None if token is None else lookup(hash_secret(token))


class FoundByKey(Protocol):
    """A service's table of organizers (its own, or its copy: gather_shared.organizers.OrganizerCopy)."""

    @property
    def id(self) -> uuid.UUID: ...

    @classmethod
    def by_key_hash(cls, session: Session, key_hash: str) -> tuple[Self, Actor] | None:
        """The organizer one of whose members' current key hashes to `key_hash`, and that member."""
        ...


_Organizer = TypeVar("_Organizer", bound=FoundByKey)


def bearer_member(session: Session, organizers: type[_Organizer]) -> tuple[_Organizer, Actor] | None:
    """The organizer account one of whose members' current API key is the bearer token, and that member (the
    first owner's key is the organizer's own); None when there is no token or no such key."""
    return find_by_token_hash(lambda key_hash: organizers.by_key_hash(session, key_hash))


def bearer_organizer(session: Session, organizers: type[_Organizer]) -> _Organizer | None:
    """The organizer account whose member's current API key is the bearer token (bearer_member)."""
    found = bearer_member(session, organizers)
    return None if found is None else found[0]


class OwnedEvent(Protocol):
    """A service's table of events (its own, or its copy): each knows its organizer."""

    @property
    def organizer_id(self) -> uuid.UUID: ...


_Event = TypeVar("_Event", bound=OwnedEvent)


def organizers_event(
    session: Session, organizers: type[_Organizer], events: type[_Event], event_id: uuid.UUID, forbidden: str
) -> tuple[_Organizer, Actor, _Event]:
    """The event `event_id`, if the bearer token is the key of a member (any role) of its organizer's
    account, with that account and member; else 401 (no such key), 404 (no such event) or 403 `forbidden`
    (another account's event)."""
    found = bearer_member(session, organizers)
    if found is None:
        raise unauthorized("This call needs the event organizer's API key.")
    organizer, actor = found
    event = session.get(events, event_id)
    if event is None:
        raise Problem(404, "not_found", "No such event.")
    if event.organizer_id != organizer.id:
        raise Problem(403, "forbidden", forbidden)
    return organizer, actor, event


def checked_first(
    check: Callable[[Session, uuid.UUID], Any], parameter: str = "event_id"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that runs `check(session, <the route's `parameter`>)` (which answers 401, 404 or 403)
    before anything else: a caller who may not act on the event (or account) learns nothing, not even what
    input is valid. (Placed under @blp.route, above @blp.arguments, so it runs before the body is parsed.)"""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            with current_runtime().sessions() as session:
                check(session, kwargs[parameter])
            return view(*args, **kwargs)

        return checked

    return decorate


def current_runtime() -> Runtime:
    """The service's Runtime (settings, engine, sessions), as its app factory registered it."""
    from flask import current_app

    return current_app.extensions["gather_runtime"]
