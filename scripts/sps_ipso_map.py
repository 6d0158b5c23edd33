"""DBM's sPS reconstruction map with every ipso carbon homed on its CH's backbone bead (issue 18, section 22 of
docs/generator-diagnosis.md): the backbone step then places CH2, CH and ipso together, so the junction angle
CH2-CH-ipso lies inside one step instead of across two. Only the home beads change; the CG input and the CG map
(``PS1_cg_fritz.map``) do not.

    .venv/bin/python scripts/sps_ipso_map.py ../shared/data/sps/PS1.map runs/maps/PS1_ipso_bb.map
"""

from __future__ import annotations

import sys
from pathlib import Path


def ipso_on_backbone(lines: list[str]) -> list[str]:
    """The ``[map]`` lines with each ``C_AR`` that directly follows a backbone ``C`` moved to that ``C``'s bead."""
    out, inside, previous = [], False, None
    for line in lines:
        fields = line.split()
        if line.strip() == "[map]":
            inside = True
        elif line.strip() == "[/map]":
            inside = False
        elif inside and len(fields) >= 4 and not line.lstrip().startswith(";"):
            if fields[1] == "C_AR" and previous is not None and previous[1] == "C":
                line = line.replace(f" {fields[2]} SC", f" {previous[2]} BB", 1)
            previous = fields
        out.append(line)
    return out


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(ipso_on_backbone(source.read_text().splitlines())) + "\n")
