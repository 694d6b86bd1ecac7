"""Print a .env for `docker compose up`: a new random value for every secret docker-compose.yml requires
(each `${NAME:?...}` in it). Run once: `python3 deploy/new-env.py > .env` (keep it out of git: .gitignore
does). The values use letters, digits, - and _ only, which URLs and RabbitMQ's definitions keep as they are."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def required_secrets(compose: str) -> list[str]:
    return sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", compose)))


if __name__ == "__main__":
    for name in required_secrets(COMPOSE.read_text()):
        print(f"{name}={secrets.token_urlsafe(32)}")
