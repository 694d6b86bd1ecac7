"""The README's walkthrough works exactly as written, against a running platform, and its API overview
names every path the services serve."""

import re
import subprocess
from pathlib import Path

import pytest

from gather_shared.testing import ADMIN_TOKEN, API_SERVICES, REPO, Platform, create_app


def walkthrough() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Five-minute walkthrough", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_readme_walkthrough_ends_with_the_confirmation_sent_once_the_link_is_followed(
    embedded_platform: Platform,
) -> None:
    script = walkthrough()
    for name, port in {"events": 8001, "signup": 8002, "notifications": 8003}.items():
        script = script.replace(f"http://localhost:{port}", embedded_platform.urls[name])
    (embedded_platform.workdir / "var").mkdir(exist_ok=True)
    (embedded_platform.workdir / "var/admin-token").write_text(ADMIN_TOKEN)

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=embedded_platform.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "published"
    assert lines[1] == "check_your_messages"
    assert lines[2] == "confirmed"
    assert lines[3].endswith(".eml")
    assert lines[-1] == "sent"


def normalised(path: str) -> str:
    """A path with each of its parameters written `{}`: the README's `{id}` is the OpenAPI's `{event_id}`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.mark.parametrize("service", API_SERVICES)
def test_the_readme_api_overview_names_every_path_a_service_serves(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATHER_DATABASE_URL", f"sqlite:///{tmp_path}/{service}.db")
    spec = create_app(service).test_client().get("/openapi.json").get_json()
    readme = (REPO / "README.md").read_text()
    overview = readme.split("## API overview", 1)[1].split("\n## ", 1)[0]
    rows = [normalised(row) for row in overview.splitlines() if row.startswith(f"| {service} |")]

    missing = [path for path in spec["paths"] if not any(f"{normalised(path)}`" in row for row in rows)]
    assert not missing, f"not in the README's API overview: {missing}"
