"""The package's layers depend downward only and its modules import no cycle (DESIGN.md, issue 19)."""

from pathlib import Path

import gdbm
from gdbm.utils.package_layers import (import_cycles, module_imports, package_modules, report, unknown_layers,
                                       upward_imports)

ROOT = Path(gdbm.__file__).parent


def test_every_package_folder_is_a_declared_layer():
    assert unknown_layers(package_modules(ROOT)) == []


def test_no_upward_import_and_no_cycle():
    imports = module_imports(package_modules(ROOT))
    assert len(imports) > 500  # the walk saw the package's imports, lazy ones included
    assert upward_imports(imports) == [], report(ROOT)
    assert import_cycles(imports) == [], report(ROOT)


def test_the_check_finds_an_upward_import_and_a_cycle(tmp_path):
    pkg = tmp_path / "gdbm"
    for folder, text in {"utils": "def f():\n    from gdbm.sampling.jobs import run\n",
                         "sampling": "from gdbm.sampling.other import x\n"}.items():
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "utils" / "files.py").write_text("def f():\n    from gdbm.sampling.jobs import run\n")
    (pkg / "sampling" / "jobs.py").write_text("from gdbm.sampling.other import x\n")
    (pkg / "sampling" / "other.py").write_text("import gdbm.sampling.jobs\n")
    imports = module_imports(package_modules(pkg))
    assert [(i.importer, i.imported, i.line) for i in upward_imports(imports)] == [
        ("gdbm.utils.files", "gdbm.sampling.jobs", 2)]
    assert import_cycles(imports) == [["gdbm.sampling.jobs", "gdbm.sampling.other"]]


def test_import_gdbm_is_light_and_every_public_name_resolves():
    import subprocess
    import sys

    code = "import sys, gdbm; print('torch' in sys.modules, 'MDAnalysis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    for name in gdbm.__all__:
        assert getattr(gdbm, name) is not None, name
