"""Load generators. Closed loops (GETs, and registrations with unique addresses) go through `wrk` (C) where the
machine has it; paced arrivals, and the closed loops on a machine without wrk, are threads of the benchmark
process, each with its own `requests.Session`."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from bench.harness import progress

Call = Callable[[requests.Session], Any]


@dataclass
class Outcome:
    results: list[Any]  # what each call returned (or the exception it raised), in call order
    finished: list[float]  # time.monotonic() when each call returned
    seconds: float  # from the start signal to the last answer
    started: float = 0.0  # time.monotonic() of the start signal

    def per_second(self) -> float:
        return len(self.results) / self.seconds


def _attempt(call: Call, session: requests.Session) -> Any:
    try:
        return call(session)
    except requests.RequestException as exc:  # a refused or reset connection counts as a failed call
        return exc


def _report_while(threads: list[threading.Thread], finished: list[float], label: str) -> None:
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        progress(f"{label}: {sum(1 for f in finished if f)}/{len(finished)}")


def burst(calls: Sequence[Call], clients: int, label: str) -> Outcome:
    """`clients` threads, all created first, then released together; each takes the next call as soon
    as its previous one returned (with as many clients as calls, every call is in flight at once)."""
    n = len(calls)
    results: list[Any] = [None] * n
    finished = [0.0] * n
    taken = iter(range(n))
    lock, go = threading.Lock(), threading.Event()

    def client() -> None:
        session = requests.Session()
        go.wait()
        while True:
            with lock:
                i = next(taken, None)
            if i is None:
                return
            results[i] = _attempt(calls[i], session)
            finished[i] = time.monotonic()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(min(clients, n))]
    for t in threads:
        t.start()
    started = time.monotonic()
    go.set()
    _report_while(threads, finished, label)
    return Outcome(results, finished, max(finished) - started, started)


def paced(calls: Sequence[Call], rate: float, clients: int, label: str) -> Outcome:
    """Open loop: call i is started at i / rate seconds, whether or not earlier calls have returned
    (a pool of `clients` threads carries them), so a slow server does not slow the arrivals."""
    n = len(calls)
    results: list[Any] = [None] * n
    finished = [0.0] * n
    local = threading.local()

    def one(i: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        results[i] = _attempt(calls[i], local.session)
        finished[i] = time.monotonic()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        started = time.monotonic()
        for i in range(n):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
            if i and i % int(rate) == 0:
                progress(f"{label}: {i}/{n} submitted")
    return Outcome(results, finished, max(finished) - started, started)


def for_duration(call: Call, clients: int, seconds: float, label: str) -> Outcome:
    """Closed loop: `clients` threads each repeat `call` back to back for `seconds`."""
    results: list[Any] = []
    finished: list[float] = []
    lock, go = threading.Lock(), threading.Event()
    deadline = 0.0

    def client() -> None:
        session = requests.Session()
        go.wait()
        while time.monotonic() < deadline:
            result = _attempt(call, session)
            with lock:
                results.append(result)
                finished.append(time.monotonic())

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    started = time.monotonic()
    deadline = started + seconds
    go.set()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        progress(f"{label}: {len(results)} requests")
    return Outcome(results, finished, max(finished) - started, started)


#: The HTTP load generator in C (Debian's `wrk`): the figures it drives are not bounded by this process's own
#: CPU, as the Python threads' are on two cores. `make bench` installs it where it can (Makefile).
WRK = shutil.which("wrk")
#: `N requests in 10.00s, …` and `Non-2xx or 3xx responses: M` in wrk's summary.
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(m?s)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def get_rate(url: str, params: dict[str, Any], clients: int, seconds: float, label: str) -> float:
    """Closed loop of GETs for `seconds` with `clients` connections: how many answered 200 per second.
    With wrk when the machine has it, else with Python threads (said in the progress output)."""
    url = url if urlsplit(url).path else f"{url}/"  # wrk sends a request line without a path otherwise
    full = f"{url}?{urlencode(params)}" if params else url
    if WRK is None:
        progress(f"{label}: wrk not found, Python threads load the server (they share its cores)")
        outcome = for_duration(lambda s: s.get(full, timeout=60), clients, seconds, label)
        ok = sum(1 for r in outcome.results if isinstance(r, requests.Response) and r.status_code == 200)
        return ok / outcome.seconds
    threads = max(1, min(2, clients))
    command = [WRK, f"-t{threads}", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", full]
    progress(f"{label}: wrk -t{threads} -c{clients} for {max(1, round(seconds))}s")
    summary = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    count, took, failed = _wrk_summary(summary)
    return (count - failed) / took


#: wrk's script for `post_rate`: each thread numbers its requests, so every registration has an address of its own
#: (`rush-<thread>-<n>@example.org`), and takes the paths given after `--` in turn (the events of a rush).
_UNIQUE_POSTS = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  paths, n = args, 0
end
function request()
  n = n + 1
  local body = string.format(
    '{"display_name":"Rusher","email":"rush-%d-%d@example.org","channels":["email"]}', tid, n)
  return wrk.format("POST", paths[(n % #paths) + 1], {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass
class Posted:
    succeeded: int  # answered 2xx
    failed: int  # answered otherwise, or not at all
    seconds: float

    def per_second(self) -> float:
        return self.succeeded / self.seconds


def post_rate(base_url: str, paths: Sequence[str], clients: int, seconds: float, label: str) -> Posted:
    """Closed loop of registrations with unique addresses for `seconds` from `clients` connections, the
    paths taken in turn. With wrk when the machine has it, else with Python threads (said in the output)."""
    if WRK is None:
        progress(f"{label}: wrk not found, Python threads load the server (they share its cores)")
        numbers = iter(range(10**9))

        def call(s: requests.Session) -> Any:
            n = next(numbers)
            body = {"display_name": "Rusher", "email": f"rush-{n}@example.org", "channels": ["email"]}
            return s.post(f"{base_url}{paths[n % len(paths)]}", json=body, timeout=60)

        outcome = for_duration(call, clients, seconds, label)
        ok = sum(1 for r in outcome.results if isinstance(r, requests.Response) and r.ok)
        return Posted(ok, len(outcome.results) - ok, outcome.seconds)
    duration = max(1, round(seconds))
    threads = max(1, min(2, clients))
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_UNIQUE_POSTS)
        script.flush()
        command = [WRK, f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--timeout", "30s", "-s", script.name]
        progress(f"{label}: wrk -t{threads} -c{clients} for {duration}s, unique addresses")
        summary = subprocess.run([*command, base_url, "--", *paths], capture_output=True, text=True, check=True).stdout
    count, took, failed = _wrk_summary(summary)
    return Posted(count - failed, failed, took)


def _wrk_summary(summary: str) -> tuple[int, float, int]:
    """(answers, seconds, answers other than 2xx/3xx) from wrk's summary; a request that got no answer
    (wrk's "Socket errors") is not among the answers."""
    total = _WRK_TOTAL.search(summary)
    if total is None:
        raise RuntimeError(f"wrk said nothing countable: {summary!r}")
    count, duration, unit = int(total.group(1)), float(total.group(2)), total.group(3)
    failed = _WRK_NON_2XX.search(summary)
    return count, duration / 1000 if unit == "ms" else duration, int(failed.group(1)) if failed else 0
