from gather_shared import service
from gather_signup.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_signup.handlers import HANDLERS

service.cli(SERVICE, MIGRATIONS, {
    "relay": lambda: service.run_relay(runtime()),
    "consume": lambda: service.run_consumer(runtime(), HANDLERS),
})
