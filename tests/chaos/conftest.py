"""The chaos suite: faults injected into a running store, and what was lost counted.

Every test reports what it injected and what it counted through the ``chaos`` fixture; the
lines are printed at the end of the run (and with the test's output if it fails).
"""
from __future__ import annotations

import pytest

REPORT: list[str] = []


class Chaos:
    def __init__(self, name: str):
        self.name = name

    def say(self, line: str) -> None:
        print(line)
        REPORT.append(f"{self.name}: {line}")


@pytest.fixture
def chaos(request) -> Chaos:
    return Chaos(request.node.name)


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("chaos: what was injected and what was counted")
        for line in REPORT:
            terminalreporter.write_line(line)
