"""OpenMM molecular dynamics of a packed box: minimisation, NPT compression and equilibration, each
until stationary, decorrelated production frames; every stage resumable from an atomic checkpoint file.

A box packed below liquid density can settle into a liquid blob beside a cavity, where
the pressure is near zero and a 1 bar barostat barely moves (seen with sPS chains packed at
0.5 g/cm^3: a "stationary" density of 0.56 at 568 K). So the box is first compressed at a
high pressure (default 1000 bar) until its density is stationary, then equilibrated at the
target pressure, where it expands smoothly to its density.

The system is built from the written ``topol.top`` (OpenMM's own GROMACS reader), so the
simulation runs exactly the force field that the output folder holds. Set-up: PME with a
plain cutoff for Lennard-Jones plus the long-range dispersion correction (densities need
it), bonds to hydrogen constrained, Langevin middle integrator, Monte Carlo barostat.

Checkpoints are OpenMM context checkpoints (positions, velocities, box, step, time) stored
with the recorded series in one ``.npz`` written atomically, so a stopped run continues
where its last checkpoint was taken, and series and checkpoint never disagree. At every
checkpoint the random streams are re-seeded from the seed and the segment's number
(:func:`_reseed`), and forces are deterministic where the platform offers it, so a
continued run is bit for bit the uninterrupted one. Checkpoints are specific to the OpenMM
platform they were made on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gdbm.utils.progress import tqdm

from gdbm.utils.atomic_files import atomic_path
from gdbm.datagen.box import AMU_NM3_TO_G_CM3
from gdbm.datagen.stationarity import Stationarity, detect
from gdbm.utils.errors import InputError

SERIES = ("time", "density", "potential")


@dataclass(frozen=True)
class MDSettings:
    """Thermodynamic state and protocol (units: K, bar, nm, ps)."""

    temperature: float
    pressure: float = 1.0
    cutoff: float = 1.0
    timestep: float = 0.002
    friction: float = 1.0  # 1/ps
    sample_interval: float = 1.0  # ps between recorded density and energy samples
    check_every: int = 50  # samples between stationarity checks (and checkpoints)
    max_equilibration: float = 2000.0  # ps, per NPT stage
    compression_pressure: float = 1000.0  # bar; 0: no compression stage
    min_uncorrelated: int = 25
    min_spacing: float = 0.0  # ps, lower bound on the spacing of production frames
    minimise_iterations: int = 5000
    seed: int = 0
    platform: str | None = None
    threads: int | None = None

    @property
    def steps_per_sample(self) -> int:
        return max(1, round(self.sample_interval / self.timestep))

    def check(self) -> None:
        """Raise an :class:`InputError` for settings no simulation can run with."""
        positive = {"temperature": self.temperature, "pressure": self.pressure, "cutoff": self.cutoff,
                    "timestep": self.timestep, "sample interval": self.sample_interval,
                    "maximum equilibration time": self.max_equilibration}
        for name, value in positive.items():
            if not value > 0:
                raise InputError(f"the {name} must be > 0, got {value}")
        if self.sample_interval < self.timestep:
            raise InputError(f"the sample interval ({self.sample_interval} ps) is shorter than one time step "
                             f"({self.timestep} ps)")
        if self.compression_pressure < 0:
            raise InputError(f"the compression pressure must be >= 0 bar (0: none), got {self.compression_pressure}")
        if self.min_uncorrelated < 2 or self.check_every < 1 or self.min_spacing < 0:
            raise InputError("need at least 2 uncorrelated samples, a check every >= 1 sample and a spacing >= 0")


@dataclass
class Series:
    """Samples of a run: time (ps), density (g/cm^3), potential energy (kJ/mol)."""

    time: list[float]
    density: list[float]
    potential: list[float]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name), dtype=np.float64) for name in SERIES}

    def __len__(self) -> int:
        return len(self.time)


def build_simulation(top: Path, box: np.ndarray, settings: MDSettings):
    """An OpenMM ``Simulation`` of ``top`` in the box ``[3, 3]`` (nm) at the settings' T and P."""
    import openmm as mm
    import openmm.app as app
    import openmm.unit as unit

    if 2 * settings.cutoff >= min(np.linalg.norm(box, axis=1)):
        raise InputError(f"the box ({min(np.linalg.norm(box, axis=1)):.2f} nm) is smaller than twice the cutoff "
                         f"({settings.cutoff} nm); put more molecules in or use a shorter --cutoff")
    vectors = [mm.Vec3(*map(float, row)) for row in box]
    gro = app.GromacsTopFile(str(top), periodicBoxVectors=vectors * unit.nanometer, includeDir=str(top.parent))
    system = gro.createSystem(nonbondedMethod=app.PME, nonbondedCutoff=settings.cutoff * unit.nanometer,
                              constraints=app.HBonds, ewaldErrorTolerance=5e-4)
    for force in system.getForces():
        if isinstance(force, mm.NonbondedForce):
            force.setUseDispersionCorrection(True)
    # OpenMM draws a fresh seed for 0, so every seed is offset by one
    barostat = mm.MonteCarloBarostat(settings.pressure * unit.bar, settings.temperature * unit.kelvin, 25)
    barostat.setRandomNumberSeed(settings.seed + 1)
    system.addForce(barostat)
    integrator = mm.LangevinMiddleIntegrator(settings.temperature * unit.kelvin, settings.friction / unit.picosecond,
                                             settings.timestep * unit.picosecond)
    integrator.setRandomNumberSeed(settings.seed + 1)
    return app.Simulation(gro.topology, system, integrator, *_platform(settings))


def _platform(settings: MDSettings):
    """The platform (named, else OpenMM's fastest) and its properties: deterministic forces where offered
    (on the CPU platform, forces otherwise differ in the last digits from one context to the next, and a
    minimisation or a trajectory drifts apart from them), the thread count on the CPU."""
    import openmm as mm

    names = [mm.Platform.getPlatform(k).getName() for k in range(mm.Platform.getNumPlatforms())]
    if settings.platform is not None and settings.platform not in names:
        raise InputError(f"unknown OpenMM platform {settings.platform!r}; this OpenMM has {names}")
    platform = mm.Platform.getPlatformByName(settings.platform) if settings.platform else max(
        (mm.Platform.getPlatform(k) for k in range(mm.Platform.getNumPlatforms())), key=lambda p: p.getSpeed())
    offered = platform.getPropertyNames()
    properties = {"DeterministicForces": "true"} if "DeterministicForces" in offered else {}
    if settings.threads and "Threads" in offered:
        properties["Threads"] = str(settings.threads)
    return platform, properties


def _step(simulation, steps: int) -> None:
    """``simulation.step`` with OpenMM's failures that come from the inputs turned into clear errors."""
    import openmm as mm

    try:
        simulation.step(steps)
    except mm.OpenMMException as err:
        if "periodic box size has decreased" in str(err):
            raise InputError("the box shrank below twice the cutoff during NPT; put more molecules in or use a "
                             "shorter --cutoff") from None
        if "NaN" in str(err):
            raise InputError("the simulation became unstable (NaN coordinates); try a shorter --timestep or a "
                             "lower --initial-density") from None
        raise


def _total_mass(simulation) -> float:
    system = simulation.system
    return sum(system.getParticleMass(i)._value for i in range(system.getNumParticles()))  # amu


def _sample(simulation, mass: float, series: Series) -> None:
    state = simulation.context.getState(getEnergy=True)
    volume = state.getPeriodicBoxVolume()._value  # nm^3
    series.time.append(state.getTime()._value)
    series.density.append(mass * AMU_NM3_TO_G_CM3 / volume)
    series.potential.append(state.getPotentialEnergy()._value)


def start_velocities(simulation, settings: MDSettings) -> None:
    """Maxwell-Boltzmann velocities at the settings' temperature, seeded."""
    simulation.context.setVelocitiesToTemperature(settings.temperature, settings.seed + 1)


def minimise(simulation, positions: np.ndarray, settings: MDSettings) -> tuple[np.ndarray, float]:
    """Local energy minimisation from ``positions`` (nm); returns the minimised positions and energy (kJ/mol)."""
    import openmm as mm

    simulation.context.setPositions(positions)
    mm.LocalEnergyMinimizer.minimize(simulation.context, 10.0, settings.minimise_iterations)
    state = simulation.context.getState(getPositions=True, getEnergy=True)
    energy = state.getPotentialEnergy()._value
    if not math.isfinite(energy):
        raise InputError("the energy after minimisation is not finite; pack at a lower --initial-density")
    return state.getPositions(asNumpy=True)._value, energy


def _reseed(simulation, settings: MDSettings, stage: int, segment: int) -> None:
    """Fresh random streams for a segment between two checkpoints of a stage, from the seed alone.

    A checkpoint does not hold the barostat's random state (nor its adapted volume step),
    so a continued run would draw other numbers than an uninterrupted one. Both re-seed the
    integrator and the barostat at every checkpoint and rebuild the context's kernels with
    the state kept, so both draw the same numbers: an interrupted run ends exactly as an
    uninterrupted one.
    """
    import openmm as mm

    stream = int(np.random.SeedSequence([settings.seed, stage, segment]).generate_state(1)[0] % (2**31 - 2)) + 1
    for force in simulation.system.getForces():
        if isinstance(force, mm.MonteCarloBarostat):
            force.setRandomNumberSeed(stream)
    simulation.integrator.setRandomNumberSeed(stream)
    simulation.context.reinitialize(preserveState=True)


def _save(path: Path, series: Series, checkpoint: bytes, **extra: np.ndarray | float | bool) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, checkpoint=np.frombuffer(checkpoint, dtype=np.uint8), **series.arrays(), **extra)


def _load(path: Path, simulation) -> tuple[Series, dict[str, np.ndarray]]:
    with np.load(path) as data:
        stored = {k: data[k] for k in data.files}
    import openmm as mm

    try:
        simulation.context.loadCheckpoint(stored.pop("checkpoint").tobytes())
    except mm.OpenMMException as err:
        raise InputError(f"cannot resume from this checkpoint ({err}); it was written on another OpenMM "
                         "platform or version; use the same --platform or start over with --force", path) from None
    return Series(*(stored.pop(k).tolist() for k in SERIES)), stored


@dataclass
class Equilibration:
    """The NPT equilibration's samples and the stationarity found in them."""

    series: Series
    verdict: Stationarity


STAGES = {"compress": 0, "equilibrate": 1, "produce": 2}  # random streams of each stage (see _reseed)


def set_pressure(simulation, pressure: float) -> None:
    """The barostat's pressure (bar) from now on."""
    import openmm as mm

    simulation.context.setParameter(mm.MonteCarloBarostat.Pressure(), pressure)


def equilibrate(simulation, settings: MDSettings, store: Path, pressure: float,
                stage: str = "equilibrate") -> Equilibration:
    """NPT at ``pressure`` (bar) until density and potential energy are stationary
    (:mod:`~gdbm.datagen.stationarity`), from the context's current state.

    Checks and checkpoints every ``check_every`` samples into ``store``; a ``store`` from
    an earlier call is continued (or returned at once when it had become stationary).
    Raises an :class:`InputError` when ``max_equilibration`` passes first; a larger limit
    then continues from the checkpoint.
    """
    mass = _total_mass(simulation)
    series = _load(store, simulation)[0] if store.exists() else Series([], [], [])
    set_pressure(simulation, pressure)
    limit = math.ceil(settings.max_equilibration / settings.sample_interval)
    verdict = detect({"density": np.asarray(series.density), "potential": np.asarray(series.potential)},
                     settings.min_uncorrelated)
    bar = tqdm(total=limit, initial=min(len(series), limit), unit="sample", desc=f"NPT {stage} ({pressure:g} bar)")
    try:
        while not verdict.stationary and len(series) < limit:
            _reseed(simulation, settings, STAGES[stage], len(series))
            for _ in range(min(settings.check_every, limit - len(series))):
                _step(simulation, settings.steps_per_sample)
                _sample(simulation, mass, series)
                bar.update()
            verdict = detect({"density": np.asarray(series.density), "potential": np.asarray(series.potential)},
                             settings.min_uncorrelated)
            bar.set_postfix(density=f"{series.density[-1]:.4f}", t0=verdict.start)
            _save(store, series, simulation.context.createCheckpoint(), stationary=verdict.stationary)
    finally:
        bar.close()
    if not verdict.stationary:
        raise InputError(f"{stage}: density and energy not stationary after {len(series) * settings.sample_interval:g} "
                         f"ps at {pressure:g} bar (latest start found: sample {verdict.start} of {len(series)}, "
                         f"{verdict.n_uncorrelated:.0f} independent samples); rerun with a larger "
                         "--max-equilibration to continue from the checkpoint", store)
    return Equilibration(series, verdict)


@dataclass
class Production:
    """Production frames (nm; molecules whole, wrapped into the box) with their samples."""

    positions: np.ndarray  # [F, n, 3]
    boxes: np.ndarray  # [F, 3, 3]
    series: Series
    spacing_steps: int


def spacing_steps(verdict: Stationarity, settings: MDSettings) -> int:
    """Steps between production frames: the statistical inefficiency rounded up, at least ``min_spacing``."""
    samples = max(1, math.ceil(verdict.inefficiency))
    return max(samples * settings.steps_per_sample, math.ceil(settings.min_spacing / settings.timestep))


def produce(simulation, settings: MDSettings, n_frames: int, spacing: int, store: Path) -> Production:
    """``n_frames`` frames ``spacing`` steps apart, continuing ``store`` if an earlier call left one."""
    mass = _total_mass(simulation)
    positions: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    series = Series([], [], [])
    if store.exists():
        series, stored = _load(store, simulation)
        positions, boxes = list(stored["positions"]), list(stored["boxes"])
    with tqdm(total=n_frames, initial=len(positions), unit="frame", desc="production") as bar:
        while len(positions) < n_frames:
            _reseed(simulation, settings, STAGES["produce"], len(positions))
            _step(simulation, spacing)
            state = simulation.context.getState(getPositions=True, enforcePeriodicBox=True)
            positions.append(state.getPositions(asNumpy=True)._value.astype(np.float32))
            boxes.append(state.getPeriodicBoxVectors(asNumpy=True)._value.astype(np.float32))
            _sample(simulation, mass, series)
            _save(store, series, simulation.context.createCheckpoint(), positions=np.stack(positions),
                  boxes=np.stack(boxes))
            bar.update()
    return Production(np.stack(positions[:n_frames]), np.stack(boxes[:n_frames]), series, spacing)
