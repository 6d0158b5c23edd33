"""Training of the temporal VAE (Sec. 8.1.1): reconstruction losses (Eq. 8.1-8.4), the annealed
energy term (8.5) and the cyclically annealed KL term (8.6); then a Gaussian mixture on the
latent codes and a library of AA/CG pairs for first frames and the frame-based baseline.

Checkpoints are written atomically every ``checkpoint_every`` steps; ``resume`` continues the
last one with the same random streams.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from gdbm.utils.progress import tqdm

from gdbm.data.trajectory import frame_range, read_frames
from gdbm.utils.errors import InputError
from gdbm.temporal.config import LossConfig, TemporalConfig
from gdbm.temporal.data import Pairs, make_pairs
from gdbm.temporal.energy import OpenMMEnergy, differentiable_energy
from gdbm.temporal.model import TemporalVAE
from gdbm.temporal.system import TemporalSystem
from gdbm.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gdbm.training.log import CSVLog


def energy_weight(loss: LossConfig, step: int) -> float:
    """0 before ``energy_start``, then exponential from ``energy * 10^-decades`` to ``energy``."""
    if step < loss.energy_start or loss.energy == 0:
        return 0.0
    progress = min(1.0, (step - loss.energy_start) / loss.energy_ramp)
    return loss.energy * 10.0 ** (-loss.energy_decades * (1.0 - progress))


def kl_weight(loss: LossConfig, step: int) -> float:
    """Cyclic annealing: within each cycle beta rises linearly over the first half, then holds."""
    phase = (step % loss.beta_cycle) / loss.beta_cycle
    return loss.beta * min(1.0, 2.0 * phase)


def pair_distances(x: Tensor) -> Tensor:
    """Distances of all pairs i < j: ``[B, n, 3] -> [B, n(n-1)/2]`` (no zero distances, so no NaN gradients)."""
    i, j = torch.triu_indices(x.shape[1], x.shape[1], 1, device=x.device)
    return (x[:, i] - x[:, j]).norm(dim=-1)


def losses(model: TemporalVAE, system: TemporalSystem, cg: Tensor, prev: Tensor, target: Tensor,
           energy: OpenMMEnergy | None, energy_cap: float = 1e4) -> dict[str, Tensor]:
    """Unweighted loss terms of one batch (all local-frame tensors: ``cg [B, N, 3]``, ``prev/target [B, n, 3]``)."""
    pos, dens, mu, logvar = model(cg, prev, target)
    ref = model.voxels(target)  # [B, n, G, G, G]
    ref = ref / ref.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None, None]
    out = {
        "voxel": (dens - ref).square().flatten(2).sum(-1).mean(),
        "position": (pos - target).square().mean(),
        "distance": (pair_distances(pos) - pair_distances(target)).square().mean(),
        "cg": (system.map(pos) - cg).square().mean(),
        "kl": (-0.5 * (1 + logvar - mu.square() - logvar.exp())).sum(-1).mean(),
    }
    if energy is not None:
        with torch.no_grad():
            u_ref = energy(target)[0]
        delta = differentiable_energy(pos, energy) - u_ref.to(pos.device)  # [B] kJ/mol
        # frames with clashes (|dU| beyond the cap, forces near-infinite) are left to the other terms
        keep = delta.detach().abs() < energy_cap
        out["energy"] = torch.where(keep, delta, torch.zeros_like(delta)).square().mean().float()
    return out


class TemporalTrainer:
    """Owns model, optimiser, data and the checkpoint file of one ``fit-temporal`` run."""

    def __init__(self, config: TemporalConfig, out_dir: str | Path, device: str = "cpu") -> None:
        self.config, self.out, self.device = config, Path(out_dir), torch.device(device)
        d = config.data
        self.system = TemporalSystem.load(d.structure, d.mapping, d.system, d.frame_beads)
        frames = read_frames(d.aa, d.structure)
        frames = frames.subset(frame_range(d.train_frames, len(frames)))
        if len(frames) < 2:
            raise InputError(f"train_frames {d.train_frames} leaves {len(frames)} frames; need at least 2", d.aa)
        self.positions = frames.positions  # [T, n, 3] lab frame
        self.pairs: Pairs = make_pairs(self.system, self.positions)
        torch.manual_seed(config.training.seed)
        np.random.seed(config.training.seed)
        self.model = TemporalVAE(self.system.n_atoms, self.system.n_beads, config.grid, config.network).to(self.device)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=config.training.lr)
        self.energy = OpenMMEnergy(self.system.system_xml) if config.loss.energy > 0 else None
        self.step = 0
        self.log = CSVLog(self.out / "log.csv")

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save(self, extra: dict | None = None) -> Path:
        return save_checkpoint(self.checkpoint_path, {
            "kind": "temporal", "config": self.config.model_dump(mode="json"), "system": self.system.state(),
            "model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(), "step": self.step,
            "rng": rng_state(), **(extra or {})})

    def resume(self) -> None:
        state = load_checkpoint(self.checkpoint_path)
        if state.get("kind") != "temporal":
            raise InputError("not a gdbm fit-temporal checkpoint", self.checkpoint_path)
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.step = state["step"]
        set_rng_state(state["rng"])

    def train(self, progress: bool = True) -> None:
        cfg, loss_cfg = self.config.training, self.config.loss
        weights = {"voxel": loss_cfg.voxel, "position": loss_cfg.position, "distance": loss_cfg.distance,
                   "cg": loss_cfg.cg}
        bar = tqdm(total=cfg.steps, initial=self.step, desc="fit-temporal", unit="step", disable=not progress,
                   mininterval=30)
        start = time.time()
        while self.step < cfg.steps:
            index = torch.randint(len(self.pairs), (cfg.batch_size,))
            cg, prev, target = (t.to(self.device) for t in self.pairs.batch(index))
            if cfg.prev_noise > 0:
                prev = prev + cfg.prev_noise * torch.randn_like(prev)
            w_energy = energy_weight(loss_cfg, self.step)
            terms = losses(self.model, self.system, cg, prev, target, self.energy if w_energy > 0 else None,
                           loss_cfg.energy_cap)
            beta = kl_weight(loss_cfg, self.step)
            total = sum(weights[k] * terms[k] for k in weights) + beta * terms["kl"]
            if "energy" in terms:
                total = total + w_energy * terms["energy"]
            self.optimiser.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimiser.step()
            self.step += 1
            bar.update(1)
            if self.step % 50 == 0 or self.step == cfg.steps:
                row = {"step": self.step, "total": float(total.detach()), "beta": beta, "energy_weight": w_energy,
                       "rmsd_nm": math.sqrt(3 * float(terms["position"])), "wall_s": round(time.time() - start, 1)}
                row.update({k: float(v.detach()) for k, v in terms.items()})
                self.log.write(row)
                bar.set_postfix(rmsd=f"{row['rmsd_nm']:.4f}", kl=f"{row['kl']:.2f}")
            if self.step % cfg.checkpoint_every == 0:
                self.save()
        bar.close()

    @torch.no_grad()
    def latent_codes(self) -> Tensor:
        """Posterior means ``[M, d]`` of up to ``mixture_samples`` evenly spaced training pairs."""
        self.model.eval()
        n = min(len(self.pairs), self.config.training.mixture_samples)
        index = torch.linspace(0, len(self.pairs) - 1, n).long()
        codes = []
        for chunk in index.split(256):
            cg, prev, target = (t.to(self.device) for t in self.pairs.batch(chunk))
            codes.append(self.model.encode(self.model.features(cg, prev), target)[0].cpu())
        self.model.train()
        return torch.cat(codes)

    def finish(self) -> Path:
        """Fit the latent Gaussian mixture, keep the library of AA/CG pairs, write the final checkpoint."""
        from sklearn.mixture import GaussianMixture

        cfg = self.config.training
        codes = self.latent_codes().double().numpy()
        gmm = GaussianMixture(min(cfg.mixture_components, len(codes)), covariance_type="full",
                              random_state=cfg.seed).fit(codes)
        n = min(len(self.positions), cfg.library_size)
        library = self.positions[torch.linspace(0, len(self.positions) - 1, n).long()]
        mixture = {"weights": torch.from_numpy(gmm.weights_).float(), "means": torch.from_numpy(gmm.means_).float(),
                   "covariances": torch.from_numpy(gmm.covariances_).float()}
        return self.save({"mixture": mixture, "library": library.clone()})


def fit_temporal(config: TemporalConfig, out_dir: str | Path, resume: bool = False, force: bool = False,
                 device: str = "cpu", progress: bool = True) -> Path:
    """Train (or continue) a temporal model; returns the final checkpoint's path."""
    trainer = TemporalTrainer(config, out_dir, device)
    if trainer.checkpoint_path.exists():
        if resume:
            trainer.resume()
        elif not force:
            raise InputError("holds a checkpoint; pass --resume to continue or --force to start over",
                             trainer.checkpoint_path)
    elif resume:
        raise InputError("no checkpoint to resume", trainer.checkpoint_path)
    trainer.out.mkdir(parents=True, exist_ok=True)
    trainer.train(progress)
    return trainer.finish()
