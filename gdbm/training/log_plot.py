"""The training plot ``training.png``: a run's ``log.csv`` drawn over the generator updates.

Six panels, the x axis the generator update in each, the end of the supervised warm-up
marked: the squared distance to the reference per atom and of each sequence's centre (training
batches, the fixed batch of held-out frames); the energies of the generated atoms against the reference's per term;
the held-out angles between beads; the critic's numbers of the adversarial phase (loss, Wasserstein
estimate, gradient penalty); the energy prior's weight; the angle and dihedral distributions' distance to
the reference's. The trainer redraws it beside ``log.csv`` at every checkpoint, and
:func:`plot_training_log` draws it from any run folder, old logs without validation columns
included (a column a log lacks is an empty curve, never an error).

matplotlib is imported when a plot is drawn (``import gdbm.training`` stays light), through
its object interface and the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from gdbm.training.log import LOG
from gdbm.utils.atomic_files import atomic_path
from gdbm.utils.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PLOT = "training.png"
VALIDATION_PREFIX = "val_"
FEW_POINTS = 30  # curves of fewer logged steps get markers (a single point is no line)
CRITIC_COLUMNS = (("critic_loss", "critic loss"), ("wasserstein", "Wasserstein estimate"),
                  ("gradient_penalty", "gradient penalty"))

Columns = dict[str, tuple[list[int], list[float]]]  # name -> (steps, values) of the rows that hold it


def read_log(path: str | Path) -> Columns:
    """Every column of a ``log.csv`` as ``(steps, values)`` over the rows where it is filled.

    Columns added later in a run (the file's header widened) are simply empty in earlier rows.
    """
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
            fields = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read the training log: {err}", path) from None
    if rows and "step" not in fields:
        raise InputError("a training log has a 'step' column; this one has none", path)
    columns: Columns = {}
    for line, row in enumerate(rows, start=2):
        try:
            step = int(row["step"])
        except (TypeError, ValueError):
            raise InputError(f"step {row['step']!r} is not a whole number", path, line) from None
        for name, text in row.items():
            if name is None or name == "step" or not text:
                continue
            try:
                value = float(text)
            except (TypeError, ValueError):
                raise InputError(f"column {name}: {text!r} is not a number", path, line) from None
            steps, values = columns.setdefault(name, ([], []))
            steps.append(step)
            values.append(value)
    return columns


def warm_up_end(columns: Columns) -> int | None:
    """The last supervised update, read from the log: the last step logged with a training
    ``supervised_mse`` when adversarial numbers follow it (None: no warm-up, or still in it)."""
    supervised, adversarial = columns.get("supervised_mse"), columns.get("wasserstein")
    if not supervised or not adversarial:
        return None
    last = max(supervised[0])
    return last if last < min(adversarial[0]) else None


def _energy_terms(columns: Columns) -> list[str]:
    """The energy categories logged (training or validation), in first-seen order."""
    terms: list[str] = []
    for name in columns:
        bare = name.removeprefix(VALIDATION_PREFIX)
        if bare.startswith("energy_") and bare[7:] not in terms:
            terms.append(bare[7:])
    return terms


def _difference(columns: Columns, prefix: str, term: str) -> tuple[list[int], list[float], bool] | None:
    """Generated minus reference energy of ``term`` at the steps where both are logged, and True;
    without a reference (training under prior ``min``), the generated energy and False; None when
    the term is not logged."""
    fake = columns.get(f"{prefix}energy_{term}")
    if fake is None:
        return None
    real = dict(zip(*columns.get(f"{prefix}reference_{term}", ([], []))))
    if not real:
        return *fake, False
    pairs = [(s, v - real[s]) for s, v in zip(*fake) if s in real]
    return [s for s, _ in pairs], [d for _, d in pairs], True


def _curve(ax: Axes, steps: list[int], values: list[float], style: str = "-", **kwargs) -> None:
    """One curve; sparse ones (validation, short runs) marked point by point."""
    marker = {} if "o" in style or len(steps) >= FEW_POINTS else {"marker": "."}
    ax.plot(steps, values, style, markersize=3, **marker, **kwargs)


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.5")


def _log_curves(ax: Axes, columns: Columns, curves: tuple[tuple[str, str, str], ...], title: str, unit: str,
                empty: str) -> None:
    """Each ``(column, colour, what)`` on training batches (solid) and held-out frames (dashed), log scale."""
    drawn = False
    for name, colour, what in curves:
        for prefix, style, where in (("", "-", "training batches"), (VALIDATION_PREFIX, "o--", "held-out frames")):
            steps, values = columns.get(prefix + name, ([], []))
            if steps:
                _curve(ax, steps, values, style, color=colour, label=f"{what}, {where}")
                drawn = True
    ax.set_title(title)
    if drawn:
        ax.set_yscale("log")
        ax.set_ylabel(unit)
        ax.legend(fontsize=8, loc="upper right")
    else:
        _note(ax, empty)


def _mse_panel(ax: Axes, columns: Columns) -> None:
    """Squared distance to the reference per atom (blue) and, where logged, the squared shift of each
    sequence's centre (orange: the CG consistency), the error of its interatomic distances (green: its
    shape) and of its bonded terms' spans (red: its geometry against its bonded neighbours), on training
    batches and held-out frames."""
    curves = (("supervised_mse", "C0", "per atom"), ("centre_mse", "C1", "sequence centre"),
              ("shape_mse", "C2", "distances within a sequence"), ("geometry_mse", "C3", "bonded terms' spans"))
    _log_curves(ax, columns, curves, "squared distance to the reference", "nm$^2$", "no supervised MSE logged")


def _energy_panel(ax: Axes, columns: Columns) -> None:
    terms = _energy_terms(columns)
    with_reference = any(name.removeprefix(VALIDATION_PREFIX).startswith("reference_") for name in columns)
    colours = {term: f"C{i}" for i, term in enumerate(terms)}
    for prefix, style, where in (("", "-", "training"), (VALIDATION_PREFIX, "o--", "held-out")):
        for term in terms:
            curve = _difference(columns, prefix, term)
            if curve and curve[0]:
                steps, values, difference = curve
                what = where if difference or not with_reference else f"{where}, generated"
                _curve(ax, steps, values, style, color=colours[term], label=f"{term} ({what})")
    ax.set_title("generated - reference energy" if with_reference else "generated energy")
    ax.set_ylabel("kJ/mol per sequence")
    if terms:
        ax.set_yscale("symlog", linthresh=1.0)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.legend(fontsize=7, ncol=2, loc="upper right")
    else:
        _note(ax, "no energies logged (prior mode none)")


def _critic_panel(ax: Axes, columns: Columns) -> None:
    drawn = False
    for name, label in CRITIC_COLUMNS:
        steps, values = columns.get(name, ([], []))
        if steps:
            _curve(ax, steps, values, label=label)
            drawn = True
    ax.set_title("critic (adversarial phase)")
    if drawn:
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.legend(fontsize=8, loc="upper right")
    else:
        _note(ax, "no adversarial update logged yet")


def _prior_panel(ax: Axes, columns: Columns) -> None:
    steps, values = columns.get("prior_weight", ([], []))
    ax.set_title("energy prior weight $\\lambda_{pot}$")
    if steps:
        _curve(ax, steps, values, color="C3")
    else:
        _note(ax, "no prior weight logged")


def _cross_angle_panel(ax: Axes, columns: Columns) -> None:
    """The held-out angles between beads, teacher forced (the one-step precision the sampler inherits)."""
    steps, values = columns.get(f"{VALIDATION_PREFIX}cross_angle_rms", ([], []))
    ax.set_title("angles between beads, held-out frames")
    if steps:
        _curve(ax, steps, values, "o--", color="C0")
        ax.set_ylabel("degrees rms")
    else:
        _note(ax, "no validation angles logged")


def _distribution_panel(ax: Axes, columns: Columns) -> None:
    """The angle and dihedral distributions' squared Wasserstein distance to the reference's, per type."""
    curves = (("angle_distribution", "C1", "angles"), ("dihedral_distribution", "C2", "dihedrals"))
    _log_curves(ax, columns, curves, "distribution distance (W2$^2$ per type)", "rad$^2$",
                "no distribution terms logged")


def plot_training_log(source: str | Path, out: str | Path | None = None, *,
                      warm_up: int | None = None) -> Path:
    """Draw a run's training log (``source``: the run folder or its ``log.csv``) into ``out``
    (default: ``training.png`` beside the log), written atomically; returns ``out``.

    ``warm_up``: the number of supervised updates (the config's ``training.pretrain_steps``),
    marked on every panel; None reads it from the log (:func:`warm_up_end`).
    """
    source = Path(source)
    log = source / LOG if source.is_dir() else source
    if not log.is_file():
        raise InputError(f"no training log ({LOG}) here", log)
    columns = read_log(log)
    out = Path(out) if out is not None else log.parent / PLOT
    warm_up = warm_up if warm_up is not None else warm_up_end(columns)
    last = max((max(steps) for steps, _ in columns.values()), default=0)

    from matplotlib.figure import Figure  # the object interface: no pyplot state, Agg when saved

    fig = Figure(figsize=(16, 7.5), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True)
    panels = (_mse_panel, _energy_panel, _cross_angle_panel, _critic_panel, _prior_panel, _distribution_panel)
    for draw, ax in zip(panels, axes.flat):
        draw(ax, columns)
        ax.grid(alpha=0.3)
        if warm_up and 0 < warm_up <= last:
            ax.axvline(warm_up, color="0.3", linestyle=":", linewidth=1.2)
    for ax in axes[1]:
        ax.set_xlabel("generator update")
    marked = f"; dotted: end of the supervised warm-up (update {warm_up})" if warm_up and warm_up <= last else ""
    fig.suptitle(f"{log.parent.name or log.parent.resolve().name}: {last} generator updates{marked}", fontsize=10)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out
