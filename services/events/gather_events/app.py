"""The events service's WSGI application."""

from flask import Flask

from gather_events import api
from gather_events.bootstrap import runtime
from gather_shared import web
from gather_shared.db import utcnow


def create_app() -> Flask:
    app, rest = web.create_app(runtime(), "Organizers publish and manage community wellbeing events.")
    # The clock the rules read (what has ended, what is past); tests set their own.
    app.config["GATHER_CLOCK"] = utcnow
    rest.register_blueprint(api.blp)
    return app
