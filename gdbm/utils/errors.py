"""Errors raised for bad input: each names the file, the line and what was expected; and how the command
line words any error in one line (:func:`describe_error`)."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path


class InputError(ValueError):
    """A file (or an argument) that cannot be used, with where and why.

    ``str(err)`` reads ``path:line: message`` so that editors and terminals can jump to it.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.message = message
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        super().__init__(where + message)


TRACEBACK_VARIABLE = "GDBM_TRACEBACK"  # set (not "0"): the command line re-raises errors with their traceback
EXIT_INPUT, EXIT_FAULT, EXIT_INTERRUPTED = 2, 1, 130
_MAX_MESSAGE = 600
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OS_WORDS = {errno.ENOSPC: "no space left on device", errno.EACCES: "permission denied",
             errno.EPERM: "operation not permitted", errno.EISDIR: "is a folder, expected a file",
             errno.ENOTDIR: "a part of the path is a file, not a folder", errno.ENOENT: "no such file or folder",
             errno.EROFS: "read-only file system", errno.EDQUOT: "disk quota exceeded"}


def one_line(text: object) -> str:
    """``text`` on one line (whitespace runs as one space), cut to a readable length."""
    line = " ".join(str(text).split())
    return line if len(line) <= _MAX_MESSAGE else line[:_MAX_MESSAGE - 3] + "..."


def _file_in_traceback(err: BaseException) -> str | None:
    """The file a failing reader had open: a local ``path``/``filename``/... naming an existing file,
    innermost frame first."""
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for name in ("path", "filename", "file", "fname", "source", "config"):
            value = frame.f_locals.get(name)
            if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
                return str(value)
    return None


def _raised_by_gdbm(err: BaseException) -> bool:
    """Whether the innermost frame of ``err``'s traceback is gdbm code (an argument or input check of ours)."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE + os.sep)


def _describe_os_error(err: OSError, output: str | None) -> str:
    words = _OS_WORDS.get(err.errno or -1) or err.strerror or one_line(err)
    path = err.filename if err.filename is not None else output
    if err.filename2 is not None:
        path = f"{err.filename} -> {err.filename2}"
    where = f"{path}: " if path is not None else ""
    if isinstance(err, TimeoutError) and err.errno is None:
        return f"error: {one_line(err)}"
    hint = "; free some space and rerun" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"error: {where}{words}{hint}"


def _describe_decode_error(err: UnicodeDecodeError) -> str:
    path = _file_in_traceback(err)
    where = f"{path}: " if path else ""
    byte = err.object[err.start:err.start + 1].hex() if isinstance(err.object, (bytes, bytearray)) else "?"
    return (f"error: {where}byte 0x{byte} at offset {err.start} is not {err.encoding} text; expected a "
            "UTF-8 (or ASCII) text file")


def _is_out_of_memory(err: BaseException) -> bool:
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if isinstance(err, MemoryError) or (oom is not None and isinstance(err, oom)):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def _describe_validation_error(err: Exception) -> str:
    problems = []
    for item in err.errors():  # type: ignore[attr-defined]
        where = ".".join(str(part) for part in item.get("loc", ())) or "(top level)"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    title = getattr(err, "title", "config")
    return f"error: {title}: " + "; ".join(problems)


def _is_validation_error(err: BaseException) -> bool:
    return type(err).__name__ == "ValidationError" and callable(getattr(err, "errors", None))


def describe_error(err: BaseException, output: str | None = None) -> tuple[str, int]:
    """One line for the user about ``err`` and the exit code: 2 for bad input (files, arguments, configs),
    1 for faults (memory, internal errors), 130 for Ctrl-C. ``output``: the command's output path, named
    where an error has no path of its own and where finished frames are kept."""
    if isinstance(err, KeyboardInterrupt):
        parts = Path(f"{output}.parts") if output else None
        kept = f"; finished frames are kept in {parts}" if parts is not None and parts.is_dir() else ""
        return f"interrupted{kept}", EXIT_INTERRUPTED
    if isinstance(err, InputError):
        return f"error: {one_line(err)}", EXIT_INPUT
    if _is_out_of_memory(err):
        return (f"error: out of memory ({one_line(err) or type(err).__name__}); use fewer frames, a smaller "
                "--max-batch or a smaller cutoff", EXIT_FAULT)
    if isinstance(err, UnicodeDecodeError):
        return one_line(_describe_decode_error(err)), EXIT_INPUT
    if isinstance(err, BrokenPipeError):
        return "error: the output pipe was closed", EXIT_FAULT
    if isinstance(err, OSError):
        return one_line(_describe_os_error(err, output)), EXIT_INPUT
    if _is_validation_error(err):
        return one_line(_describe_validation_error(err)), EXIT_INPUT  # type: ignore[arg-type]
    if isinstance(err, ValueError) and _raised_by_gdbm(err):
        return f"error: {one_line(err)}", EXIT_INPUT
    return (f"internal error: {type(err).__name__}: {one_line(err)} (set {TRACEBACK_VARIABLE}=1 for the "
            "traceback, and please report it)", EXIT_FAULT)
