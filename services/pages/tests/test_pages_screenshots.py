"""The README's gallery stays true without a browser: it shows every screenshot in docs/screenshots/, each
one it shows is there, and there is one for each page state the browser test checks (`make screenshots`
writes them again)."""

from __future__ import annotations

import re
from pathlib import Path

from gather_shared.testing import REPO

SCREENSHOTS = REPO / "docs/screenshots"
BROWSER_TEST = Path(__file__).with_name("test_pages_browser.py")


def test_the_readme_shows_every_screenshot_and_only_those() -> None:
    shown = set(re.findall(r'<img src="(docs/screenshots/[^"]+\.png)"', (REPO / "README.md").read_text()))
    assert shown == {str(path.relative_to(REPO)) for path in SCREENSHOTS.glob("*.png")}


def test_there_is_a_screenshot_of_each_page_state_the_browser_test_checks() -> None:
    # check_state(page, "name", …) or check_page(person, "heading", "name", …), in the order they run
    checked = re.findall(r'(?:check_state\(page|check_page\(\w+, "[^"]*"), "([\w-]+)"', BROWSER_TEST.read_text())
    taken = [re.sub(r"^\d\d-", "", path.stem) for path in sorted(SCREENSHOTS.glob("*.png"))]
    assert taken == checked
