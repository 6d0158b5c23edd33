"""Progress reports: a tqdm bar on a terminal, occasional plain lines in a log, nothing when quiet.

Every progress bar of the package is made by :func:`tqdm` here (a drop-in for ``tqdm.tqdm``),
which decides by the verbosity (``gdbm --quiet`` / ``--verbose``, :func:`set_verbosity`) and
by whether stderr is a terminal:

- quiet: no progress output at all;
- stderr a terminal: the usual tqdm bar;
- stderr a file or a pipe (a batch job's log): a plain line such as
  ``frames: 30/100 frame (30%) [00:12<00:28, 2.50frame/s]`` at most every
  :data:`LOG_INTERVAL` seconds (every :data:`VERBOSE_LOG_INTERVAL` s with ``--verbose``), one
  sooner when a further tenth is done, and a last one when the bar closes (none for a nested bar,
  ``leave=False``, or for a bar that ended within :data:`QUICK` seconds without a line).

The verbosity travels to worker processes in the environment variable :data:`VERBOSITY_VARIABLE`.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from tqdm import tqdm as _tqdm

VERBOSITY_VARIABLE = "GDBM_VERBOSITY"
QUIET, NORMAL, VERBOSE = -1, 0, 1
LOG_INTERVAL = 10.0
VERBOSE_LOG_INTERVAL = 2.0
QUICK = 2.0  # s: a bar that ends sooner, having printed nothing, prints nothing
MIN_GAP = 1.0  # s between two lines at least (a further tenth done sooner waits)
#: A plain progress line (what tests leave out when they count the lines of stderr).
PLAIN_LINE = re.compile(r"^\S[^:]*: [\d.]+[kMGT]?(/[\d.]+[kMGT]?)? \S+ (\(\d+%\) )?\[[\d:]+[<,\]]")
_PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_PLAIN_FORMAT_OPEN = "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]"


def verbosity() -> int:
    """:data:`QUIET`, :data:`NORMAL` or :data:`VERBOSE` (from :data:`VERBOSITY_VARIABLE`; default normal)."""
    try:
        return max(QUIET, min(VERBOSE, int(os.environ.get(VERBOSITY_VARIABLE, NORMAL))))
    except ValueError:
        return NORMAL


def set_verbosity(level: int) -> None:
    """Set the verbosity for this process and the processes it starts."""
    os.environ[VERBOSITY_VARIABLE] = str(max(QUIET, min(VERBOSE, int(level))))


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class PlainProgress(_tqdm):
    """A tqdm whose display is an occasional whole line (for logs) instead of a redrawn bar."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._interval = VERBOSE_LOG_INTERVAL if verbosity() >= VERBOSE else LOG_INTERVAL
        self._last_time: float | None = None
        self._last_n: float | None = None
        self._last_tenth = 0
        self._plain_closed = False
        kwargs.setdefault("mininterval", 1.0)
        kwargs.setdefault("ascii", True)
        super().__init__(*args, **kwargs)

    def __str__(self) -> str:
        d = self.format_dict
        d["bar_format"] = _PLAIN_FORMAT if d.get("total") else _PLAIN_FORMAT_OPEN
        d["desc"] = (d.get("prefix") or "progress").rstrip(": ")
        return self.format_meter(**d)

    def _emit(self) -> None:
        try:
            self.fp.write(str(self) + "\n")
            self.fp.flush()
        except (OSError, ValueError):
            pass
        self._last_time, self._last_n = self._time(), self.n

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if self._plain_closed or not self.n or self.n == self._last_n or not hasattr(self, "start_t"):
            return True  # (tqdm's __init__ displays a resumed bar before it sets start_t)
        now = self._time()
        since = now - (self._last_time if self._last_time is not None else self.start_t)
        tenth = int(10 * self.n / self.total) if self.total else 0
        if since >= self._interval or (tenth > self._last_tenth and since >= MIN_GAP and now - self.start_t >= QUICK):
            self._last_tenth = tenth
            self._emit()
        return True

    def clear(self, nolock: bool = False) -> None:  # lines are never redrawn, so nothing to clear
        pass

    def moveto(self, n: int) -> None:
        pass

    def close(self) -> None:
        if self.disable or self._plain_closed:
            return
        self._plain_closed = True
        quick = self._last_time is None and self._time() - getattr(self, "start_t", 0.0) < QUICK
        if self.n and self.n != self._last_n and self.leave is not False and not quick:
            self._emit()
        self.disable = True


def tqdm(*args: Any, **kwargs: Any) -> _tqdm:
    """``tqdm.tqdm(*args, **kwargs)`` as the verbosity and the terminal say (see the module doc).

    ``disable=True`` turns the bar off as in tqdm; ``disable=None`` (tqdm's "off unless a
    terminal") here means on, as plain lines when stderr is no terminal."""
    if kwargs.get("disable") or verbosity() <= QUIET:
        kwargs["disable"] = True
        return _tqdm(*args, **kwargs)
    kwargs["disable"] = False
    stream = kwargs.get("file") or sys.stderr
    if _is_terminal(stream):
        return _tqdm(*args, **kwargs)
    return PlainProgress(*args, **kwargs)
