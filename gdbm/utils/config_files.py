"""YAML config files read the same way by every loader: checked mapping in, validated pydantic model out."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gdbm.utils.errors import InputError

Model = TypeVar("Model", bound=BaseModel)


def read_sections(path: Path, overrides: dict | None = None) -> dict:
    """The YAML mapping of ``path`` (it must have a ``data`` section), ``overrides`` merged section by section."""
    if not path.is_file():
        raise InputError("no such config file", path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise InputError(f"not valid YAML: {err}", path, None if line is None else line + 1) from err
    if not isinstance(raw, dict) or "data" not in raw:
        raise InputError("expected a mapping with at least a 'data' section", path)
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values}
    return raw


def validate(model: type[Model], raw: dict, path: Path) -> Model:
    """``raw`` as ``model``; the first problem becomes one :class:`InputError` naming the file."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(f"{where}: {first['msg']} ({len(err.errors())} problem(s) in all)", path) from err
