"""The events service's WSGI application."""

from flask import Flask

from gather_events import api
from gather_events.bootstrap import runtime
from gather_shared import web


def create_app() -> Flask:
    app, rest = web.create_app(runtime(), "Organizers publish and manage community wellbeing events.")
    rest.register_blueprint(api.blp)
    return app
