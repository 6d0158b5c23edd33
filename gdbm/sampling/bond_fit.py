"""Fit a step's candidates to the topology's bond lengths without bending them (``SamplerConfig.fit_bonds``).

The voxel generator places sPS's phenyl carbons 9% too close together (C_AR-C_AR 0.127 nm against b0 0.139)
while it puts the ring's centre where its CG bead says, so the ipso sits 0.012 nm too far from its CH
(0.163 against 0.151) and the hydrogens 10% too near their carbons (docs/generator-diagnosis.md, section 24).
The projection of every bond onto its ``b0`` (``constrain_bonds``) moves atoms along bonds and bends the
angles; this fit keeps every angle within a step:

- the step's heavy atoms are scaled about their centroid by the factor that brings the bonds among them
  nearest ``b0`` in least squares (a ring keeps its shape and centre, and grows to its size);
- each hydrogen of the step is moved along the bond to its heavy atom (placed before it, in the step or in
  the environment) to ``b0``.

It runs on every candidate before the candidates are scored, so the energy chooses among fitted ones. It uses
only the topology.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.physics.constraints import bond_constraints
from gdbm.topology.topology import Topology

class StepBondFit:
    """The bond lengths of a topology, and the fit of a step's candidates to them."""

    def __init__(self, top: Topology):
        pairs, b0 = bond_constraints(top)
        self.length: dict[tuple[int, int], float] = {}
        for (i, j), length in zip(pairs.tolist(), b0.tolist()):
            self.length[(i, j)] = self.length[(j, i)] = length
        self.heavy = [element != "H" for element in top.elements]
        self.partner: dict[int, int] = {}  # hydrogen -> its heavy atom
        for i, j in pairs.tolist():
            if self.heavy[i] != self.heavy[j]:
                h, x = (j, i) if self.heavy[i] else (i, j)
                self.partner[h] = x

    def __call__(self, local: Tensor, atoms: Tensor, context_atom: Tensor, context: Tensor) -> Tensor:
        """``local [B, K, L, 3]`` candidates of the sequence ``atoms [B, L]`` (-1 padded), fitted; the items'
        environment atoms ``context_atom [B, P]`` (-1 for beads) sit at ``context [B, P, 3]`` (same frame)."""
        out = local.clone()
        for item in range(len(atoms)):
            seq = atoms[item].tolist()
            slots = [s for s, a in enumerate(seq) if a >= 0 and self.heavy[a]]
            if slots:
                out[item] = self._scale(out[item], seq, slots)
            hydrogens = [s for s, a in enumerate(seq) if a >= 0 and not self.heavy[a] and a in self.partner]
            if hydrogens:
                out[item] = self._hydrogens(out[item], seq, hydrogens, context_atom[item], context[item])
        return out

    def _scale(self, x: Tensor, seq: list[int], slots: list[int]) -> Tensor:
        """``x [K, L, 3]`` with the heavy ``slots`` scaled about their centroid (bonds among them to b0)."""
        bonds = [(a, b, self.length[(seq[a], seq[b])]) for n, a in enumerate(slots) for b in slots[n + 1:]
                 if (seq[a], seq[b]) in self.length]
        if not bonds:
            return x
        i, j, b0 = (torch.tensor(v) for v in zip(*bonds))
        length = (x[:, j] - x[:, i]).norm(dim=-1)  # [K, m]
        scale = (b0.to(x) * length).sum(-1) / (length * length).sum(-1).clamp_min(1e-12)  # [K] least squares
        heavy = torch.tensor(slots)
        centroid = x[:, heavy].mean(1, keepdim=True)  # [K, 1, 3]
        out = x.clone()
        out[:, heavy] = centroid + scale.view(-1, 1, 1) * (x[:, heavy] - centroid)
        return out

    def _hydrogens(self, x: Tensor, seq: list[int], hydrogens: list[int], context_atom: Tensor,
                   context: Tensor) -> Tensor:
        """``x [K, L, 3]`` with each hydrogen slot moved along its bond to b0 (its heavy atom in the step or
        the environment; left where it is when neither has it)."""
        out = x.clone()
        where = {int(a): p for p, a in enumerate(context_atom.tolist()) if a >= 0}
        for s in hydrogens:
            heavy = self.partner[seq[s]]
            if heavy in seq:
                anchor = out[:, seq.index(heavy)]  # [K, 3]
            elif heavy in where:
                anchor = context[where[heavy]].to(x).expand(x.shape[0], 3)
            else:
                continue
            bond = out[:, s] - anchor
            out[:, s] = anchor + self.length[(seq[s], heavy)] * bond / bond.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return out
