"""The energy prior of the generator (thesis Sec. 4.5, Eq. 4.15-4.17), with its weight ramp.

C1 (``min``) adds the weighted energies of the generated atoms with their environment;
C2 (``match``) adds the absolute differences to the energies of the reference atoms. The
weight rises linearly from 0 to its final value between two generator steps, so early,
badly placed atoms (energies of 1e10 kJ/mol) do not swamp the adversarial signal.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.training.config import PriorConfig


class EnergyPrior:
    """``prior(fake, real) -> [B]`` per-sample cost from per-category energies ``{name: [B]}``."""

    def __init__(self, config: PriorConfig):
        self.config = config

    def weight(self, step: int) -> float:
        """lambda_pot at generator step ``step``."""
        c = self.config
        if c.mode == "none" or step < c.ramp_start:
            return 0.0
        if step >= c.ramp_end or c.ramp_end == c.ramp_start:
            return c.weight
        return c.weight * (step - c.ramp_start) / (c.ramp_end - c.ramp_start)

    def __call__(self, fake: dict[str, Tensor], real: dict[str, Tensor] | None = None) -> Tensor:
        some = next(iter(fake.values()))
        cost = torch.zeros_like(some)
        for name, w in self.config.terms.items():
            if name not in fake or w == 0:
                continue
            if self.config.mode == "min":
                cost = cost + w * fake[name]
            elif self.config.mode == "match":
                cost = cost + w * (fake[name] - real[name]).abs()
        return cost
