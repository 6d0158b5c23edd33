"""Training logs: one CSV row per logged step (appended, so a resumed run continues the file)."""

from __future__ import annotations

import csv
from pathlib import Path


class CSVLog:
    """Appends rows of named scalars; the header is written once and must stay the same."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fields: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, newline="") as fh:
                self.fields = next(csv.reader(fh))

    def write(self, row: dict[str, float | int]) -> None:
        if self.fields is None:
            self.fields = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.fields)
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore").writerow(row)

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))
