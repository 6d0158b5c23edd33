"""Studies across training sets, state points and models (``gdbm study``): train, backmap, evaluate, summarise."""

from gdbm.study.config import ModelArm, StudyConfig, SystemConfig, TestSet, load_study
from gdbm.study.runner import StudyRunner

__all__ = ["ModelArm", "StudyConfig", "StudyRunner", "SystemConfig", "TestSet", "load_study"]
