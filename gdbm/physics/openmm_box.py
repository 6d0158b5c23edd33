"""A periodic box for OpenMM: the same lattice in a rotated, reduced basis.

OpenMM wants box vectors in its reduced form (a along x, b in the xy plane). The sPS boxes
already are, but their thin directions are sheared, and there the Reference platform's
voxel neighbour list (openmm 8.6.1) misses pairs: LJ up to 37.6 kJ/mol off on the sPS
training frames, while the CPU platform and an explicit enumeration of images agree with
gdbm. Handing OpenMM a Selling-reduced basis, shortest vectors first, keeps the shears
small, and Reference then agrees with gdbm to 1e-13. A proper rotation of the whole system
leaves energies unchanged: rotate positions in, forces back.
"""

from __future__ import annotations

import numpy as np
import torch

from gdbm.utils.pbc import selling_reduce


def openmm_basis(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rotation, vectors)`` for a box ``[3, 3]`` (rows = vectors, nm).

    Positions go to OpenMM as ``x @ rotation``, its forces come back as ``f @ rotation.T``;
    ``vectors`` ``[3, 3]`` are the rotated box rows in OpenMM's reduced form.
    """
    v = selling_reduce(torch.as_tensor(np.asarray(box, dtype=np.float64))).numpy()
    v = v[np.argsort(np.linalg.norm(v, axis=1), kind="stable")]
    if np.linalg.det(v) < 0:
        v[2] = -v[2]  # same lattice, right-handed again
    e1 = v[0] / np.linalg.norm(v[0])
    t = v[1] - (v[1] @ e1) * e1
    e2 = t / np.linalg.norm(t)
    rotation = np.stack([e1, e2, np.cross(e1, e2)], axis=1)  # [3, 3], columns = new axes
    out = v @ rotation
    out[0, 1:] = 0.0
    out[1, 2] = 0.0
    out[2] -= out[1] * np.round(out[2, 1] / out[1, 1])
    out[2] -= out[0] * np.round(out[2, 0] / out[0, 0])
    out[1] -= out[0] * np.round(out[1, 0] / out[0, 0])
    return rotation, out
