from gather_shared import service
from gather_signup import privacy
from gather_signup.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_signup.handlers import HANDLERS


def schedule() -> None:
    rt = runtime()
    privacy.run_retention(rt.sessions, rt.settings.retention_days, service.stop_on_signals())


service.cli(
    SERVICE,
    MIGRATIONS,
    {
        "relay": lambda: service.run_relay(runtime()),
        "consume": lambda: service.run_consumer(runtime(), HANDLERS),
        "schedule": schedule,
    },
)
