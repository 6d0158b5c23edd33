"""Experiment (issue 4): a short restrained Langevin run of backmapped sPS frames at the reference temperature.

Not yet a ``gdbm`` command: the numbers in the README ("A thermal relaxation, measured") come from
this script, the next step is to build it into ``gdbm relax``. Per frame:

1. every molecule made whole (OpenMM constraints and centroid groups see raw coordinates);
2. an OpenMM system of the topology (``gdbm.physics.openmm_system.build_system``), every bond
   constrained at ``b0`` (the reference MD's constraints), and each CG bead's centre (by the
   evaluation mapping) held on its CG position by a harmonic restraint (``--restraint``);
3. a short L-BFGS minimisation (clashes), Maxwell-Boltzmann velocities and ``--steps`` Langevin
   steps at ``--temperature`` (or several ``--stage K,DT,STEPS`` in order: restraint, step, steps).

Frames whose minimisation meets NaNs (atoms on top of each other) need a few steps of
``gdbm relax --constrain-bonds`` first.

    python scripts/thermal_relax.py --aa runs/relaxed.xtc --frames 0:3 --steps 500 -o runs/thermal.xtc
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import openmm as mm
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from gdbm.data.trajectory import Frames, frame_range, read_frames, write_frames
from gdbm.pbc import minimum_image
from gdbm.physics.constraints import bond_constraints
from gdbm.physics.openmm_restraint import (
    STIFFNESS,
    centroid_restraint,
    set_centroid_targets,
)
from gdbm.physics.openmm_system import build_system
from gdbm.topology.system import load_mapped_system

S = "../shared/data/sps"


def bond_walk(n_atoms: int, bonds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The breadth-first walk over the bonds of every molecule, as levels of ``(atoms, parents)``:
    placing level after level by the minimum image from the parent makes each molecule whole."""
    adjacency = coo_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n_atoms, n_atoms))
    adjacency = adjacency + adjacency.T
    depth, parent = np.full(n_atoms, -1), np.full(n_atoms, -1)
    for root in range(n_atoms):
        if depth[root] >= 0:
            continue
        order, pred = breadth_first_order(adjacency, root, directed=False, return_predecessors=True)
        depth[root] = 0
        for a in order[1:]:
            depth[a], parent[a] = depth[pred[a]] + 1, pred[a]
    return [(np.flatnonzero(depth == d), parent[depth == d]) for d in range(1, depth.max() + 1)]


def make_whole(x: torch.Tensor, box: torch.Tensor, walk: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """Positions ``[n, 3]`` with every molecule unbroken (atoms wrapped one by one before)."""
    x = x.clone()
    for atoms, parents in walk:
        x[atoms] = x[parents] + minimum_image((x[atoms] - x[parents])[None], box[None])[0]
    return x


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--top", default=f"{S}/topol.top")
    p.add_argument("--map", default=f"{S}/PS1_cg_fritz.map", help="the mapping that made the CG frames")
    p.add_argument("--aa", required=True)
    p.add_argument("--aa-struct", default=f"{S}/test_t568/aa.gro")
    p.add_argument("--cg", default=f"{S}/test_t568/cg.xtc")
    p.add_argument("--cg-struct", default=f"{S}/test_t568/cg.gro")
    p.add_argument("--frames", help="CG frames START:STOP matching the AA frames (default: the first ones)")
    p.add_argument("--steps", type=int, default=500, help="Langevin steps (default 500 = 1 ps at 2 fs)")
    p.add_argument("--timestep", type=float, default=0.002, help="ps (a stiffer restraint needs a shorter one)")
    p.add_argument("--temperature", type=float, default=568.0)
    p.add_argument("--friction", type=float, default=10.0, help="1/ps")
    p.add_argument("--restraint", type=float, default=5e4, help="kJ/mol/nm^2 on each bead centre")
    p.add_argument("--stage", action="append", metavar="K,DT,STEPS",
                   help="instead of --restraint/--timestep/--steps: stages run in order, each with its own "
                        "restraint (kJ/mol/nm^2), time step (ps) and steps; repeatable")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    stages = ([tuple(float(v) for v in stage.split(",")) for stage in args.stage] if args.stage
              else [(args.restraint, args.timestep, args.steps)])

    system = load_mapped_system(args.top, args.map)
    top = system.aa
    aa = read_frames(args.aa, args.aa_struct)
    cg = read_frames(args.cg, args.cg_struct)
    cg = cg.subset(frame_range(args.frames, len(cg)) if args.frames else list(range(len(aa))))
    walk = bond_walk(top.n_atoms, top.connectivity.numpy())
    pairs, b0 = bond_constraints(top)
    atom, bead = system.mapping.membership.T
    groups = [(atom[bead == b].tolist(), system.mapping.coef[bead == b].tolist()) for b in range(system.mapping.n_beads)]
    out = []
    for f in range(len(aa)):
        start = time.perf_counter()
        box = aa.boxes[f].double()
        x = make_whole(aa.positions[f].double(), box, walk)
        centre = system.mapping.map_positions(x)
        target = centre + minimum_image((cg.positions[f].double() - centre)[None], box[None])[0]
        omm = build_system(top, box.numpy())
        for (i, j), length in zip(pairs.tolist(), b0.tolist(), strict=True):
            omm.addConstraint(i, j, length)
        restraint = centroid_restraint(groups, stages[0][0])
        omm.addForce(restraint)
        integrator = mm.LangevinMiddleIntegrator(args.temperature, args.friction, stages[0][1])
        integrator.setRandomNumberSeed(1 + f)
        context = mm.Context(omm, integrator, mm.Platform.getPlatformByName("CPU"), {"Threads": str(args.threads)})
        set_centroid_targets(restraint, target.numpy(), context)
        context.setPositions(x.numpy())
        context.applyConstraints(1e-6)
        mm.LocalEnergyMinimizer.minimize(context, 10.0, 50)
        context.setVelocitiesToTemperature(args.temperature, 1 + f)
        for k, dt, steps in stages:
            context.setParameter(STIFFNESS, k)
            integrator.setStepSize(dt)
            integrator.step(int(steps))
        out.append(torch.from_numpy(context.getState(getPositions=True).getPositions(asNumpy=True)._value).float())
        print(f"frame {f}: {time.perf_counter() - start:.1f} s", flush=True)
    write_frames(args.output, Frames(torch.stack(out), aa.boxes, list(aa.labels), aa.names, aa.resnames, aa.resids),
                 force=True)


if __name__ == "__main__":
    main()
