"""scripts/sps_junction.py: the junction angle, its CG-bead line and the ring's tilt on sPS frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from script_loader import load_script
import torch

from gdbm.data.trajectory import read_frames
from gdbm.topology.system import load_mapped_system


@pytest.fixture(scope="module")
def script():
    return load_script("sps_junction")


def first_frames(folder: Path):
    """Frame 0 of the reference trajectory and of its CG trajectory (the .gro files are other frames)."""
    aa = read_frames(folder / "aa.xtc", folder / "aa.gro").subset([0])
    cg = read_frames(folder / "cg.xtc", folder / "cg.gro").subset([0])
    return aa, cg


def test_the_reference_rings_tilt_and_take_up_their_beads_scatter(script, sps: Path):
    """Test frame 0 of the 568 K reference: 684 junction angles (2 per inner CH, 1 at a chain end), a junction
    narrower than its bead line, rings tilted about 12 degrees rms (docs/generator-diagnosis.md, section 22)."""
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map")
    sites = script.ring_sites(system.aa, system.mapping.home_bead)
    assert sites["ring"].shape == (360, 9) and sites["junction"].shape == (684, 3)
    aa, cg = first_frames(sps / "test_t568")
    m = script.measure(aa.positions, cg.positions, cg.boxes, sites)
    assert m["angles"] == 684 and 110 < m["junction mean"] < 114
    assert m["junction std"] < 0.8 * m["line std"]
    assert 10 < m["tilt rms"] < 15


def test_a_bead_on_the_ch_ipso_line_gives_the_junction_itself(script, sps: Path):
    """Put every ring bead on its CH->ipso line: the line angle is then the junction angle, pair by pair."""
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map")
    sites = script.ring_sites(system.aa, system.mapping.home_bead)
    aa, cg = first_frames(sps / "test_t568")
    beads = cg.positions.clone()
    ring = sites["ring"]
    ch, ipso = aa.positions[:, ring[:, 0]], aa.positions[:, ring[:, 1]]
    from gdbm.utils.pbc import minimum_image

    beads[:, ring[:, 8]] = ch + 2.0 * minimum_image(ipso - ch, cg.boxes.double()).float()
    m = script.measure(aa.positions, beads, cg.boxes, sites)
    assert m["rms(junction - line)"] < 1e-3
    assert m["line std"] == pytest.approx(m["junction std"], abs=1e-3)
