"""The attendee pages' WSGI application: server-rendered pages in the event's language, CSRF-protected
forms, and the security headers every page carries."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from gather_pages import apis, forms, i18n, page_cache, views, words
from gather_pages.bootstrap import runtime
from gather_shared import logs, metrics
from gather_shared.web import HTML_SECURITY_HEADERS, REQUEST_ID_HEADER, TrustedProxies

log = logging.getLogger(__name__)

#: The one cookie the pages set: Flask's signed session, holding the CSRF token and nothing else.
CSRF_COOKIE = "gather_csrf"


def create_app() -> Flask:
    rt = runtime()
    settings = rt.settings
    app = Flask("gather_pages")
    app.extensions["gather_runtime"] = rt
    app.extensions["gather_apis"] = apis.Apis(settings.signup_url, settings.notifications_url)
    app.config.update(
        # A key of its own, derived from the server secret: the session cookie's signature means nothing
        # to any other use of GATHER_SECRET_KEY.
        SECRET_KEY=hmac.new(settings.secret_key.encode(), b"gather-pages-csrf", hashlib.sha256).hexdigest(),
        SESSION_COOKIE_NAME=CSRF_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        # The token lasts as long as the browser's session: a form left open over lunch still works.
        WTF_CSRF_TIME_LIMIT=None,
        # Behind https the Referer check proves the POST came from our own pages; the pages send no
        # Referer (Referrer-Policy: no-referrer), so the token alone is the proof.
        WTF_CSRF_SSL_STRICT=False,
        WTF_I18N_ENABLED=True,
        BABEL_DEFAULT_LOCALE=i18n.DEFAULT,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        MAX_CONTENT_LENGTH=16 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    # Behind a reverse proxy, the browser's address (forwarded to the APIs for their rate limits).
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    metrics.instrument(app)
    Babel(app, locale_selector=i18n.select_locale)
    # Jinja's i18n extension (which Babel adds) gives the environment this method at run time, undeclared.
    cast(Any, app.jinja_env).install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)
    CSRFProtect(app)
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.jinja_env.globals.update(
        html_lang=i18n.html_lang,
        when=i18n.when,
        kind_words=words.KINDS,
        format_words=words.FORMATS,
        features_of=words.features_of,
        closed_words=forms.closed,
        in_page_order=forms.in_page_order,
        places_words=words.places,
        place=words.place,
        described_by=words.described_by,
        csrf_token_slot=page_cache.TOKEN_SLOT,
    )
    # Organizers type the links of their support resources: only web links become links.
    app.jinja_env.tests["safe_link"] = lambda url: (
        isinstance(url, str) and url.lower().startswith(("https://", "http://"))
    )
    app.register_blueprint(views.bp)

    @app.context_processor
    def _help() -> dict[str, object]:
        return {"help_text": settings.help_text, "help_url": settings.help_url}

    @app.before_request
    def _correlation() -> None:
        g.correlation_id = (request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex)[:100]
        g.correlation_token = logs.correlation_id.set(g.correlation_id)

    @app.teardown_request
    def _reset_correlation(_exc: BaseException | None) -> None:
        token = g.pop("correlation_token", None)
        if token is not None:
            logs.correlation_id.reset(token)

    @app.after_request
    def _headers(response: Response) -> Response:
        if response.mimetype == "text/html" and not response.direct_passthrough:
            response.set_data(page_cache.fill_token(response.get_data()))
        response.headers.update(HTML_SECURITY_HEADERS)  # the same on every page of Gather
        response.headers[REQUEST_ID_HEADER] = g.get("correlation_id", "")
        if request.method != "GET" or g.get("private"):
            # What a person typed, or a page reached by a private link: never kept by a browser or proxy.
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> tuple[str, int]:
        return render_template("error.html", reason="expired"), 400

    @app.errorhandler(apis.ServiceUnavailableError)
    def _unavailable(exc: apis.ServiceUnavailableError) -> tuple[str, int, dict[str, str]]:
        log.warning("a service did not answer: %s", exc)
        return render_template("error.html", reason="unavailable"), 503, {"Retry-After": "5"}

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int]:
        reason = "not_found" if exc.code in (404, 405) else "bad_request"
        return render_template("error.html", reason=reason), exc.code or 400

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[str, int]:
        if isinstance(exc, sa.exc.OperationalError):
            log.warning("database unavailable: %s", exc.orig)
            return render_template("error.html", reason="unavailable"), 503
        log.exception("unhandled error")
        return render_template("error.html", reason="broken"), 500

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=settings.service)

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        # The web process needs its database only (the consumer is another process).
        try:
            with rt.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
            return jsonify(status="not ready", checks={"database": f"unreachable: {type(exc).__name__}"}), 503
        return jsonify(status="ready", checks={"database": "ok"}), 200

    return app
