"""`make install` installs third-party code only from requirements.lock (pinned, with hashes): every
dependency that requirements.txt or a package's pyproject.toml asks for must be in it. When this fails,
run `make lock` (README: "Adding a dependency")."""

from __future__ import annotations

import re
import tomllib

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gather_shared.testing import REPO

LOCK = (REPO / "requirements.lock").read_text()
#: name, version and environment marker of each pin (a universal lock may pin one name twice, by Python version)
ENTRIES = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)(?: ; (.+?))? \\$", LOCK, re.M)
#: what this machine installs from the lock
PINS = {
    canonicalize_name(name): version for name, version, marker in ENTRIES if not marker or Marker(marker).evaluate()
}
PACKAGES = [
    REPO / line.removeprefix("-e ")
    for line in (REPO / "requirements.txt").read_text().splitlines()
    if line.startswith("-e ")
]


def wanted() -> dict[str, list[Requirement]]:
    """Every third-party requirement, by the file that states it."""
    tools = [
        Requirement(line.split("#")[0])
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("-e ")
    ]
    found = {"requirements.txt": tools}
    for package in PACKAGES:
        project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
        found[str(package.relative_to(REPO) / "pyproject.toml")] = [
            Requirement(spec) for spec in project.get("dependencies", []) if not spec.startswith("gather-")
        ]
    return found


def is_pinned(requirement: Requirement) -> bool:
    version = PINS.get(canonicalize_name(requirement.name))
    return version is not None and requirement.specifier.contains(version, prereleases=True)


def test_every_package_of_gather_is_installed_by_make_install() -> None:
    packages = {
        path.name for path in [REPO / "shared", *(REPO / "services").iterdir()] if (path / "pyproject.toml").exists()
    }
    assert {path.name for path in PACKAGES} == packages, "add it to requirements.txt as `-e ./services/<name>`"


def test_the_lock_pins_every_dependency_at_a_version_it_allows() -> None:
    missing = [
        f"{source}: {requirement}"
        for source, requirements in wanted().items()
        for requirement in requirements
        if not is_pinned(requirement)
    ]
    assert missing == [], "requirements.lock is out of date: run `make lock`"


def test_every_pin_carries_its_hashes_and_none_is_a_package_of_this_repository() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.split("\n", 2)[2])  # after the two-line header
    assert len(entries) == len(ENTRIES) and all("--hash=sha256:" in entry for entry in entries)
    # gather-* exist only here: a gather-* pin would come from an index, where anyone may publish that name.
    assert not [name for name, _, _ in ENTRIES if name.startswith("gather-")]
    assert not re.search(r"^-e |file://", LOCK, re.M)


def test_the_image_installs_from_the_lock_with_hashes() -> None:
    dockerfile = (REPO / "deploy/Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in dockerfile
    assert re.search(r"pip install [^\n]*--no-deps[^\n]* \./shared", dockerfile)
