"""The notifications service's WSGI application."""

from flask import Flask

from gather_notifications import api
from gather_notifications.bootstrap import runtime
from gather_shared import web


def create_app() -> Flask:
    app, rest = web.create_app(runtime(), "Email and SMS that keep attendees informed.")
    rest.register_blueprint(api.blp)
    return app
