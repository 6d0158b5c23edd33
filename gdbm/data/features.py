"""Particle features of local environments: a fixed one-hot layout, built once per system.

Features (thesis Sec. 4.3.2) are one-hots concatenated in a layout that :class:`FeatureSpec`
derives from the topology alone (sorted vocabularies) and that is stored with a model::

    [ kind: atom, bead | atom type (Ta) | bead type (Tb) | interaction channel (4, or 4 x Ta) ]

The interaction channel of an atom says how it is bonded to the *target* atom: bond (1 bond
apart), angle (2), dihedral (3), non-bonded (further, or another molecule); split by the
particle's atom type when ``split_channels``. Beads carry kind and bead type only. Atom
types are the force-field types or the mapping's prior types (``EnvironmentConfig.atom_types``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

import torch
from torch import Tensor
from torch.nn.functional import one_hot

from gdbm.data.particles import Particles
from gdbm.data.environment import Environment, EnvironmentConfig
from gdbm.utils.errors import InputError
from gdbm.topology.paths import path_distance_pairs
from gdbm.topology.system import MappedSystem
from gdbm.topology.topology import Topology

CHANNELS = ("bond", "angle", "dihedral", "nonbonded")
NONBONDED = len(CHANNELS) - 1


@dataclass(frozen=True)
class FeatureSpec:
    """The feature layout: vocabularies and flags, deterministic from the topology, serialisable."""

    atom_types: tuple[str, ...]
    bead_types: tuple[str, ...]
    atom_type_source: str = "forcefield"
    split_channels: bool = False

    @classmethod
    def from_system(cls, system: MappedSystem, config: EnvironmentConfig | None = None) -> "FeatureSpec":
        """Sorted vocabularies of the atom and bead types present in ``system``."""
        config = config or EnvironmentConfig()
        return cls(tuple(sorted(set(_atom_type_names(system, config.atom_types)))),
                   tuple(sorted(set(system.mapping.bead_types))), config.atom_types, config.split_channels)

    @classmethod
    def union(cls, specs: list["FeatureSpec"]) -> "FeatureSpec":
        """One layout holding the types of every spec (same type source and channel split)."""
        first = specs[0]
        for spec in specs[1:]:
            if (spec.atom_type_source, spec.split_channels) != (first.atom_type_source, first.split_channels):
                raise ValueError("feature layouts with different type sources or channel splits cannot be merged")
        return cls(tuple(sorted({t for s in specs for t in s.atom_types})),
                   tuple(sorted({t for s in specs for t in s.bead_types})), first.atom_type_source,
                   first.split_channels)

    @property
    def n_channels(self) -> int:
        return len(CHANNELS) * (len(self.atom_types) if self.split_channels else 1)

    @property
    def n_features(self) -> int:
        """F, the feature size of every particle."""
        return 2 + len(self.atom_types) + len(self.bead_types) + self.n_channels

    @property
    def n_target_types(self) -> int:
        """T, the size of a target atom's one-hot type."""
        return len(self.atom_types)

    def encode(self, type_code: Tensor, is_bead: Tensor, channel: Tensor) -> Tensor:
        """Features ``[..., F]`` float32 from per-particle codes (all ``[...]``).

        ``type_code``: atom-type index for atoms, bead-type index for beads, -1 for padding
        (all-zero features); ``channel``: index into :data:`CHANNELS`, -1 for none.
        """
        ta, tb = len(self.atom_types), len(self.bead_types)
        real = type_code >= 0
        atom, bead = real & ~is_bead, real & is_bead
        channel = torch.where(atom & (channel >= 0), channel, -1)
        if self.split_channels:
            channel = torch.where(channel >= 0, channel * ta + type_code, -1)
        parts = [_one_hot(torch.where(real, is_bead.long(), -1), 2),
                 _one_hot(torch.where(atom, type_code, -1), ta),
                 _one_hot(torch.where(bead, type_code, -1), tb),
                 _one_hot(channel, self.n_channels)]
        return torch.cat(parts, -1)

    def target_types(self, type_code: Tensor) -> Tensor:
        """``[..., T]`` float32 one-hot atom types of target atoms (``type_code`` -1: zeros)."""
        return _one_hot(type_code, len(self.atom_types))

    def to_dict(self) -> dict:
        """Plain data to store beside a trained model."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        return cls(tuple(data["atom_types"]), tuple(data["bead_types"]), data["atom_type_source"],
                   data["split_channels"])

    def check_compatible(self, other: "FeatureSpec") -> None:
        """Raise ``ValueError`` naming the difference when ``other`` lays features out differently."""
        diff = [f"{k}: {v!r} != {getattr(other, k)!r}" for k, v in asdict(self).items() if v != getattr(other, k)]
        if diff:
            raise ValueError("feature layouts differ (" + "; ".join(diff) + ")")


def _one_hot(code: Tensor, n: int) -> Tensor:
    """``[..., n]`` float32 one-hot, all zeros where ``code`` is -1."""
    return one_hot(torch.where(code >= 0, code, n), n + 1)[..., :n].float()


def _atom_type_names(system: MappedSystem, source: str) -> list[str]:
    return list(system.aa.types) if source == "forcefield" else list(system.mapping.prior_types)


class InteractionChannels:
    """The interaction channel of atom pairs, from bond-path distances (searchsorted, no dense table)."""

    def __init__(self, topology: Topology) -> None:
        pairs, dist = path_distance_pairs(topology, NONBONDED)  # [m, 2] i < j, [m] in 1..3
        self.n_atoms = topology.n_atoms
        keys = pairs[:, 0] * self.n_atoms + pairs[:, 1]
        order = torch.argsort(keys)
        # a sentinel key -1 first, so that the table is never empty
        self.keys = torch.cat([torch.tensor([-1]), keys[order]])  # [m + 1]
        self.channel = torch.cat([torch.tensor([NONBONDED]), dist[order] - 1])  # [m + 1]

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        """Channel index of atoms ``a`` and ``b`` (broadcast); -1 where either is -1 (a bead, padding)."""
        a, b = torch.broadcast_tensors(a, b)
        keys, channel = self.keys.to(a.device), self.channel.to(a.device)
        key = torch.minimum(a, b) * self.n_atoms + torch.maximum(a, b)
        where = torch.searchsorted(keys, key).clamp_(max=len(keys) - 1)
        out = torch.where(keys[where] == key, channel[where], NONBONDED)
        return torch.where((a >= 0) & (b >= 0), out, -1)


@dataclass(frozen=True)
class TypeAliases:
    """Names a model knows for the types of another system: ``{its type: the model's type}``.

    For applying a model across force fields or CG models (chemical transfer, thesis Sec. 5.4):
    an sPS ``C_AR`` is GAFF's ``ca``, its backbone bead ``A1r`` an alkane's ``B``. Types
    without an alias keep their names.
    """

    atoms: dict[str, str] = field(default_factory=dict)
    beads: dict[str, str] = field(default_factory=dict)

    def atom_names(self, names: list[str]) -> list[str]:
        return [self.atoms.get(n, n) for n in names]

    def bead_names(self, names: list[str]) -> list[str]:
        return [self.beads.get(n, n) for n in names]

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TypeAliases":
        """Read ``atoms: {name: name}`` and ``beads: {name: name}`` (either may be left out)."""
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict) or set(raw) - {"atoms", "beads"}:
            raise InputError("expected a mapping with 'atoms' and/or 'beads' sections", path)
        for section in raw.values():
            if not isinstance(section, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in section.items()):
                raise InputError("each section maps type names to type names", path)
        return cls(dict(raw.get("atoms", {})), dict(raw.get("beads", {})))


class SystemFeatures:
    """A :class:`FeatureSpec` bound to one system: type codes of its atoms and beads, its channels."""

    def __init__(self, system: MappedSystem, spec: FeatureSpec, aliases: TypeAliases | None = None) -> None:
        self.spec = spec
        aliases = aliases or TypeAliases()
        self.atom_type = _codes(aliases.atom_names(_atom_type_names(system, spec.atom_type_source)), spec.atom_types,
                                "atom types")
        self.bead_type = _codes(aliases.bead_names(system.mapping.bead_types), spec.bead_types, "bead types")
        self.channels = InteractionChannels(system.aa)

    def type_code(self, atom: Tensor, bead: Tensor) -> Tensor:
        """Per particle (``atom`` >= 0 or ``bead`` >= 0, else padding) its type code, -1 for padding."""
        a = self.atom_type.to(atom.device)[atom.clamp(min=0)]
        b = self.bead_type.to(bead.device)[bead.clamp(min=0)]
        return torch.where(atom >= 0, a, torch.where(bead >= 0, b, -1))

    def particles(self, env: Environment, target: Tensor) -> Particles:
        """The conditioner's input for placing atom ``target [B]`` in environments ``env``."""
        channel = self.channels(env.atom, target.unsqueeze(-1))  # [B, P]
        features = self.spec.encode(self.type_code(env.atom, env.bead), env.bead >= 0, channel)  # [B, P, F]
        return Particles(env.positions, features, env.mask)


def _codes(names: list[str], vocab: tuple[str, ...], what: str) -> Tensor:
    index = {v: k for k, v in enumerate(vocab)}
    missing = sorted(set(names) - set(index))
    if missing:
        raise InputError(f"{what} {missing} are not in the model's vocabulary {list(vocab)}; a model trained on "
                         "other molecules needs them named (gdbm backmap --type-alias)")
    return torch.tensor([index[n] for n in names], dtype=torch.long)
