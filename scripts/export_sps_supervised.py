"""Write the shipped model sps-supervised (`python scripts/export_sps_supervised.py` from the repository root):
checkpoints/sps-supervised-centre.pt's generator, the training frames' stereo template (with the hydrogens' naming),
the sampler settings it was scored with (docs/sps-supervised.md) and sps-voxel's refine recipe."""
import argparse

import torch
from gdbm.training.pretrained import export_generator
from gdbm.data.stereo import stereo_template_from_file
from gdbm.topology.system import load_mapped_system
from gdbm.utils.atomic_files import atomic_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/sps-supervised-centre.pt", help="training checkpoint")
    parser.add_argument("-o", "--out", default="gdbm/resources/models/sps-supervised.pt", help="model file to write")
    args = parser.parse_args()
    sps, out = "../shared/data/sps", args.out
    aa = load_mapped_system(sps + "/topol.top", sps + "/PS1.map").aa
    stereo = stereo_template_from_file(aa, sps + "/train_t568/aa")
    sampler = dict(n_gibbs=2, candidates=16, pass_candidates=[16, 16, 64], hydrogen_candidates=8,
                   hydrogen_lookahead=["planar_ch", "ch", "ch2"], hold_centres="seat", seat_keep=0.7,
                   pendant_turns=1, bond_cap=0.04)
    export_generator(args.checkpoint, out, stereo=stereo, sampler=sampler)
    payload = torch.load(out, weights_only=False)
    payload["config"]["refine"].update(temperature=568.0, stages=["500", "500,568,2e6,0.001"])
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)


if __name__ == "__main__":
    main()
