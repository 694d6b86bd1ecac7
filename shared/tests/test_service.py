"""A scheduled job's loop (service.run_every): each run in its own transaction, what it did logged, a failure
logged and the job run again, until it is told to stop."""

import logging
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gather_shared import service


def test_a_scheduled_job_logs_what_it_did_outlives_a_failure_and_stops_when_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    runs: list[Session] = []

    def job(session: Session) -> str | None:
        runs.append(session)
        if len(runs) == 1:
            raise RuntimeError("the database went away")
        if len(runs) == 3:
            stop.set()
        return "done: 2" if len(runs) == 2 else None

    log = logging.getLogger("gather_test.scheduled")
    with caplog.at_level(logging.INFO, logger=log.name):
        service.run_every(0, stop, sessionmaker(sa.create_engine("sqlite://")), job, log, "job: failed")

    assert len(runs) == 3 and len(set(map(id, runs))) == 3  # a transaction of its own each time
    assert [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("ERROR", "job: failed", True),
        ("INFO", "done: 2", False),
    ]
