"""``gdbm backmap``: AA frames from CG frames with a trained model (argument glue only)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gdbm.cli.common import SEVERAL_MAPS, MappingFiles, deprecate
from gdbm.utils.devices import check_device
from gdbm.utils.errors import InputError
from gdbm.cli.temporal import add_backmap_arguments as add_temporal_arguments
from gdbm.cli.temporal import run_backmap as run_temporal

if TYPE_CHECKING:
    from gdbm.sampling.jobs import BackmapReport


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmap`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("backmap", help="backmap CG frames with a trained model",
                              description="Generate AA frames for CG frames: a forward pass along the "
                                          "reconstruction plan, then Gibbs sweeps, keeping per bead the "
                                          "lowest-energy of several candidates. Finished frames are kept in "
                                          "OUTPUT.parts/ until the output is written: a rerun continues an "
                                          "interrupted job. Frames are shared by --workers N processes, or "
                                          "by the processes of torchrun --nproc-per-node N -m gdbm backmap.")
    p.add_argument("--top", help="AA topology with force-field parameters (required unless --temporal)")
    p.add_argument("--map", action=MappingFiles,
                   help="reconstruction mapping (home beads, [align]), as in training (required unless --temporal)"
                        + SEVERAL_MAPS)
    p.add_argument("--cg-map", action=MappingFiles,
                   help="the mapping (may be partial) that made the CG frames, whose bead centres --relax and "
                        "--hold-centres hold on the CG positions (default: --map, the reconstruction mapping)"
                        + SEVERAL_MAPS)
    p.add_argument("--cg", required=True, help="CG frames (.xtc/.gro/... or a folder of .gro)")
    p.add_argument("--cg-struct", help="structure file naming the beads of a CG .xtc")
    p.add_argument("--init", help="AA frames to refine instead of a forward pass (one per CG frame; morphing "
                                  "scheme B, see also 'gdbm morph')")
    p.add_argument("--init-struct", help="structure file of --init")
    add_sampling_arguments(p, frames="CG")
    refine = p.add_argument_group("refinement after the generator (one command from CG to relaxed AA frames)")
    refine.add_argument("--refine", choices=("none", "minimize", "thermal"), default="none",
                        help="none (default: the generator's own frames), minimize (steepest descent, every bead "
                             "centre by --cg-map held) or thermal (then a restrained Langevin run in OpenMM); the "
                             "recipe (steps, temperature, stages, electrostatics) is the checkpoint's; the "
                             "generator's frames are kept as OUTPUT.raw.xtc")
    refine.add_argument("--refine-config", metavar="YAML",
                        help="refine settings overriding the checkpoint's (keys: steps, constrain_bonds, "
                             "temperature, stages, restraint, timestep, friction, minimize, cutoff, coulomb, "
                             "epsilon_rf; docs/relaxation.md)")
    refine.add_argument("--temperature", type=float, metavar="K",
                        help="temperature of the thermal run (default: the checkpoint's training system's)")
    refine.add_argument("--refine-device", metavar="cpu|cuda",
                        help="where the thermal run goes: cpu (OpenMM CPU, the default) or cuda")
    add_temporal_arguments(p)
    deprecate(p, "--hold-map", "--cg-map")
    p.set_defaults(run=run)


def add_sampling_arguments(p: argparse.ArgumentParser, frames: str) -> None:
    """The arguments ``gdbm backmap`` and ``gdbm morph`` share: model, sampler, output, processes.

    ``frames``: what ``--frames`` selects (e.g. "CG"). Each command adds its own ``--cg-map``.
    """
    p.add_argument("--checkpoint", required=True,
                   help="a gdbm fit checkpoint (checkpoint.pt) or a shipped model's name, e.g. sps-voxel; the "
                        "sampler settings it recorded (a shipped model's: those it was scored with, see its note) "
                        "apply wherever the sampler flags below are not given, else the defaults they name")
    p.add_argument("--parameters", help="supplementary parameter file in GROMACS syntax")
    p.add_argument("--cg-itp", help="CG topology (default: found beside the mapping)")
    p.add_argument("--frames", help=f"backmap {frames} frames START:STOP only (e.g. 0:10)")
    p.add_argument("-o", "--output", required=True,
                   help="AA trajectory to write (.xtc, .dcd, .trr, .pdb, .gro for one frame; checked before any work)")
    p.add_argument("--samples", type=int, default=1, help="AA samples per CG frame (default 1)")
    p.add_argument("--gibbs", type=int, help="Gibbs sweeps after the forward pass (default 2)")
    p.add_argument("--candidates", metavar="K|K1,K2,...",
                   help="candidates per bead, lowest energy kept (default 4 in every pass and 16 in the last, whose "
                        "choice is kept); K: K in every pass; or one number per pass (forward pass, then each "
                        "sweep; the last repeats), e.g. 4,8,16")
    p.add_argument("--hydrogen-candidates", type=int, metavar="K",
                   help="candidates per bead for the hydrogen-only steps, in every pass (at most --candidates' "
                        "number there; default: the same as the heavy atoms): hydrogens are half a "
                        "hydrocarbon's atoms, so this is the cheapest cut in time, best with --hydrogen-lookahead")
    p.add_argument("--noise-scale", type=float, metavar="S",
                   help="the generator's latent noise times S (default 1): a sampling temperature of the network "
                        "itself, spreading its candidates")
    p.add_argument("--selection-weights", metavar="TERM=W,...",
                   help="weight of each energy category (bond, angle, proper, improper, lj; lookahead: the "
                        "sites of --hydrogen-lookahead) in the score that picks a candidate, e.g. bond=0.1 "
                        "(default 1 each)")
    p.add_argument("--score-hidden", action=argparse.BooleanOptionalAction,
                   help="score the candidates of a heavy-atom step with the adjacent beads' hydrogens present "
                        "(the network still does not see them): lets their clashes decide, e.g. a phenyl ring's "
                        "turn against the backbone's hydrogens")
    p.add_argument("--hydrogen-lookahead", nargs="?", const="planar_ch,ch,ch2", metavar="SHAPES",
                   help="score the candidates of a heavy-atom step with ideal hydrogen sites on its atoms standing "
                        "in for the bead's own hydrogens (built later), so that their contacts, e.g. a phenyl's "
                        "hydrogens against its neighbours', count when the heavy atoms are chosen; SHAPES: "
                        "planar_ch (aromatic CH), ch (tetrahedral CH), ch2, comma-separated (default all three)")
    p.add_argument("--clash-retries", type=int, metavar="ROUNDS",
                   help="rounds of --candidates more for a bead whose kept candidate has a clashing atom pair "
                        "(default 0 = off)")
    p.add_argument("--clash-energy", type=float, metavar="KJ_MOL",
                   help="a Lennard-Jones pair above this is a clash (default 10 kJ/mol)")
    p.add_argument("--ordering", metavar="dfs|bfs|random|POLICY",
                   help="reconstruction order instead of the checkpoint's: a traversal or an order policy "
                        "file from 'gdbm order'")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler's noise and candidates (default 0)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda or cuda:N")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="network arithmetic (default auto: bfloat16 where the CPU (AVX512-BF16, AMX) or GPU computes "
                        "it natively, else float32); on a Xeon with AMX an sPS frame took 68 s in bfloat16 against "
                        "87 s in float32, and many times longer where bfloat16 is emulated")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the generator: faster per frame after a one-off compilation (~90 s on CPU)")
    p.add_argument("--constrain-bonds", action=argparse.BooleanOptionalAction,
                   help="after each pass, set every bond to its b0 (when the reference MD constrained bonds; with "
                        "--temporal: bonds to hydrogen)")
    p.add_argument("--hold-centres", nargs="?", const="rigid", choices=("off", "rigid", "smooth", "pivot", "seat"),
                   metavar="off|rigid|smooth|pivot|seat",
                   help="after each pass, move the atoms so that each CG bead's centre (by --cg-map) sits on its CG "
                        "input position: rigid (the default when given bare) shifts each bead's atoms as one body "
                        "and bends the bonds between beads; smooth spreads each correction along the molecule, "
                        "changing bond and 1-3 vectors least (with --constrain-bonds: both, alternated); pivot "
                        "first turns each pendant bead (e.g. a phenyl ring) about the one bond that holds it, "
                        "then smooth for what is left; seat first turns each pendant bead towards its "
                        "attachment's ideal site, then bends it out of its plane towards its centre, then smooth")
    p.add_argument("--fit-bonds", action=argparse.BooleanOptionalAction,
                   help="before scoring, fit every candidate to the topology's bond lengths without bending it: a "
                        "step's heavy atoms scaled about their centroid, each hydrogen moved along its bond")
    p.add_argument("--bond-cap", metavar="NM|off",
                   help="after the last pass, shorten every bond longer than its b0 + NM to that length (the bead "
                        "centres held again), leaving the rest as generated: removes a generator's rare broken "
                        "bonds (default: off)")
    p.add_argument("--pendant-turns", type=int, metavar="N",
                   help="score N versions of each candidate of a step that places a pendant group (a phenyl "
                        "ring on its CH), turned about its holding bond 360/N degrees apart, so that the energy "
                        "chooses the ring's turn from every turn (default 1: the network's candidates only)")
    p.add_argument("--pendant-tilt", metavar="DEG",
                   help="also score four copies of each pendant candidate turned about its ipso by +-DEG degrees "
                        "in the ring's plane and out of it, so that the energy chooses the ring's lean and tilt "
                        "('off': none, the default)")
    p.add_argument("--selection-kt", type=float, metavar="KJ_MOL",
                   help="choose each item's candidate by a Boltzmann draw at this kT (kJ/mol; 568 K: 4.72) "
                        "instead of the lowest energy (default 0: the lowest)")
    p.add_argument("--held-candidates", action=argparse.BooleanOptionalAction,
                   help="in the Gibbs sweeps, move each heavy-atom candidate onto its beads' CG centres (by "
                        "--cg-map) before it is scored, so that the energy chooses among held candidates")
    p.add_argument("--hydrogen-sweep", action=argparse.BooleanOptionalAction,
                   help="after the last pass and its centre hold, place the hydrogens once more, chosen by energy "
                        "among the held heavy atoms and not held again (the centres move by the hydrogens' share "
                        "of the bead's mass)")
    p.add_argument("--seat-keep", type=float, metavar="F",
                   help="with --hold-centres seat: the fraction of each pendant attachment's angle from its ideal "
                        "site that is kept (default 0.7; 1 moves none, 0 puts every one on its site)")
    p.add_argument("--relax", type=int, metavar="STEPS",
                   help="steps of steepest descent on the force field after the last sweep, every CG bead's "
                        "centre held on its input (removes close contacts; default 0 = off)")
    p.add_argument("--stereo-from", metavar="AA_STRUCTURE",
                   help="an AA structure of this system whose stereocentres (tacticity, L/D) the output copies "
                        "(default: the handedness the model recorded from its training frames)")
    p.add_argument("--no-stereo", action="store_true", default=None,
                   help="leave stereocentres as generated (no inversion of wrongly handed ones)")
    p.add_argument("--no-hydrogen-names", action="store_true", default=None,
                   help="leave the names of each CH2's and CH3's equivalent hydrogens as generated (default: named "
                        "as in the model's training frames, a CH3's turned at random, no atom of the set moved)")
    p.add_argument("--no-stereo-select", action="store_true", default=None,
                   help="keep the lowest-energy candidate whatever its stereocentres' handedness (default: the "
                        "lowest-energy rightly handed one; the rule inverts only what every candidate got wrong)")
    p.add_argument("--type-alias", help="YAML {atoms: {type: model type}, beads: {...}}: the model's names for "
                                        "this system's types (a model trained on other molecules)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes sharing the frames (default 1; each gets --threads / N threads)")
    p.add_argument("--max-batch", type=int,
                   help="environments (beads x candidates) per network call; bounds memory (default 4096)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file and start over")


SELECTION_TERMS = ("bond", "angle", "proper", "improper", "lj", "lookahead")
LOOKAHEAD_SHAPES = ("planar_ch", "ch", "ch2")  # gdbm.topology.hydrogens.SHAPES


def _selection_weights(text: str | None) -> dict[str, float]:
    """``--selection-weights bond=0.1,lj=2`` as ``{"bond": 0.1, "lj": 2.0}``; unset: ``{}`` (every weight 1)."""
    weights: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        term, _, value = item.partition("=")
        term = term.strip()
        if term not in SELECTION_TERMS:
            raise InputError(f"--selection-weights: unknown energy category {term!r} in {text!r}; "
                             f"expected some of {', '.join(SELECTION_TERMS)} as TERM=W")
        try:
            weights[term] = float(value)
        except ValueError:
            raise InputError(f"--selection-weights: {item.strip()!r} needs a number after '=' (e.g. bond=0.1)")
        if not weights[term] >= 0:
            raise InputError(f"--selection-weights: {term} must be >= 0, got {value}")
    return weights


def _lookahead_shapes(text: str | None) -> tuple[str, ...]:
    """``--hydrogen-lookahead planar_ch,ch2`` as ``("planar_ch", "ch2")``; unset or ``none``: ``()`` (off)."""
    if text is not None and text.strip() == "none":
        return ()
    shapes = tuple(dict.fromkeys(item.strip() for item in (text or "").split(",") if item.strip()))
    unknown = [shape for shape in shapes if shape not in LOOKAHEAD_SHAPES]
    if unknown or (text is not None and not shapes):
        raise InputError(f"--hydrogen-lookahead: unknown shape {(unknown or [text])[0]!r}; expected some of "
                         f"{', '.join(LOOKAHEAD_SHAPES)}, comma-separated")
    return shapes


def _bond_cap(text: str | None) -> float | None:
    """``--bond-cap 0.04`` as 0.04 nm; unset or ``off``: None."""
    if text is None or text == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--bond-cap takes a length in nm or 'off', got {text!r}") from None


def _pendant_tilt(text: str | None) -> float | None:
    """``--pendant-tilt 10`` as 10 degrees; unset or ``off``: None."""
    if text is None or text == "off":
        return None
    try:
        degrees = float(text)
    except ValueError:
        raise InputError(f"--pendant-tilt takes an angle in degrees or 'off', got {text!r}") from None
    if not 0 < degrees < 90:
        raise InputError(f"--pendant-tilt must be between 0 and 90 degrees, got {degrees}")
    return degrees


def job_options(args: argparse.Namespace) -> dict:
    """The :class:`~gdbm.sampling.jobs.BackmapJob` keyword arguments of :func:`add_sampling_arguments`, checked."""
    from gdbm.sampling.backmapper import sampler_for

    if args.samples < 1:
        raise InputError("--samples must be >= 1")
    try:
        per_pass = tuple(int(k) for k in str(args.candidates).split(",")) if args.candidates is not None else ()
    except ValueError:
        raise InputError(f"--candidates takes a whole number or a comma-separated list of them, "
                         f"got {args.candidates!r}")
    if per_pass and min(per_pass) < 1:
        raise InputError("--candidates must be >= 1")
    for flag, value, low in (("--gibbs", args.gibbs, 0), ("--relax", args.relax, 0),
                             ("--clash-retries", args.clash_retries, 0), ("--max-batch", args.max_batch, 1),
                             ("--selection-kt", args.selection_kt, 0),
                             ("--hydrogen-candidates", args.hydrogen_candidates, 1),
                             ("--pendant-turns", args.pendant_turns, 1)):
        if value is not None and value < low:
            raise InputError(f"{flag} must be >= {low}")
    bond_cap = _bond_cap(args.bond_cap)
    for flag, value in (("--clash-energy", args.clash_energy), ("--noise-scale", args.noise_scale),
                        ("--bond-cap", bond_cap)):
        if value is not None and not value > 0:
            raise InputError(f"{flag} must be > 0")
    pendant_tilt = _pendant_tilt(args.pendant_tilt)
    if args.seat_keep is not None and not 0 <= args.seat_keep <= 1:
        raise InputError("--seat-keep must be between 0 and 1")
    # the flags given; the rest are the model's recorded settings, else SamplerConfig's defaults
    given = {key: value for key, value in dict(
        n_gibbs=args.gibbs, constrain_bonds=args.constrain_bonds, hold_centres=args.hold_centres,
        fit_bonds=args.fit_bonds, bond_cap=bond_cap, pendant_turns=args.pendant_turns, pendant_tilt=pendant_tilt,
        seat_keep=args.seat_keep, hydrogen_sweep=args.hydrogen_sweep,
        held_candidates=args.held_candidates, selection_kt=args.selection_kt,
        relax_steps=args.relax,
        stereo=None if args.no_stereo is None else False,
        stereo_select=None if args.no_stereo_select is None else False,
        hydrogen_names=None if args.no_hydrogen_names is None else False, clash_retries=args.clash_retries,
        clash_energy=args.clash_energy, score_hidden=args.score_hidden, hydrogen_candidates=args.hydrogen_candidates,
        noise_scale=args.noise_scale, max_batch=args.max_batch).items() if value is not None}
    if args.bond_cap == "off":
        given["bond_cap"] = None
    if args.pendant_tilt == "off":
        given["pendant_tilt"] = None
    if per_pass:
        given.update(candidates=per_pass[0], pass_candidates=per_pass if len(per_pass) > 1 else None)
    if args.selection_weights is not None:
        given["selection_weights"] = _selection_weights(args.selection_weights)
    if args.hydrogen_lookahead is not None:
        given["hydrogen_lookahead"] = _lookahead_shapes(args.hydrogen_lookahead)
    config = sampler_for(args.checkpoint, {**given, "seed": args.seed, "precision": args.precision,
                                           "compile": args.compile})
    if args.seat_keep is not None and config.hold_centres != "seat":
        raise InputError("--seat-keep is a setting of --hold-centres seat, which was not given")
    if args.no_stereo and args.stereo_from:
        raise InputError("--stereo-from and --no-stereo contradict each other")
    check_device(args.device)
    ordering = None
    if args.ordering:
        from gdbm.ordering import OrderingConfig

        ordering = (OrderingConfig(traversal=args.ordering) if args.ordering in ("dfs", "bfs", "random")
                    else OrderingConfig(traversal="learned", policy=args.ordering))
    return dict(checkpoint=args.checkpoint, topology=args.top, mapping=args.map, sampler=config, frames=args.frames,
                samples=args.samples, cg_itp=args.cg_itp, parameters=args.parameters, hold=args.cg_map,
                type_alias=args.type_alias, device=args.device, ordering=ordering, stereo_from=args.stereo_from)


def report_outcome(report: BackmapReport, command: str) -> int:
    """Print what a trajectory backmapping wrote and which frames failed; the exit code."""
    import sys

    print(f"wrote {report.frames_written} frames to {report.output} in {report.seconds:.1f} s")
    if report.failed:
        for frame, error in report.failed.items():
            print(f"gdbm {command}: frame {frame} failed: {error}", file=sys.stderr)
        print(f"gdbm {command}: {len(report.failed)} frames failed and are missing from {report.output}; "
              f"rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    from gdbm.sampling.jobs import BackmapJob, backmap_trajectory
    from gdbm.utils.distributed import from_environment

    if args.temporal or args.frame_based:
        return run_temporal(args)
    if args.thermalize:
        raise InputError("--thermalize belongs to --temporal and --frame-based backmapping")
    if not args.top or not args.map:
        raise InputError("--top and --map are required (unless --temporal)")
    job = BackmapJob(cg=args.cg, cg_struct=args.cg_struct, init=args.init, init_struct=args.init_struct,
                     **job_options(args))
    if args.refine == "none":
        if args.refine_config or args.temperature is not None:
            raise InputError("--refine-config and --temperature belong to --refine minimize|thermal")
        report = backmap_trajectory(job, args.output, workers=args.workers,
                                    distributed=from_environment(join=False), force=args.force)
    else:
        import torch

        from gdbm.sampling.pipeline import backmap_refined, refinement_for

        refinement = refinement_for(args.checkpoint, args.refine, recipe_file=args.refine_config,
                                    overrides={"temperature": args.temperature}, device=args.refine_device)
        report = backmap_refined(job, args.output, refinement, workers=args.workers,
                                 distributed=from_environment(join=False), force=args.force,
                                 threads=torch.get_num_threads())
    return 0 if report is None else report_outcome(report, "backmap")  # None: not the main process of torchrun
