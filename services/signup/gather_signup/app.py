"""The signup service's WSGI application."""

from flask import Flask

from gather_shared import web
from gather_signup import api
from gather_signup.bootstrap import runtime


def create_app() -> Flask:
    app, rest = web.create_app(runtime(), "Registration: seats, waitlists, cancellation.")
    rest.register_blueprint(api.blp)
    return app
