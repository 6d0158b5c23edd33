"""Typed settings of the e3nn conditioner (small enough to train on a CPU)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class E3nnConfig(BaseModel):
    """Sizes of the e3nn generator / critic (:mod:`gdbm.conditioners.equivariant.networks`).

    Every network looks at the environment from one *query point* (the critic: the candidate
    atom; the generator: its current guess, refined ``refinements`` times from the centre bead).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: int = Field(16, ge=1, description="channels C per irrep of the point convolution")
    lmax: int = Field(2, ge=1, le=3, description="highest spherical-harmonic degree of the convolution")
    correlation: int = Field(3, ge=1, le=4, description="body order of the product basis at the query "
                             "(1 = linear; 3 lets it see triple products, i.e. dihedral signs and chirality)")
    n_radial: int = Field(12, ge=2, description="Gaussian radial basis functions on [0, r_max]")
    r_max: float = Field(0.5, gt=0, description="nm; particles farther from the query point are not seen")
    max_neighbours: int | None = Field(48, ge=1, description="convolve only the particles nearest to the "
                                       "query (cost is linear in them); null = all within r_max")
    radial_hidden: int = Field(32, ge=1, description="hidden width of the radial MLP")
    neighbours: float = Field(16.0, gt=0, description="generator: messages are summed and divided by this; "
                              "its products stay near-linear at initialisation (a plain sum made the "
                              "warm-up regression diverge)")
    critic_neighbours: float = Field(1.0, gt=0, description="critic: the same divisor; 1 = a plain sum, which "
                                     "starts the critic with a slope near the gradient penalty's 1 per nm "
                                     "(16 gave 0.015 per nm: the adversarial game could not start)")
    hidden: int = Field(32, ge=1, description="width of the scalar MLPs (embedding, readouts)")
    noise_scalars: int = Field(8, ge=0, description="invariant noise inputs of the generator")
    noise_vectors: int = Field(2, ge=0, description="random-direction (isotropic Gaussian) noise vectors: "
                               "break the symmetry of symmetric environments; noise_dim = scalars + 3 vectors")
    refinements: int = Field(3, ge=1, description="generator steps: query -> query + displacement")
    step_scale: float = Field(0.1, gt=0, description="nm per unit of a refinement step's raw output")

    @property
    def noise_dim(self) -> int:
        return self.noise_scalars + 3 * self.noise_vectors
