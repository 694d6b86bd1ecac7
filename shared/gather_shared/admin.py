"""The operator's toolkit: `python -m gather_shared admin …`, or `gather-admin …` (docs/operations.md,
"The operator's toolkit").

It reads the same settings as the services (GATHER_BROKER_URL, GATHER_DATABASE_URL with `{service}`) and
prints nothing that names anyone: an operator's terminal, its scrollback and whatever records it must not
become a list of who attends what. Dead letters are shown through bus.deadletters (field names, ids,
times, a redacted error), outbox rows without their body, notifications without their recipient.

Exit status: 0 done; 1 something was not found, not reachable, or (`migrations`) not up to date;
2 the command was wrong, or `purge` was not confirmed with --yes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gather_shared.bus import deadletters
from gather_shared.bus.outbox import waiting
from gather_shared.bus.topology import CONSUMERS, ConsumerQueue
from gather_shared.config import VAR_DIR, broker_url_from, database_url_from
from gather_shared.db import UTCDateTime, make_engine, migration_versions
from gather_shared.service import keep_files_private
from gather_shared.vocabulary import NotificationStatus

#: The services with a database of their own (each with its migrations in `gather_<service>/migrations`).
SERVICES = ("events", "signup", "notifications", "pages")

OK, FAILED, USAGE = 0, 1, 2

#: The columns of the notifications service's table that `resend` reads and resets: the sender picks a
#: `pending` notification up at its next poll, as it does a new one (gather_notifications.sender).
_NOTIFICATIONS = sa.table(
    "notifications",
    sa.column("id", sa.Uuid()),
    sa.column("kind", sa.String()),
    sa.column("channel", sa.String()),
    sa.column("status", sa.String()),
    sa.column("attempts", sa.Integer()),
    sa.column("last_error", sa.String()),
    sa.column("locked_until", UTCDateTime()),
)


class _CommandError(Exception):
    """A command that cannot go on: its message is printed, the exit status is FAILED."""


def _out(line: str = "") -> None:
    print(line, flush=True)


# --- dead letters ---------------------------------------------------------------------------------------


def _queues(service: str | None) -> list[ConsumerQueue]:
    return [CONSUMERS[service]] if service else list(CONSUMERS.values())


def _broker_url() -> str:
    url = broker_url_from(os.environ)
    if url.startswith("filesystem://") and not (VAR_DIR / "broker").is_dir():
        # Opening the embedded broker creates its folders: an empty new broker would show no dead letters.
        raise _CommandError(f"no embedded broker here ({VAR_DIR / 'broker'}): run this where `make run` runs")
    return url


def _peek(queue: ConsumerQueue) -> list[deadletters.DeadLetter]:
    try:
        return deadletters.peek(_broker_url(), queue.dlq)
    except _CommandError:
        raise
    except Exception as exc:  # kombu raises many kinds (a queue not declared: NotFound); one line says it
        raise _CommandError(f"cannot read {queue.dlq}: {type(exc).__name__}: {exc}") from exc


def dead_letters_list(args: argparse.Namespace) -> int:
    _broker_url()  # no embedded broker here: one line, not one per queue
    total, unreadable = 0, False
    for queue in _queues(args.service):
        try:
            letters = _peek(queue)
        except _CommandError as exc:  # the other queues may still be read
            print(exc, file=sys.stderr)
            unreadable = True
            continue
        total += len(letters)
        _out(f"{queue.dlq}: {_count(len(letters), 'dead letter')}")
        for letter in letters:
            _out(f"  {_summary(letter)}")
            if letter.error:
                _out(f"    error: {_first_line(letter.error, 160)}")
    _out(f"{_count(total, 'dead letter')} in {'the queues that could be read' if unreadable else 'all'}")
    return FAILED if unreadable else OK


def dead_letters_show(args: argparse.Namespace) -> int:
    found = [letter for queue in _queues(args.service) for letter in _peek(queue) if letter.key == args.key]
    if not found:
        print(f"no dead letter {args.key}", file=sys.stderr)
        return FAILED
    for letter in found:
        _out(f"queue:    {letter.queue}")
        _out(f"key:      {letter.key}")
        _out(f"type:     {letter.type or '(not a Gather message type)'}")
        _out(f"source:   {letter.source or '(not a Gather sender)'}")
        _out(f"time:     {letter.time or '(none readable)'}")
        attempts = (
            letter.attempts
            if letter.attempts is not None
            else "(none counted: invalid, or dead-lettered by the broker)"
        )
        _out(f"attempts: {attempts}")
        _out(f"headers:  {', '.join(letter.header_names) or '(none)'}")
        _out(f"error:    {(letter.error or '(none given)').replace(chr(10), chr(10) + ' ' * 10)}")
        data = json.dumps(letter.data, indent=2, ensure_ascii=False) if letter.data is not None else "(none readable)"
        _out(f"data (values that could name someone shown as {deadletters.HIDDEN}):")
        _out("\n".join(f"  {line}" for line in data.splitlines()))
        _out()
    return OK


def dead_letters_replay(args: argparse.Namespace) -> int:
    return _take(args, replay=True)


def dead_letters_purge(args: argparse.Namespace) -> int:
    if not args.yes:
        matching = [
            letter for queue in _queues(args.service) for letter in _peek(queue) if args.all or letter.key in args.keys
        ]
        _out(f"would delete {_count(len(matching), 'dead letter')}; nothing deleted. Add --yes to delete them.")
        return USAGE
    return _take(args, replay=False)


def _take(args: argparse.Namespace, replay: bool) -> int:
    keys = None if args.all else set(args.keys)
    moved: set[str] = set()
    for queue in _queues(args.service):
        try:
            taken = deadletters.take(_broker_url(), queue.dlq, keys, queue.name if replay else None)
        except _CommandError:
            raise
        except Exception as exc:
            raise _CommandError(
                f"cannot {'replay' if replay else 'purge'} {queue.dlq}: {type(exc).__name__}: {exc}"
            ) from exc
        for letter in taken:
            _out(f"{'replayed to ' + queue.name if replay else 'deleted from ' + queue.dlq}: {_summary(letter)}")
            moved.add(letter.key)
    _out(f"{_count(len(moved), 'dead letter')} {'replayed' if replay else 'deleted'}")
    missing = sorted(set(keys or ()) - moved)
    for key in missing:
        print(f"no dead letter {key}", file=sys.stderr)
    return FAILED if missing else OK


def _summary(letter: deadletters.DeadLetter) -> str:
    attempts = letter.attempts if letter.attempts is not None else "-"
    return (
        f"{letter.key}  {letter.type or '?'}  from {letter.source or '?'}  at {letter.time or '?'}  attempts {attempts}"
    )


def _first_line(text: str, width: int) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- databases ------------------------------------------------------------------------------------------


def _engine(service: str) -> Engine | None:
    """The service's database, or None where an embedded one was never created (opening a SQLite file
    that is not there would create it)."""
    url = database_url_from(os.environ, service)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if not path or path == ":memory:" or not Path(path).exists():
            return None
    return make_engine(url)


def _services(service: str | None) -> list[str]:
    return [service] if service else list(SERVICES)


def outbox(args: argparse.Namespace) -> int:
    older_than = timedelta(seconds=args.older_than)
    failed = False
    total = 0
    for service in _services(args.service):
        engine = _engine(service)
        if engine is None:
            _out(f"{service}: no database yet")
            continue
        try:
            rows = waiting(engine, older_than)
        except sa.exc.SQLAlchemyError as exc:
            print(f"{service}: cannot read the outbox: {type(exc).__name__}", file=sys.stderr)
            failed = True
            continue
        finally:
            engine.dispose()
        total += len(rows)
        _out(f"{service}: {_count(len(rows), 'message')} waiting longer than {args.older_than:g} s")
        for row in rows:
            retry = f"next try {row.next_attempt_at.isoformat()}" if row.next_attempt_at else "not tried yet"
            written = row.created_at.isoformat()
            _out(f"  {row.message_id}  {row.type}  written {written}  attempts {row.attempts}  {retry}")
    _out(f"{_count(total, 'stuck message')} in all")
    return FAILED if failed else OK


def resend(args: argparse.Namespace) -> int:
    try:
        ids = [uuid.UUID(value) for value in args.ids]
    except ValueError:
        print("a notification id is a UUID, as GET /v1/notifications shows it", file=sys.stderr)
        return USAGE
    engine = _engine("notifications")
    if engine is None:
        raise _CommandError("the notifications service has no database yet")
    done = True
    try:
        with engine.begin() as conn:
            for id_ in ids:
                row = conn.execute(sa.select(_NOTIFICATIONS).where(_NOTIFICATIONS.c.id == id_)).one_or_none()
                if row is None:
                    print(f"no notification {id_}", file=sys.stderr)
                    done = False
                elif row.status != NotificationStatus.FAILED:
                    print(f"notification {id_} is {row.status}, not failed: left as it is", file=sys.stderr)
                    done = False
                else:
                    conn.execute(
                        _NOTIFICATIONS.update()
                        .where(_NOTIFICATIONS.c.id == id_, _NOTIFICATIONS.c.status == NotificationStatus.FAILED)
                        .values(status=NotificationStatus.PENDING, attempts=0, last_error=None, locked_until=None)
                    )
                    _out(
                        f"notification {id_} ({row.kind} by {row.channel}): failed → pending; the sender sends it next"
                    )
    finally:
        engine.dispose()
    return OK if done else FAILED


def migrations_of(service: str) -> str | None:
    """Where the service's migrations are (found, not imported: importing a service would wire it up), or
    None where the service is not installed."""
    spec = importlib.util.find_spec(f"gather_{service}")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "migrations")


def migrations(args: argparse.Namespace) -> int:
    up_to_date = True
    for service in _services(args.service):
        script_location = migrations_of(service)
        if script_location is None:
            _out(f"{service:<14} gather_{service} is not installed here: cannot tell its newest migration")
            up_to_date = False
            continue
        engine = _engine(service)
        if engine is None:
            _out(f"{service:<14} no database yet")
            up_to_date = False
            continue
        try:
            current, heads = migration_versions(engine, script_location)
        except sa.exc.SQLAlchemyError as exc:
            _out(f"{service:<14} cannot read the database: {type(exc).__name__}")
            up_to_date = False
            continue
        finally:
            engine.dispose()
        if current == heads:
            _out(f"{service:<14} {', '.join(current)} (head)")
            continue
        up_to_date = False
        at = ", ".join(current) or "not migrated"
        _out(f"{service:<14} {at}; head is {', '.join(heads)}: run `python -m gather_{service} migrate`")
    return OK if up_to_date else FAILED


# --- the command line -----------------------------------------------------------------------------------


def parser(prog: str = "gather-admin") -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=prog,
        description="Gather's operator's toolkit. Reads GATHER_BROKER_URL and GATHER_DATABASE_URL as the "
        "services do; prints nothing that names an attendee. Exit status: 0 done, 1 not found or not "
        "reachable or not up to date, 2 wrong command or purge not confirmed.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="command")

    letters = commands.add_parser(
        "dead-letters", help="list, show, replay or purge dead-lettered messages (<queue>.dlq)"
    ).add_subparsers(dest="action", required=True, metavar="action")
    service_help = "only this service's queue (default: every consuming service)"

    def dead_letter_command(name: str, help_: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        command = letters.add_parser(name, help=help_, description=help_)
        command.add_argument("--service", choices=sorted(CONSUMERS), help=service_help)
        command.set_defaults(run=run)
        return command

    dead_letter_command(
        "list", "list the dead letters: type, id, source, time, attempts, redacted error", dead_letters_list
    )
    show = dead_letter_command(
        "show", "show one dead letter: its data's field names, ids and times, never a contact", dead_letters_show
    )
    show.add_argument("key", help="the id `list` shows (the message's id, or body-<hash>)")
    for name, help_, run in (
        (
            "replay",
            "move dead letters back to their queue, after a fix (already handled ones change nothing)",
            dead_letters_replay,
        ),
        ("purge", "delete dead letters for good (asks for --yes)", dead_letters_purge),
    ):
        command = dead_letter_command(name, help_, run)
        which = command.add_mutually_exclusive_group(required=True)
        which.add_argument("keys", nargs="*", default=[], help="ids as `list` shows them")
        which.add_argument("--all", action="store_true", help="every dead letter (of --service, if given)")
        if name == "purge":
            command.add_argument("--yes", action="store_true", help="really delete (without it: say what would go)")

    stuck = commands.add_parser(
        "outbox",
        help="list messages waiting in each service's outbox (never their body)",
        description="Messages written but not yet published: the relay is stopped, or the broker unreachable.",
    )
    stuck.add_argument("--older-than", type=float, default=60.0, metavar="SECONDS", help="default: 60")
    stuck.add_argument("--service", choices=SERVICES, help="only this service's database")
    stuck.set_defaults(run=outbox)

    again = commands.add_parser(
        "resend",
        help="send a failed notification again (failed → pending, attempts reset)",
        description="Send failed notifications again, after the cause (say, the SMTP server) is fixed.",
    )
    again.add_argument("ids", nargs="+", metavar="notification_id", help="as GET /v1/notifications shows it")
    again.set_defaults(run=resend)

    versions = commands.add_parser(
        "migrations",
        help="show each database's migration version against the newest",
        description="Each service's database: its Alembic revision, and whether it is the newest (head).",
    )
    versions.add_argument("--service", choices=SERVICES, help="only this service's database")
    versions.set_defaults(run=migrations)
    return top


def main(argv: Sequence[str] | None = None, prog: str = "gather-admin") -> int:
    args = parser(prog).parse_args(argv)
    keep_files_private()  # the embedded broker's folders, if this creates them, are the operator's alone
    try:
        return int(args.run(args))
    except _CommandError as exc:
        print(exc, file=sys.stderr)
        return FAILED


def run() -> None:
    """The `gather-admin` console script."""
    sys.exit(main())
