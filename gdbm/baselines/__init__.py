"""The thesis' baseline: geometric placement (Wassenaar et al.) then OpenMM energy minimisation, no MD.

``placement`` (first guess) and ``rings`` (its ring modifier), ``minimize`` (OpenMM),
``backmap`` (frames on worker processes), ``cli`` (``gdbm baseline``). Nothing is imported
here, so that ``gdbm --help`` does not load torch and OpenMM.
"""
