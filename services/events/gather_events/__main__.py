from gather_shared import service

from gather_events.bootstrap import MIGRATIONS, SERVICE, runtime

service.cli(SERVICE, MIGRATIONS, {"relay": lambda: service.run_relay(runtime())})
