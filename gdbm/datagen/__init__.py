"""Reference AA data from SMILES: GAFF2 liquids and polymer melts simulated with OpenMM, plus their CG side.

The pipeline (:func:`gdbm.datagen.pipeline.generate`) turns molecules into a folder that
every other gdbm command reads like any GROMACS data: RDKit 3D structures
(:mod:`~gdbm.datagen.molecules`, :mod:`~gdbm.datagen.polymer`), GAFF2 + AM1-BCC parameters
from AmberTools, cached per molecule (:mod:`~gdbm.datagen.parameters`), a periodic box
packed by packmol (:mod:`~gdbm.datagen.box`), OpenMM minimisation, NPT equilibration until
density and energy are detected stationary, and decorrelated production frames
(:mod:`~gdbm.datagen.simulate`, :mod:`~gdbm.datagen.stationarity`), a CG mapping from
SMARTS fragment rules (:mod:`~gdbm.datagen.mapping`) and the GROMACS / frame files
(:mod:`~gdbm.datagen.writers`). Heavy dependencies (openmm, parmed, pymbar, the AmberTools
and packmol programs) are imported or looked up only when used: ``pip install gdbm[datagen]``.
"""
