"""The tests' own waits: every limit in a browser test is generous enough for a busy 2-core CI machine.

Two browser training tests once timed out while the machine was heavily loaded: their waits followed
the app's state, but with 60 s limits (and Playwright's `expect` with its 5 s default). Every wait now
uses conftest.BUSY_MS (or more); this test keeps a shorter literal from creeping back in.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import BUSY_MS

TESTS = Path(__file__).resolve().parent
LIMIT = re.compile(r"(?:timeout|set_default_timeout\()\s*=?\s*([0-9_]+)\b")


def test_no_browser_test_waits_less_than_a_busy_machine_needs():
    assert BUSY_MS >= 300_000
    short = []
    for path in sorted(TESTS.glob("test_browser_*.py")) + [TESTS / "conftest.py"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in LIMIT.finditer(line):
                value = int(match.group(1).replace("_", ""))
                if 1000 <= value < BUSY_MS:  # milliseconds (Playwright); second-valued limits are under 1000
                    short.append(f"{path.name}:{number}: {line.strip()}")
    assert short == []
