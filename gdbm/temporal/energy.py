"""Potential energies and forces of AA frames from an OpenMM ``System`` (the reference force field,
implicit solvent included), and a differentiable wrapper for the energy loss (Eq. 8.5).

OpenMM's Reference platform on one CPU thread; for a molecule of tens of atoms one energy +
force call costs tens of microseconds, so a batch is a loop over frames (not over atoms).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class OpenMMEnergy:
    """``energies(positions [B, n, 3]) -> [B]`` (kJ/mol, float64) and forces, from a System XML."""

    def __init__(self, system_xml: str) -> None:
        import openmm as mm

        system = mm.XmlSerializer.deserialize(system_xml)
        self.n_atoms = system.getNumParticles()
        self.context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))

    def __call__(self, positions: Tensor, forces: bool = False) -> tuple[Tensor, Tensor | None]:
        """Energies ``[B]`` float64 and, if asked, forces ``[B, n, 3]`` (kJ/mol/nm) of a batch of frames."""
        x = positions.detach().to("cpu", torch.float64).numpy()
        energy = np.empty(len(x))
        force = np.empty_like(x) if forces else None
        for k, frame in enumerate(x):
            self.context.setPositions(frame)
            state = self.context.getState(getEnergy=True, getForces=forces)
            energy[k] = state.getPotentialEnergy()._value
            if forces:
                force[k] = state.getForces(asNumpy=True)._value
        return (torch.from_numpy(energy),
                None if force is None else torch.from_numpy(force).to(positions.device, positions.dtype))


class _EnergyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions: Tensor, model: OpenMMEnergy) -> Tensor:
        energy, force = model(positions, forces=True)
        ctx.save_for_backward(force)
        return energy.to(positions.device)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (force,) = ctx.saved_tensors
        return -force * grad.to(force.dtype)[:, None, None], None  # dU/dr = -F


def differentiable_energy(positions: Tensor, model: OpenMMEnergy) -> Tensor:
    """Energies ``[B]`` (float64, kJ/mol) with gradients to ``positions`` ``[B, n, 3]``."""
    return _EnergyFunction.apply(positions, model)
