"""Periodic neighbour pairs (vesin-torch) for triclinic boxes, batched over frames.

vesin finds every *image* pair within the cutoff, so in a strongly sheared box a pair seen
through two periodic images appears twice, with two lattice shifts; both are real
interactions. The pair vectors are recomputed here from the positions as
``pos[j] - pos[i] + shift @ box`` so that autograd flows to the positions (vesin's own
distances are detached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from vesin_torch import NeighborList

from gdbm.utils.errors import InputError
from gdbm.utils.pbc import box_widths, selling_reduce


@dataclass
class PairList:
    """Image pairs of a batch of frames, each unordered pair once per image, ``i <= j``."""

    frame: Tensor  # [P] long, frame of each pair
    i: Tensor  # [P] long
    j: Tensor  # [P] long
    shift: Tensor  # [P, 3] lattice shift of j (integer valued, positions' dtype)

    def __len__(self) -> int:
        return int(self.i.shape[0])

    def select(self, keep: Tensor) -> "PairList":
        """The pairs at the positions ``keep`` (a boolean mask [P] or indices)."""
        if keep.dtype == torch.bool:
            keep = torch.nonzero(keep).squeeze(-1)
        return PairList(*(t.index_select(0, keep) for t in (self.frame, self.i, self.j, self.shift)))


_CHECKED: set[tuple[float, bytes]] = set()  # (cutoff, boxes) found fine
BYTES_PER_PAIR = 160  # the pair list (vesin's and ours), its vectors, distances and energies, with copies


def box_heights(boxes: Tensor) -> Tensor:
    """Distances between opposite faces of each (Selling-reduced) box, ``[..., 3]`` (nm): a cutoff up to
    half the smallest sees each atom pair in at most one image, up to the smallest no atom its own image."""
    reduced = selling_reduce(boxes.detach().to(torch.float64))
    return box_widths(reduced)


def _box_text(box: Tensor) -> str:
    """A box for a message: ``a x b x c nm`` (vector lengths), with the angles when it is not rectangular."""
    lengths = box.detach().double().norm(dim=-1).tolist()
    text = " x ".join(f"{x:.3f}" for x in lengths) + " nm"
    if bool((box.detach() - torch.diag(torch.diagonal(box.detach()))).abs().max() > 1e-9):
        text += " (triclinic)"
    return text


def check_box(boxes: Tensor) -> None:
    """An :class:`InputError` for a box that is not finite or has no volume (``[..., 3, 3]``)."""
    flat = boxes.detach().double().reshape(-1, 3, 3)
    finite = torch.isfinite(flat).flatten(1).all(-1)  # [F]
    scale = flat.norm(dim=-1).prod(-1)  # [F]
    volume = torch.linalg.det(torch.where(finite[:, None, None], flat, 0.0)).abs()  # [F]
    ok = finite & (scale > 0) & (volume >= 1e-9 * scale)
    for f in torch.nonzero(~ok).flatten().tolist():
        box = [[round(x, 4) for x in row] for row in flat[f].tolist()]
        if not bool(finite[f]):
            raise InputError(f"frame {f}: the box holds NaN or inf; expected finite box vectors in nm")
        raise InputError(f"frame {f}: the box {box} nm has no volume (singular); expected three "
                         "independent box vectors, or no box for an open system")


def check_cutoff(cutoff: float, boxes: Tensor | None) -> None:
    """An :class:`InputError` when ``cutoff`` (nm) is not positive and finite, or is more than the shortest
    height of a box (``[..., 3, 3]``; None: an open system), likely a cutoff typed in Angstrom.

    Up to one height is allowed, not half: every image within the cutoff is a real interaction here
    (the sPS test boxes, 2.39 nm high, are evaluated at their simulation's 1.2 nm). Beyond it an atom
    would interact with its own images across the whole box.
    """
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise InputError(f"the cutoff must be a positive number of nm, got {cutoff}")
    if boxes is None:
        return
    flat = boxes.detach().double().reshape(-1, 3, 3).cpu()
    key = (cutoff, flat.numpy().tobytes())
    if key in _CHECKED:  # the same boxes again (steepest descent, Gibbs sweeps): checked once
        return
    check_box(flat)
    heights = box_heights(flat).amin(-1)  # [F]
    f = int(heights.argmin())
    if cutoff > float(heights[f]):
        raise InputError(f"the cutoff {cutoff:g} nm is more than the shortest box height ({float(heights[f]):.3f} nm) "
                         f"of the box {_box_text(flat[f])} (frame {f}); the cutoff is in nm, not Angstrom")
    if len(_CHECKED) > 256:
        _CHECKED.clear()
    _CHECKED.add(key)


def _free_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device`` (None: unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimated_pairs(positions: Tensor, boxes: Tensor | None, cutoff: float) -> float:
    """About how many image pairs within ``cutoff`` a batch ``[F, n, 3]`` has: uniform density in each box,
    at most every pair once for an open system."""
    n_frames, n = positions.shape[0], positions.shape[1]
    all_pairs = n_frames * n * (n - 1) / 2
    if boxes is None:
        return all_pairs
    volumes = torch.linalg.det(boxes.detach().double().reshape(-1, 3, 3)).abs()  # [F]
    sphere = 4.0 / 3.0 * math.pi * cutoff**3
    return float((n * (n - 1) / 2 * sphere / volumes).sum())


def check_pair_memory(positions: Tensor, boxes: Tensor | None, cutoff: float) -> None:
    """An :class:`InputError` before a pair search whose list would not fit in the free memory."""
    pairs = estimated_pairs(positions, boxes, cutoff)
    need, free = pairs * BYTES_PER_PAIR, _free_memory(positions.device)
    if free is not None and need > free:
        raise InputError(f"the cutoff {cutoff:g} nm gives about {pairs:.3g} atom pairs in {positions.shape[0]} "
                         f"frame(s) of {positions.shape[1]} atoms, about {need / 2**30:.1f} GiB; only "
                         f"{free / 2**30:.1f} GiB of memory are free: use a smaller cutoff (nm) or fewer frames")


def neighbor_pairs(positions: Tensor, boxes: Tensor | None, cutoff: float) -> PairList:
    """All image pairs closer than ``cutoff`` (nm) in each frame.

    ``positions``: ``[F, n, 3]`` or ``[n, 3]``; ``boxes``: ``[F, 3, 3]`` / ``[3, 3]`` rows =
    box vectors, or ``None`` for an open (non-periodic) system. Runs on the positions'
    device; one vesin call per frame.
    """
    pos = positions.detach()
    if pos.ndim == 2:
        pos = pos.unsqueeze(0)
        boxes = None if boxes is None else boxes.unsqueeze(0)
    periodic = boxes is not None
    check_pair_memory(pos, boxes, cutoff)
    calc = NeighborList(cutoff=float(cutoff), full_list=False)
    parts = []
    for f in range(pos.shape[0]):
        box = boxes[f].detach().to(pos.dtype) if periodic else torch.zeros(3, 3, dtype=pos.dtype, device=pos.device)
        i, j, s = calc.compute(pos[f], box, periodic, "ijS")
        parts.append((torch.full_like(i, f), i, j, s))
    frame, i, j, shift = (torch.cat(t) for t in zip(*parts))
    shift = shift.to(pos.dtype)  # [P, 3]
    # normalise to i <= j (flip the shift with the pair); self-images keep vesin's one copy
    swap = i > j
    i, j = torch.where(swap, j, i), torch.where(swap, i, j)
    shift = torch.where(swap.unsqueeze(-1), -shift, shift)
    return PairList(frame.long(), i.long(), j.long(), shift)


def pair_vectors(positions: Tensor, boxes: Tensor | None, pairs: PairList) -> Tensor:
    """Differentiable displacement vectors ``r_j + shift @ box - r_i`` of the pairs, ``[P, 3]``.

    Pairs come grouped by frame (as :func:`neighbor_pairs` returns them and ``select`` keeps
    them), so the shifts are turned into vectors with one small matmul per frame.
    """
    pos = positions if positions.ndim == 3 else positions.unsqueeze(0)  # [F, n, 3]
    flat = pos.reshape(-1, 3)  # [F * n, 3]; index_select gathers (and scatters back) fastest
    base = pairs.frame * pos.shape[1]
    d = flat.index_select(0, base + pairs.j) - flat.index_select(0, base + pairs.i)  # [P, 3]
    if boxes is None:
        return d
    box = (boxes if boxes.ndim == 3 else boxes.unsqueeze(0)).to(pos.dtype)  # [F, 3, 3]
    if box.shape[0] == 1:
        return d + pairs.shift @ box[0]
    counts = torch.bincount(pairs.frame, minlength=box.shape[0]).tolist()  # pairs per frame
    chunks = pairs.shift.split(counts)
    if len(pairs) and bool((pairs.frame[1:] < pairs.frame[:-1]).any()):  # not grouped: gather boxes
        return d + (pairs.shift.unsqueeze(-1) * box.index_select(0, pairs.frame)).sum(-2)
    return d + torch.cat([c @ box[f] for f, c in enumerate(chunks)])


def nearest_excluded(pairs: PairList, distances: Tensor, exclusions: Tensor, n_atoms: int) -> Tensor:
    """Mask ``[P]`` of the pairs that are the nearest image of an excluded pair.

    Only that image is excluded; farther images of the same pair are real interactions.
    ``distances``: ``[P]`` (or any monotonic function of them, e.g. squared); ``exclusions``:
    ``[e, 2]`` long, ``i < j``. Pairs are matched by integer keys ``i * n + j`` with a binary
    search in the sorted exclusion keys; no loop over pairs.
    """
    hit_mask = torch.zeros(len(pairs), dtype=torch.bool, device=pairs.i.device)
    if len(pairs) == 0 or exclusions.numel() == 0:
        return hit_mask
    excl = exclusions.to(pairs.i.device)
    table = torch.sort(excl[:, 0] * n_atoms + excl[:, 1]).values  # [e]
    key = pairs.i * n_atoms + pairs.j  # [P]
    where = torch.searchsorted(table, key).clamp_(max=table.numel() - 1)
    hit = torch.nonzero(table[where] == key).squeeze(-1)  # [h] images of excluded pairs
    if hit.numel() == 0:
        return hit_mask
    group = pairs.frame[hit] * (n_atoms * n_atoms) + key[hit]  # [h] one group per frame and pair
    order = torch.argsort(distances[hit].detach(), stable=True)  # nearest first ...
    order = order[torch.argsort(group[order], stable=True)]  # ... within each group
    g = group[order]
    first = torch.ones_like(g, dtype=torch.bool)
    first[1:] = g[1:] != g[:-1]  # [h] the nearest image of each excluded pair
    hit_mask[hit[order[first]]] = True
    return hit_mask
