"""The e3nn conditioner: point-cloud environments, equivariant generator, invariant critic (thesis Sec. 9.8).

e3nn is an optional dependency (``pip install gdbm[equivariant]``): the config imports without it,
the networks and blocks load on first use.
"""

from importlib import import_module

from gdbm.conditioners.equivariant.config import E3nnConfig

_LAZY = {name: "gdbm.conditioners.equivariant.blocks" for name in (
    "InvariantReadout", "ProductBasis", "QueryConvolution", "RadialBasis", "VectorReadout", "all_irreps",
    "channelwise_product", "natural_irreps")}
_LAZY.update({name: "gdbm.conditioners.equivariant.networks" for name in (
    "E3nnCritic", "E3nnGenerator", "NoiseDirections", "ParticleEmbedding", "QueryEncoder",
    "build_e3nn_conditioner")})

__all__ = ["E3nnConfig", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = import_module(_LAZY[name])
    except ModuleNotFoundError as err:
        raise ImportError("the e3nn conditioner needs e3nn: pip install 'gdbm[equivariant]'") from err
    return getattr(module, name)
