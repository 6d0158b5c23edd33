"""The experiment config of ``gdbm fit-temporal``: data, grid, model, training (YAML + pydantic).

Paths in the file are relative to the file's own folder. Unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gdbm.utils.config_files import read_sections, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemporalData(_Strict):
    """A trajectory of consecutive AA frames (fixed spacing) and the files naming its molecule."""

    aa: Path = Field(description="AA trajectory (.xtc/.dcd/...), frames at a fixed lag")
    structure: Path = Field(description="AA structure file (.pdb/.gro) naming the atoms")
    mapping: Path = Field(description="gdbm YAML mapping, every atom with a home bead")
    system: Path = Field(description="OpenMM System XML scoring energies (written by gdbm datagen dipeptide)")
    train_frames: str = Field("0:40000", description="START:STOP of the training frames")
    frame_beads: tuple[int, int, int] = Field((1, 2, 3), description="0-based beads fixing the local axes")


class GridConfig(_Strict):
    resolution: int = Field(12, ge=4, multiple_of=4, description="voxels per edge (divisible by 4)")
    length: float = Field(1.6, gt=0, description="edge length in nm")
    sigma: float = Field(0.06, gt=0, description="Gaussian width of each particle in nm")


class NetworkConfig(_Strict):
    channels: int = Field(32, ge=8)
    latent_dim: int = Field(16, ge=1)
    n_blocks: int = Field(2, ge=1, description="residual blocks per network, on the half-resolution grid")
    prev_prior: float = Field(0.0, ge=0, description="nm; > 0: each atom's output logits get a Gaussian prior of "
                              "this width around its previous position (0: off, as in the thesis)")


class LossConfig(_Strict):
    voxel: float = Field(1.0, ge=0, description="weight of the voxel loss (Eq. 8.1, on normalised densities)")
    position: float = Field(100.0, ge=0, description="weight of the coordinate loss (Eq. 8.2, nm^2)")
    distance: float = Field(100.0, ge=0, description="weight of the distance-matrix loss (Eq. 8.3, nm^2)")
    cg: float = Field(100.0, ge=0, description="weight of the CG-consistency loss (Eq. 8.4, nm^2)")
    energy: float = Field(1e-4, ge=0, description="final weight of the energy loss (Eq. 8.5, (kJ/mol)^2)")
    energy_start: int = Field(2000, ge=0, description="step at which the energy weight starts to rise")
    energy_ramp: int = Field(4000, ge=1, description="steps over which it rises exponentially to its final value")
    energy_cap: float = Field(1e4, gt=0, description="kJ/mol; frames whose energy is off by more are left out "
                              "of the energy term (clashes early in training)")
    energy_decades: float = Field(4.0, gt=0, description="decades the exponential ramp spans")
    beta: float = Field(0.01, ge=0, description="largest KL weight (Eq. 8.6)")
    beta_cycle: int = Field(2000, ge=1, description="steps per cycle of the cyclic KL annealing")


class TemporalTraining(_Strict):
    batch_size: int = Field(32, ge=1)
    steps: int = Field(10000, ge=1)
    lr: float = Field(5e-4, gt=0)
    grad_clip: float = Field(10.0, gt=0)
    prev_noise: float = Field(0.0, ge=0, description="nm of Gaussian noise on the previous frame (robustness)")
    checkpoint_every: int = Field(250, ge=1)
    mixture_components: int = Field(10, ge=1, description="Gaussian mixture fitted to the latent codes")
    mixture_samples: int = Field(20000, ge=10, description="training frames encoded for the mixture")
    library_size: int = Field(40000, ge=1, description="AA/CG pairs kept for first frames and the baseline")
    seed: int = 0


class TemporalConfig(_Strict):
    data: TemporalData
    grid: GridConfig = GridConfig()
    network: NetworkConfig = NetworkConfig()
    loss: LossConfig = LossConfig()
    training: TemporalTraining = TemporalTraining()


def load_temporal_config(path: str | Path, overrides: dict | None = None) -> TemporalConfig:
    """Read and validate a temporal config; ``overrides`` (nested dicts) replace file values."""
    path = Path(path)
    raw = read_sections(path, overrides)
    data = raw["data"]
    for key in ("aa", "structure", "mapping", "system"):
        if isinstance(data, dict) and isinstance(data.get(key), str):
            data[key] = str((path.parent / data[key]).resolve()) if not Path(data[key]).is_absolute() else data[key]
    return validate(TemporalConfig, raw, path)
