"""The default torch thread count follows the hardware and the load, once per process."""

from __future__ import annotations

import os

import pytest

from gdbm.utils import threads


def test_default_threads_leaves_the_cores_other_jobs_keep_busy(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    for load, expected in ((0.3, 2), (1.2, 1), (2.7, 1), (5.0, 1)):
        threads.default_threads.cache_clear()
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert threads.default_threads() == expected
    threads.default_threads.cache_clear()


def test_an_explicit_count_or_the_environment_wins(monkeypatch):
    assert threads.choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose_threads(None) is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert threads.choose_threads(None) == threads.default_threads() >= 1


@pytest.mark.parametrize("argv", [["--threads", "0", "models"], ["models", "--threads", "0"]])
def test_zero_threads_is_refused(argv, capsys):
    from gdbm.cli.main import main

    assert main(argv) == 2 and "--threads must be >= 1" in capsys.readouterr().err
