"""app.log_limit.RepeatLimit: a message logged over and over fills no disk (issue 17, point 1).

On a fake clock, with a real logging handler writing to a real file.
"""
from __future__ import annotations

import logging

import pytest

from app.log_limit import MAX_TEMPLATES, RepeatLimit


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def logged(tmp_path, clock):
    """A logger whose handler writes through RepeatLimit(burst=3, window 60 s) to a file;
    returns (logger, read lines)."""
    path = tmp_path / "hub.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RepeatLimit(burst=3, window_s=60.0, now=clock))
    log = logging.getLogger(f"test.log_limit.{id(handler)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)

    def lines():
        handler.flush()
        return path.read_text().splitlines()

    yield log, lines
    log.removeHandler(handler)
    handler.close()


def test_a_line_repeated_thousands_of_times_is_written_only_burst_times_a_window(logged):
    log, lines = logged
    for i in range(10_000):
        log.error("accept failed: %s", f"Too many open files ({i})")
    assert lines() == [f"ERROR accept failed: Too many open files ({i})" for i in range(3)]


def test_the_first_line_of_the_next_window_says_how_many_were_not_logged(logged, clock):
    log, lines = logged
    for _ in range(10):
        log.warning("rejected %s", "x")
    clock.t += 60.0
    log.warning("rejected %s", "y")
    assert lines()[-1] == "WARNING rejected y [7 more like this in the last 60 s not logged]"
    log.warning("rejected %s", "z")  # the count is said once, not again
    assert lines()[-1] == "WARNING rejected z"


def test_distinct_messages_are_never_held_back_by_one_that_repeats(logged):
    log, lines = logged
    for _ in range(100):
        log.error("flood %d", 1)
    log.error("the broker went away")
    log.info("flood %d", 1)  # same template, another level: its own count
    assert lines()[-2:] == ["ERROR the broker went away", "INFO flood 1"]


def test_a_repeat_inside_the_window_stays_dropped_until_the_window_is_over(logged, clock):
    log, lines = logged
    for _ in range(3):
        log.error("same")
    clock.t += 59.9
    log.error("same")
    assert len(lines()) == 3
    clock.t += 0.1
    log.error("same")
    assert lines()[-1] == "ERROR same [1 more like this in the last 60 s not logged]"


def test_a_message_that_is_no_string_is_counted_by_its_type(logged):
    log, lines = logged
    for _ in range(5):
        log.error(ValueError("bad payload"))
    assert lines() == ["ERROR bad payload"] * 3


def test_the_templates_tracked_are_bounded(clock):
    limit = RepeatLimit(burst=1, window_s=60.0, now=clock)
    for i in range(MAX_TEMPLATES + 50):
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, f"template {i}", None, None)
        assert limit.filter(record)
    assert len(limit._windows) <= MAX_TEMPLATES
