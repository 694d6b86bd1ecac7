from gather_shared import service
from gather_signup import privacy
from gather_signup.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_signup.handlers import handlers


def consume() -> None:
    rt = runtime()
    service.run_consumer(rt, handlers(rt.settings))


def schedule() -> None:
    rt = runtime()
    privacy.run_retention(rt.sessions, rt.settings.retention_days, service.stop_on_signals())


service.cli(
    SERVICE,
    MIGRATIONS,
    {
        "relay": lambda: service.run_relay(runtime()),
        "consume": consume,
        "schedule": schedule,
    },
)
