"""Conditioners: networks that turn a local environment into an atom position (generator) or a score (critic).

:mod:`~gdbm.conditioners.interface` is the one interface the trainer and sampler see,
:mod:`~gdbm.conditioners.registry` the table of known conditioners; ``voxel/`` (DBM's 3D CNNs)
and ``equivariant/`` (e3nn) implement it.
"""

from gdbm.conditioners.interface import Critic, Generator, Particles
from gdbm.conditioners.registry import CONDITIONERS, ConditionerEntry, conditioner, register

__all__ = ["CONDITIONERS", "ConditionerEntry", "Critic", "Generator", "Particles", "conditioner", "register"]
