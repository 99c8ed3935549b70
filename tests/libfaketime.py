"""A pytest plugin for `make test-clock` only (`pytest -p tests.libfaketime`), which runs the suite
under Debian's libfaketime with FAKETIME_DONT_FAKE_MONOTONIC=1.

Debian 12's libfaketime 0.9.10 has two faults with Python 3.11, both fixed upstream in 0.9.11:
with the monotonic clock faked, every timed lock wait lasts for years (it does not intercept
sem_clockwait), so a `threading.Timer` never fires and the rate limiter's memory storage keeps
the process from exiting; with the monotonic clock left alone, it passes an uninitialised deadline
on to clock_nanosleep, so every `time.sleep()` fails with EINVAL. The target leaves the monotonic
clock alone, and this plugin makes `time.sleep()` wait on an event instead, which libfaketime
does not touch. Nothing changes outside libfaketime.

A server a test starts in a process of its own (tests/faults.py: gunicorn) gets the same fix by
starting through this module: `python -m tests.libfaketime gunicorn ...` patches `time.sleep` and
runs the named module as `python -m` would (`module_command`). Its forked workers inherit it.
supervisord's programs (tests/test_fault_supervise.py) start through it too: the test hands
supervisord this interpreter prefix (`python_command`) in COMPANION_PYTHON.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

import pytest


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


def under_faketime() -> bool:
    return "faketime" in os.environ.get("LD_PRELOAD", "")


def pytest_configure(config: pytest.Config) -> None:
    if under_faketime():
        time.sleep = _sleep


def python_command() -> list[str]:
    """The interpreter to put before `-m module args...`: this one, and under libfaketime through
    this module (see above). For commands a test hands to another program (supervisord)."""
    return [sys.executable, "-m", "tests.libfaketime"] if under_faketime() else [sys.executable]


def module_command(module: str, *args: str) -> list[str]:
    """`python -m module args...`, through this module under libfaketime (see above)."""
    return [*python_command(), "-m", module, *args]


if __name__ == "__main__":
    # python -m tests.libfaketime -m MODULE ARGS...: run MODULE as __main__ with the sleep fix.
    if sys.argv[1:2] != ["-m"] or len(sys.argv) < 3:
        sys.exit("usage: python -m tests.libfaketime -m MODULE [ARGS...]")
    time.sleep = _sleep
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
