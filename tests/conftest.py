"""Fixtures for the cross-service tests that need the whole platform to themselves (they kill its
processes, restart its broker, or read what it wrote as a whole), on the embedded default or on the
real servers. The others share the plugin's `platform`."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from gather_shared.testing import Platform, fresh_pg_databases, running_platform

SERVICES = ("events", "signup", "notifications")


@pytest.fixture
def embedded_platform(tmp_path: Path) -> Iterator[Platform]:
    with running_platform(tmp_path, None, None) as platform:
        yield platform


@pytest.fixture
def real_platform(tmp_path: Path, pg_server_url: str, clean_amqp_url: str) -> Iterator[Platform]:
    with (
        fresh_pg_databases(pg_server_url, SERVICES) as urls,
        running_platform(tmp_path, urls, clean_amqp_url) as platform,
    ):
        yield platform
