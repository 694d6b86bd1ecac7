import threading

from gather_shared import service
from gather_signup import privacy, verification
from gather_signup.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_signup.handlers import handlers


def consume() -> None:
    rt = runtime()
    service.run_consumer(rt, handlers(rt.settings))


def schedule() -> None:
    """The scheduled jobs: unverified registrations lapse (every minute), the retention job (hourly)."""
    rt = runtime()
    stop = service.stop_on_signals()
    lapses = threading.Thread(
        target=verification.run_lapses, args=(rt.sessions, rt.settings.verify_minutes, stop), name="lapses"
    )
    lapses.start()
    privacy.run_retention(rt.sessions, rt.settings.retention_days, stop)
    lapses.join()


service.cli(
    SERVICE,
    MIGRATIONS,
    {
        "relay": lambda: service.run_relay(runtime()),
        "consume": consume,
        "schedule": schedule,
    },
)
