"""Text and YAML config files read the same way by every loader: checked text in, validated pydantic model out.

Every reader of a text format (topologies, mappings, configs) reads through :func:`read_text`, so a
file that is not UTF-8 text (another encoding, binary data) is one :class:`InputError` naming the
file, the line and the column, never a ``UnicodeDecodeError``.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gdbm.utils.errors import InputError

Model = TypeVar("Model", bound=BaseModel)


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped); anything else is an :class:`InputError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the file: {err.strerror or err}", path) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError("binary data (a NUL byte); expected a text file", path, _line_of(data, nul))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        column = err.start - data.rfind(b"\n", 0, err.start)
        raise InputError(f"byte 0x{data[err.start]:02x} at column {column} is not UTF-8; expected UTF-8 text "
                         "(save the file as UTF-8)", path, _line_of(data, err.start)) from None


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line of byte ``offset``."""
    return data.count(b"\n", 0, offset) + 1


def load_yaml(path: Path, text: str | None = None) -> object:
    """The YAML document of ``path`` (or of its ``text``, already read); a syntax error names its line."""
    text = read_text(path) if text is None else text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {_yaml_problem(err)}", path, _yaml_error_line(err, text)) from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """The YAML error's own words, without PyYAML's multi-line location block."""
    if isinstance(err, yaml.reader.ReaderError):
        return f"unacceptable character #x{err.character:04x}" if isinstance(err.character, int) else str(err.reason)
    parts = [getattr(err, "context", None), getattr(err, "problem", None)]
    return "; ".join(p for p in parts if p) or str(err).splitlines()[0]


def _yaml_error_line(err: yaml.YAMLError, text: str) -> int | None:
    """The 1-based line a YAML error points at, when it says."""
    mark = getattr(err, "problem_mark", None)
    if mark is not None:
        return mark.line + 1
    position = getattr(err, "position", None)
    return None if position is None else text.count("\n", 0, position) + 1


def read_sections(path: Path, overrides: dict | None = None) -> dict:
    """The YAML mapping of ``path`` (it must have a ``data`` section), ``overrides`` merged section by section."""
    if not path.is_file():
        raise InputError("no such config file", path)
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict) or "data" not in raw:
        raise InputError("expected a mapping with at least a 'data' section", path)
    for section, values in (overrides or {}).items():
        current = raw.get(section) or {}
        if not isinstance(current, dict):
            raise InputError(f"section {section!r}: expected a mapping of settings, got {type(current).__name__} "
                             f"{current!r}", path)
        raw[section] = {**current, **values}
    return raw


def validate(model: type[Model], raw: dict, path: Path) -> Model:
    """``raw`` as ``model``; the first problem becomes one :class:`InputError` naming the file."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(f"{where}: {first['msg']} ({len(err.errors())} problem(s) in all)", path) from err


def merge_sections(base: dict, override: dict) -> dict:
    """``override`` laid over ``base`` key by key, nested mappings merged rather than replaced
    (a config section given in part keeps the rest of the base's)."""
    out = dict(base)
    for key, value in override.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_sections(out[key], value) if nested else value
    return out
