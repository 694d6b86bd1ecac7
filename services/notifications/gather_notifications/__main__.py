from gather_notifications import sender
from gather_notifications.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_notifications.handlers import HANDLERS
from gather_shared import service

service.cli(SERVICE, MIGRATIONS, {
    "consume": lambda: service.run_consumer(runtime(), HANDLERS),
    "send": lambda: sender.run(runtime(), service.stop_on_signals()),
})
