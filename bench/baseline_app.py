"""The baselines' web apps: bare Flask + SQLAlchemy, no validation, no outbox, no framework on top,
served by gunicorn with the services' own settings (harness.gunicorn_app). Each reads its database URL
from BENCH_DATABASE_URL; the benchmark creates the tables before starting gunicorn."""

from __future__ import annotations

import os
import uuid

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request

from gather_shared.db import make_engine

metadata = sa.MetaData()

registrations = sa.Table(
    "registrations",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("display_name", sa.String(60), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
)

listing = sa.Table(
    "listing",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Index("ix_listing_kind_starts", "kind", "starts_at", "id"),
)


def _app() -> tuple[Flask, sa.Engine]:
    app = Flask(__name__)
    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    # The services' engine settings (pool size, pre-ping), so the baseline differs only in its work.
    return app, make_engine(os.environ["BENCH_DATABASE_URL"])


def insert_app() -> Flask:
    """The signup rush's baseline: one INSERT per POST, answered 201."""
    app, engine = _app()

    @app.post("/v1/events/<uuid:event_id>/signups")
    def register(event_id: uuid.UUID) -> tuple[Response, int]:
        body = request.get_json()
        row = {
            "id": uuid.uuid4(),
            "event_id": event_id,
            "display_name": body["display_name"],
            "email": body.get("email"),
        }
        with engine.begin() as conn:
            conn.execute(registrations.insert().values(**row))
        return jsonify({"id": str(row["id"]), "status": "confirmed"}), 201

    return app


def listing_app() -> Flask:
    """The public listing's baseline: the same rows, by kind, soonest first, straight from one table."""
    app, engine = _app()

    @app.get("/v1/events")
    def events() -> Response:
        limit = min(int(request.args.get("limit", 20)), 100)
        query = (
            sa.select(listing.c.body)
            .where(listing.c.kind == request.args["kind"])
            .order_by(listing.c.starts_at, listing.c.id)
            .limit(limit)
        )
        with engine.connect() as conn:
            items = conn.scalars(query).all()
        return jsonify({"items": items, "next_cursor": None})

    return app


#: The attendee pages' baseline page: the same rows as the pages show, rendered plainly (no translation,
#: no forms, no dates formatted for a language, no security headers).
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Events</title></head><body><main>
{% for e in events %}<article><h2><a href="/events/{{ e.id }}">{{ e.title }}</a></h2>
<p>{{ e.starts_at.isoformat() }} to {{ e.ends_at.isoformat() }} ({{ e.timezone }})</p>
<p>{{ (e.venue or {}).get("name") }}, {{ (e.venue or {}).get("city") }}</p>
<p>{% if e.capacity is none %}places available{% else %}{{ e.capacity - (e.confirmed or 0) }} places left{% endif %}</p>
<p>{{ e.summary }}</p><p>{{ e.description }}</p><p>{{ e.organizer_name }}</p></article>{% endfor %}
</main></body></html>"""


def pages_app() -> Flask:
    """The attendee pages' baseline: the listing's first page of one kind and one event's page, read with
    one query each from the pages service's own tables (the same database) and rendered by one template."""
    app, engine = _app()
    template = app.jinja_env.from_string(_PAGE)  # compiled once, as Flask's render_template caches it
    select = (
        "SELECT e.*, s.confirmed FROM events e LEFT JOIN seats s ON s.event_id = e.id WHERE {where} "
        "ORDER BY e.starts_at, e.id LIMIT 20"
    )
    listed = sa.text(select.format(where="e.listed AND e.ends_at > :now AND e.kind = :kind"))
    one = sa.text(select.format(where="e.id = :id"))

    def page(query: sa.TextClause, **params: object) -> str:
        with engine.connect() as conn:  # PostgreSQL (the benchmarks' database): aware times, JSON as dicts
            events = conn.execute(query, params).mappings().all()
        return template.render(events=events)

    @app.get("/")
    def listing_page() -> str:
        from datetime import UTC, datetime

        return page(listed, now=datetime.now(UTC), kind=request.args["kind"])

    @app.get("/events/<uuid:event_id>")
    def event_page(event_id: uuid.UUID) -> str:
        return page(one, id=event_id)

    return app
