"""Autoregressive backmapping of a CG trajectory (Sec. 8.1.1): the first AA frame from the library
(nearest CG structure), then each frame decoded from the current CG frame, the previously
*generated* AA frame and a latent code drawn from the Gaussian mixture fitted to the encoder's codes.

A trajectory can be cut into segments that start independently from the library and run side by
side as one batch (the loop is over time, each step batched over segments).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from gdbm.utils.progress import tqdm

from gdbm.utils.errors import InputError
from gdbm.temporal.config import TemporalConfig
from gdbm.temporal.library import FrameLibrary
from gdbm.temporal.model import TemporalVAE
from gdbm.temporal.system import TemporalSystem, local_frames, to_lab, to_local
from gdbm.training.checkpoint import load_checkpoint


Refiner = Callable[[Tensor, Tensor], Tensor]
"""``refine(frames [B, n, 3], beads [B, N, 3]) -> [B, n, 3]``: a correction applied to generated frames."""


class GaussianMixtureSampler:
    """Draws latent codes ``[B, d]`` from a full-covariance Gaussian mixture (weights, means, covariances)."""

    def __init__(self, weights: Tensor, means: Tensor, covariances: Tensor) -> None:
        self.weights, self.means = weights, means
        self.scale = torch.linalg.cholesky(covariances.double()).float()  # [K, d, d]

    def __call__(self, n: int, generator: torch.Generator) -> Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # [n]
        eps = torch.randn(n, self.means.shape[1], generator=generator)  # [n, d]
        return self.means[k] + (self.scale[k] @ eps.unsqueeze(-1)).squeeze(-1)


class TemporalBackmapper:
    """A trained temporal model with its system, latent mixture and library."""

    def __init__(self, model: TemporalVAE, system: TemporalSystem, mixture: GaussianMixtureSampler,
                 library: FrameLibrary, device: str = "cpu") -> None:
        self.model, self.system, self.mixture, self.library = model.eval(), system, mixture, library
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "TemporalBackmapper":
        state = load_checkpoint(path)
        if state.get("kind") != "temporal":
            raise InputError("not a gdbm fit-temporal checkpoint", path)
        if "mixture" not in state:
            raise InputError("training has not finished (no latent mixture); run fit-temporal --resume", path)
        config = TemporalConfig.model_validate(state["config"])
        system = TemporalSystem.from_state(state["system"])
        model = TemporalVAE(system.n_atoms, system.n_beads, config.grid, config.network)
        model.load_state_dict(state["model"])
        return cls(model.to(device), system, GaussianMixtureSampler(**state["mixture"]),
                   FrameLibrary(system, state["library"]), device)

    @torch.no_grad()
    def backmap(self, cg: Tensor, segments: int = 1, seed: int = 0, constrain_hydrogens: bool = False,
                progress: bool = True, refine: Refiner | None = None) -> Tensor:
        """AA trajectory ``[T, n, 3]`` for a CG trajectory ``[T, N, 3]`` (consecutive frames, one lag apart).

        ``refine(frames, beads)`` (e.g. a :class:`~gdbm.temporal.thermalize.Thermalizer`) is applied to
        every generated frame before it is kept and becomes the next frame's condition.
        """
        n_frames = len(cg)
        if not 1 <= segments <= n_frames:
            raise InputError(f"segments must be between 1 and the number of frames ({n_frames}), got {segments}")
        gen = torch.Generator().manual_seed(seed)
        bounds = np.linspace(0, n_frames, segments + 1).round().astype(int)
        starts, lengths = torch.as_tensor(bounds[:-1]), torch.as_tensor(np.diff(bounds))
        out = torch.empty(n_frames, self.system.n_atoms, 3)
        prev = self.library.place(cg[starts], constrain_hydrogens)  # [S, n, 3]
        out[starts] = prev
        for k in tqdm(range(1, int(lengths.max())), desc="backmap", unit="frame", disable=not progress,
                      mininterval=10):
            active = lengths > k  # [S]
            t = starts[active] + k
            beads = cg[t].to(self.device)  # [A, N, 3]
            origin, rot = local_frames(beads, self.system.frame_beads)
            z = self.mixture(len(t), gen).to(self.device)
            local = self.model.decode(to_local(beads, origin, rot), to_local(prev[active].to(self.device), origin, rot), z)
            frame = to_lab(local, origin, rot)
            if constrain_hydrogens:  # before the projection, which moves a hydrogen with its heavy atom
                frame = self.system.constrain_hydrogens(frame)
            frame = self.system.project(frame, beads)
            if refine is not None:
                frame = self.system.project(refine(frame, beads), beads)
            out[t] = frame.cpu()
            prev[active] = frame.cpu()
        return out


def frame_based(library: FrameLibrary, cg: Tensor, constrain_hydrogens: bool = False,
                refine: Refiner | None = None) -> Tensor:
    """The frame-based baseline of Sec. 8.3: every frame placed from the library independently
    (then, if given, ``refine(frames, beads)`` and the projection again)."""
    frames = library.place(cg, constrain_hydrogens)
    return frames if refine is None else library.system.project(refine(frames, cg), cg)
