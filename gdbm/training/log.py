"""Training logs: one CSV row per logged step (appended, so a resumed run continues the file)."""

from __future__ import annotations

import csv
from pathlib import Path

from gdbm.utils.atomic_files import atomic_path

LOG = "log.csv"  # a run folder's log (gdbm.training.run_folder)


class CSVLog:
    """Appends rows of named scalars. A row with new names rewrites the file once with the wider
    header (earlier rows get empty cells); names a row lacks stay empty in it. So a run resumed
    with more columns (validation, added after its log began) widens its old log in place."""

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
        elif any(name not in self.fields for name in row):
            old = self.rows()
            self.fields = self.fields + [name for name in row if name not in self.fields]
            with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self.fields, restval="")
                writer.writeheader()
                writer.writerows(old)
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, restval="").writerow(row)

    def drop_after(self, step: int) -> None:
        """Remove the rows of steps after ``step`` (a run resumed from an earlier checkpoint)."""
        if self.fields is None or "step" not in self.fields:
            return
        rows = self.rows()
        kept = [r for r in rows if not r["step"] or int(r["step"]) <= step]
        if len(kept) < len(rows):
            with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self.fields, restval="")
                writer.writeheader()
                writer.writerows(kept)

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))
