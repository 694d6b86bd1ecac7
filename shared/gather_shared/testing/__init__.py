"""What Gather's tests share. The pytest plugin (fixtures and hooks) is `plugin.py`; the rest are helpers
a test imports from here:

- tiers.py     where the real PostgreSQL and RabbitMQ come from; a fresh database or vhost for a test
- service.py   one service in this process: its settings and database for a test module, and its
               messages in (`deliver`) and out (`outbox_messages`) without a broker
- samples.py   a valid event: the HTTP body (`event_body`) and the message snapshot (`event_snapshot`);
               contacts no other test uses (`unique_email`, `unique_phone`)
- platform.py  every Procfile process, started as `make run` starts them, and a `Client` for it
- cluster.py   a 3-node RabbitMQ cluster on this machine (the `rabbit_cluster` fixture)
- smtp.py      an SMTP server that counts who got which email (lost and duplicated ones)
"""

from gather_shared.testing.platform import (
    REPO,
    Client,
    Platform,
    free_port,
    messages_to,
    procfile,
    running_platform,
    verify_token_sent_to,
    wait_for,
)
from gather_shared.testing.samples import event_body, event_snapshot, unique_email, unique_phone
from gather_shared.testing.service import (
    ADMIN_TOKEN,
    API_SERVICES,
    RATE_LIMITS_OFF,
    SECRET_KEY,
    ServiceUnderTest,
    create_app,
    deliver,
    empty_tables,
    module_service,
    outbox_messages,
)
from gather_shared.testing.tiers import ExchangeSpy, fresh_pg_database, fresh_pg_databases, fresh_vhost, reset_broker

__all__ = [
    "ADMIN_TOKEN",
    "API_SERVICES",
    "RATE_LIMITS_OFF",
    "REPO",
    "SECRET_KEY",
    "Client",
    "ExchangeSpy",
    "Platform",
    "ServiceUnderTest",
    "create_app",
    "deliver",
    "empty_tables",
    "event_body",
    "event_snapshot",
    "free_port",
    "fresh_pg_database",
    "fresh_pg_databases",
    "fresh_vhost",
    "messages_to",
    "module_service",
    "outbox_messages",
    "procfile",
    "reset_broker",
    "running_platform",
    "unique_email",
    "unique_phone",
    "verify_token_sent_to",
    "wait_for",
]
