from gather_events.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_shared import service

service.cli(SERVICE, MIGRATIONS, {"relay": lambda: service.run_relay(runtime())})
