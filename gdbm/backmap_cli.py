"""``gdbm backmap``: AA frames from CG frames with a trained model (argument glue only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gdbm.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmap`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("backmap", help="backmap CG frames with a trained model",
                              description="Generate AA frames for CG frames: a forward pass along the "
                                          "reconstruction plan, then Gibbs sweeps, keeping per bead the "
                                          "lowest-energy of several candidates.")
    p.add_argument("--checkpoint", required=True,
                   help="a gdbm fit checkpoint (checkpoint.pt) or a shipped model's name, e.g. sps-voxel")
    p.add_argument("--top", required=True, help="AA topology with force-field parameters")
    p.add_argument("--parameters", help="supplementary parameter file in GROMACS syntax")
    p.add_argument("--map", required=True, help="reconstruction mapping (home beads, [align]), as in training")
    p.add_argument("--cg-itp", help="CG topology (default: found beside the mapping)")
    p.add_argument("--cg", required=True, help="CG frames (.xtc/.gro/... or a folder of .gro)")
    p.add_argument("--cg-struct", help="structure file naming the beads of a CG .xtc")
    p.add_argument("--frames", help="backmap CG frames START:STOP only (e.g. 0:10)")
    p.add_argument("--init", help="AA frames to refine instead of a forward pass (morphing, scheme B)")
    p.add_argument("--init-struct", help="structure file of --init")
    p.add_argument("-o", "--output", required=True, help="AA trajectory to write (.xtc, .pdb, .gro for one frame)")
    p.add_argument("--samples", type=int, default=1, help="AA samples per CG frame (default 1)")
    p.add_argument("--gibbs", type=int, default=2, help="Gibbs sweeps after the forward pass (default 2)")
    p.add_argument("--candidates", type=int, default=8, help="candidates per bead, lowest energy kept (default 8)")
    p.add_argument("--ordering", metavar="dfs|bfs|random|POLICY",
                   help="reconstruction order instead of the checkpoint's: a traversal or an order policy "
                        "file from 'gdbm order'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="network arithmetic; bfloat16 is about 2x faster on CPUs with AVX512-BF16 and on GPUs")
    p.add_argument("--constrain-bonds", action="store_true",
                   help="after each pass, set every bond to its b0 (when the reference MD constrained bonds)")
    p.add_argument("--relax", type=int, default=0, metavar="STEPS",
                   help="steps of steepest descent on the force field after the last sweep, every CG bead's "
                        "centre held on its input (removes close contacts; default 0 = off)")
    p.add_argument("--hold-map", help="mapping (may be partial) that made the CG input, whose bead centres "
                                      "--relax holds (default --map)")
    p.add_argument("--type-alias", help="YAML {atoms: {type: model type}, beads: {...}}: the model's names for "
                                        "this system's types (a model trained on other molecules)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.data.trajectory import check_particle_count, frame_range, read_frames, write_frames
    from gdbm.data.features import TypeAliases
    from gdbm.sample import Backmapper, SamplerConfig

    output = Path(args.output)
    if output.exists() and not args.force:
        raise InputError("exists; pass --force to overwrite", output)
    if args.samples < 1:
        raise InputError("--samples must be >= 1")
    if args.relax < 0:
        raise InputError("--relax must be >= 0")
    ordering = None
    if args.ordering:
        from gdbm.ordering import OrderingConfig

        ordering = (OrderingConfig(traversal=args.ordering) if args.ordering in ("dfs", "bfs", "random")
                    else OrderingConfig(traversal="learned", policy=args.ordering))
    sampler = Backmapper.from_checkpoint(
        args.checkpoint, args.top, args.map, SamplerConfig(n_gibbs=args.gibbs, candidates=args.candidates,
                                                           seed=args.seed, precision=args.precision,
                                                           constrain_bonds=args.constrain_bonds,
                                                           relax_steps=args.relax),
        cg_itp=args.cg_itp, parameters=args.parameters, device=args.device, hold=args.hold_map,
        aliases=TypeAliases.from_yaml(args.type_alias) if args.type_alias else None, ordering=ordering)
    system = sampler.system
    cg = read_frames(args.cg, args.cg_struct)
    check_particle_count(cg, system.mapping.n_beads, f"the mapping {args.map}", args.cg)
    window = frame_range(args.frames, len(cg)) if args.frames else slice(None)
    cg = cg.subset(window)
    init = read_frames(args.init, args.init_struct) if args.init else None
    if init is not None:
        check_particle_count(init, system.aa.n_atoms, f"the topology {args.top}", args.init)
        init = init.subset(window)
    frames = sampler.backmap(cg, samples=args.samples, init=init)
    write_frames(output, frames, force=args.force)
    print(f"wrote {len(frames)} frames to {output}")
    return 0
