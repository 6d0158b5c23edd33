"""What ``gdbm eval`` measures on a set of frames (:class:`Observation`) and the metric registry.

Every number of ``metrics.json``, every column of ``summary.md`` and every plot comes from a
:class:`Metric` in :data:`METRICS`; the built-in ones are registered in
:mod:`gdbm.analysis.standard_metrics` (imported by :mod:`gdbm.analysis.evaluate`), in the order
of the summary table's columns.

How to add a metric:

1. Write one function. A metric of one set alone (no reference needed) takes an
   :class:`Observation` and returns ``{key: value}``; a metric of a generated set against the
   reference takes ``(reference, generated)`` observations. Return ``{}`` where the metric does
   not apply (e.g. no CG frames)::

       def bond_spread(ref: Observation, gen: Observation) -> Values:
           return {"bond_spread_ratio": float(gen.geometry["all_bonds"].std() / ref.geometry["all_bonds"].std())}

2. Register it once, in :mod:`gdbm.analysis.standard_metrics` or in your own code before the
   evaluation runs::

       register(Metric("bond_spread", compare=bond_spread, columns=(("bond_spread_ratio", "bond spread"),)))

   ``metrics.json`` then holds its keys for every generated set and the noise floor (a per-set
   metric's also for the reference), ``columns`` puts keys into the summary
   table (in registration order), ``details`` adds keys without a ``/`` to the per-type table
   (keys with a ``/`` are listed there anyway), and ``plot`` draws its figures from every
   set's observation.

If the metric needs a raw measurement an :class:`Observation` does not hold yet, add the field
here and fill it in :meth:`gdbm.analysis.evaluate.Evaluator.observe`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gdbm.analysis.rdf import RDFCounts

Values = dict[str, float | int | None]


@dataclass
class Observation:
    """Everything measured on one set of frames, kept raw so that sets can be merged."""

    n_frames: int
    geometry: dict[str, Tensor]  # flat values per distribution key
    energies: dict[str, Tensor]  # [F, n_molecules] per energy key
    rdf: RDFCounts
    close: Tensor  # distances of non-excluded pairs closer than CLASH
    heavy: Tensor  # distances of intermolecular heavy-atom pairs closer than HEAVY_CLASH
    cg_deviation: Tensor | None = None  # [F * n_beads] bead distances to the CG input
    bead_forces: dict[str, Tensor] | None = None  # |F_I| (Eq. 6.3) per bead type and pooled, flat
    lj_by_pair: dict[str, Tensor] | None = None  # [F] LJ per frame, kJ/mol, per "A-B intra|inter" atom-type pair

    def merge(self, other: "Observation") -> "Observation":
        """The observation of both sets of frames together."""
        def cat(a: Tensor | None, b: Tensor | None) -> Tensor | None:
            return None if a is None or b is None else torch.cat([a, b])

        rdf = RDFCounts(self.rdf.groups, self.rdf.counts + other.rdf.counts, self.rdf.ideal + other.rdf.ideal,
                        self.rdf.width, self.rdf.r_max)
        return Observation(self.n_frames + other.n_frames,
                           {k: torch.cat([v, other.geometry[k]]) for k, v in self.geometry.items()},
                           {k: torch.cat([v, other.energies[k]]) for k, v in self.energies.items()},
                           rdf, torch.cat([self.close, other.close]), torch.cat([self.heavy, other.heavy]),
                           cat(self.cg_deviation, other.cg_deviation),
                           None if self.bead_forces is None or other.bead_forces is None else
                           {k: torch.cat([v, other.bead_forces[k]]) for k, v in self.bead_forces.items()},
                           None if self.lj_by_pair is None or other.lj_by_pair is None else
                           join_per_frame([(self.n_frames, self.lj_by_pair), (other.n_frames, other.lj_by_pair)]))

    @property
    def scalars(self) -> Values:
        """This set's own numbers (the per-set metrics): clashes, long bonds, energies, CG consistency."""
        return measure(self)


def join_per_frame(parts: list[tuple[int, dict[str, Tensor]]]) -> dict[str, Tensor]:
    """Per-key series of several runs of frames ``(n_frames, {key: [n_frames]})`` joined in order; a key
    one part lacks counts zero in its frames."""
    keys = sorted({k for _, series in parts for k in series})
    return {k: torch.cat([series.get(k, torch.zeros(n, dtype=torch.float64)) for n, series in parts]) for k in keys}


@dataclass(frozen=True)
class Metric:
    """One metric: exactly one of ``measure`` (one set) or ``compare`` (reference, generated).

    ``columns``: ``(key, label)`` of its summary-table columns; ``details``: further keys shown
    as rows of the per-type table; ``plot(observations, folder)``: the figures it writes;
    ``floor_from_whole``: the noise-floor row shows its value on the whole reference rather
    than on the second half (a property of the reference itself, such as its CG consistency).
    """

    name: str
    measure: Callable[[Observation], Values] | None = None
    compare: Callable[[Observation, Observation], Values] | None = None
    columns: tuple[tuple[str, str], ...] = ()
    details: tuple[str, ...] = ()
    plot: Callable[[dict[str, Observation], Path], list[Path]] | None = None
    floor_from_whole: bool = False

    def __post_init__(self) -> None:
        if (self.measure is None) == (self.compare is None):
            raise ValueError(f"metric {self.name!r} needs exactly one of measure or compare")


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` (its name must be new); its columns follow those before it."""
    if metric.name in METRICS:
        raise ValueError(f"a metric named {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def measure(obs: Observation) -> Values:
    """Every per-set metric of ``obs``."""
    out: Values = {}
    for metric in METRICS.values():
        if metric.measure is not None:
            out.update(metric.measure(obs))
    return out


def compare(ref: Observation, gen: Observation) -> Values:
    """The metrics of ``gen`` against ``ref``: every compared metric, then ``gen``'s per-set metrics."""
    out: Values = {}
    for metric in METRICS.values():
        if metric.compare is not None:
            out.update(metric.compare(ref, gen))
    out.update(measure(gen))
    return out


def floor_from_whole(whole: Observation) -> Values:
    """The values that the noise-floor row takes from the whole reference."""
    out: Values = {}
    for metric in METRICS.values():
        if metric.floor_from_whole and metric.measure is not None:
            out.update(metric.measure(whole))
    return out


def summary_columns() -> list[tuple[str, str]]:
    """``(key, label)`` of every summary-table column, in registration order."""
    return [column for metric in METRICS.values() for column in metric.columns]


def detail_keys() -> list[str]:
    """The keys without a ``/`` that metrics add to the per-type table, in registration order."""
    return [key for metric in METRICS.values() for key in metric.details]


def plot_metrics(observations: dict[str, Observation], directory: Path) -> list[Path]:
    """Every registered plot of ``observations`` (one per set) into ``directory``; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    return [path for metric in METRICS.values() if metric.plot is not None
            for path in metric.plot(observations, directory)]
