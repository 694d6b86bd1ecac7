"""Wiring: the one place that builds this service's runtime."""

from pathlib import Path

from gather_shared.service import Runtime, start

SERVICE = "pages"
MIGRATIONS = str(Path(__file__).parent / "migrations")


def runtime() -> Runtime:
    return start(SERVICE, MIGRATIONS)
