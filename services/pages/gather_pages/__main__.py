from gather_pages.bootstrap import MIGRATIONS, SERVICE, runtime
from gather_pages.handlers import handlers
from gather_shared import service


def consume() -> None:
    rt = runtime()
    service.run_consumer(rt, handlers(rt.settings))


service.cli(SERVICE, MIGRATIONS, {"consume": consume})
