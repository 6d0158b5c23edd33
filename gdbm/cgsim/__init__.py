"""CG simulations for assessing a CG model by backmapping (thesis Chapter 6).

A structure-based CG force field by Boltzmann inversion of mapped reference frames
(:mod:`~gdbm.cgsim.inversion`, :mod:`~gdbm.cgsim.forcefield`), run as Langevin NVT in OpenMM
with tabulated custom forces (:mod:`~gdbm.cgsim.openmm_system`, :mod:`~gdbm.cgsim.simulate`),
and the CG-level check of the run against the reference (:mod:`~gdbm.cgsim.check`).
"""
