from gather_notifications import sender
from gather_notifications.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_notifications.handlers import handlers
from gather_shared import service


def consume() -> None:
    rt = runtime()
    service.run_consumer(rt, handlers(rt.settings))


service.cli(
    SERVICE,
    MIGRATIONS,
    {
        "consume": consume,
        "send": lambda: sender.run(runtime(), service.stop_on_signals()),
    },
)
