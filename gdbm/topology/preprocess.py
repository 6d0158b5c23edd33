"""A C-preprocessor subset for GROMACS topologies: ``#include``, ``#define``, ``#ifdef``.

The result is a list of :class:`Line` records that remember their file and line number, so
that every later error can say where the offending text came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gdbm.utils.config_files import read_text
from gdbm.utils.errors import InputError

_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*)$")


@dataclass(frozen=True)
class Line:
    """One logical line of topology text (comments stripped) and where it came from."""

    text: str
    path: str
    number: int

    def error(self, message: str) -> InputError:
        return InputError(message, self.path, self.number)


def _strip_comment(text: str) -> str:
    return text.split(";", 1)[0].strip()


def _substitute(text: str, defines: dict[str, str]) -> str:
    """Replace whole-word macros (GROMOS parameter macros such as ``gb_12``)."""
    if not defines:
        return text
    return " ".join(defines.get(tok, tok) for tok in text.split())


def preprocess(path: str | Path, defines: dict[str, str] | None = None,
               include_dirs: list[Path] | None = None) -> list[Line]:
    """Expand includes and conditionals of a topology file into logical lines."""
    defines = dict(defines or {})
    out: list[Line] = []
    _expand(Path(path), defines, list(include_dirs or []), out, stack=[])
    return out


def _resolve_include(name: str, here: Path, include_dirs: list[Path], line: Line) -> Path:
    for base in [here.parent, *include_dirs]:
        candidate = base / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(b) for b in [here.parent, *include_dirs])
    raise line.error(f'#include "{name}": file not found (searched {searched})')


def _expand(path: Path, defines: dict[str, str], include_dirs: list[Path], out: list[Line],
            stack: list[Path]) -> None:
    if not path.is_file():
        raise InputError("topology file not found", path)
    if path.resolve() in stack:
        raise InputError("recursive #include", path)
    stack = [*stack, path.resolve()]
    raw = read_text(path).splitlines()
    # each entry: (this branch active, some branch of this #if already taken)
    conditions: list[tuple[bool, bool]] = []
    continued = ""
    for number, text in enumerate(raw, start=1):
        if text.rstrip().endswith("\\"):
            continued += text.rstrip()[:-1] + " "
            continue
        text, continued = continued + text, ""
        line = Line(text, str(path), number)
        active = all(c[0] for c in conditions)
        directive = _DIRECTIVE.match(text)
        if directive:
            name, arg = directive.group(1), _strip_comment(directive.group(2))
            if name in ("ifdef", "ifndef"):
                taken = (arg in defines) == (name == "ifdef")
                conditions.append((taken, taken))
            elif name == "else":
                if not conditions:
                    raise line.error("#else without #ifdef")
                _, taken = conditions[-1]
                conditions[-1] = (not taken, True)
            elif name == "endif":
                if not conditions:
                    raise line.error("#endif without #ifdef")
                conditions.pop()
            elif not active:
                continue
            elif name == "define":
                parts = arg.split(None, 1)
                if not parts:
                    raise line.error("#define needs a name")
                defines[parts[0]] = parts[1] if len(parts) > 1 else ""
            elif name == "undef":
                defines.pop(arg, None)
            elif name == "include":
                target = _resolve_include(arg.strip('"<>'), path, include_dirs, line)
                _expand(target, defines, include_dirs, out, stack)
            else:
                raise line.error(f"unsupported preprocessor directive #{name}")
            continue
        if not active:
            continue
        body = _substitute(_strip_comment(text), defines)
        if body:
            out.append(Line(body, str(path), number))
    if conditions:
        raise InputError("#ifdef without matching #endif", path)
