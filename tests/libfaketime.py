"""A pytest plugin for `make test-clock` only (`pytest -p tests.libfaketime`), which runs the suite
under Debian's libfaketime with FAKETIME_DONT_FAKE_MONOTONIC=1.

Debian 12's libfaketime 0.9.10 has two faults with Python 3.11, both fixed upstream in 0.9.11:
with the monotonic clock faked, every timed lock wait lasts for years (it does not intercept
sem_clockwait), so a `threading.Timer` never fires and the rate limiter's memory storage keeps
the process from exiting; with the monotonic clock left alone, it passes an uninitialised deadline
on to clock_nanosleep, so every `time.sleep()` fails with EINVAL. The target leaves the monotonic
clock alone, and this plugin makes `time.sleep()` wait on an event instead, which libfaketime
does not touch. Nothing changes outside libfaketime.
"""

from __future__ import annotations

import os
import threading
import time

import pytest


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


def pytest_configure(config: pytest.Config) -> None:
    if "faketime" in os.environ.get("LD_PRELOAD", ""):
        time.sleep = _sleep
