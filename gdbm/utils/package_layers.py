"""The package's layers and the imports between its modules, read from the source (AST), not by importing.

:data:`LAYERS` is the declared order: a module may import modules of its own layer or of
layers before it, never after it (an *upward* import), and the module graph has no cycles.
``tests/test_layers.py`` keeps both true; ``python -m gdbm.utils.package_layers`` prints the
report and a Graphviz picture of the layers (``docs/architecture.md`` shows it).
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass
from pathlib import Path

#: Lowest first. Wings (analysis ... study) sit above sampling in this order too.
LAYERS = ("utils", "topology", "physics", "ordering", "data", "conditioners", "training", "sampling",
          "analysis", "baselines", "cgsim", "datagen", "temporal", "study", "cli")
#: Modules at the package root: the public API (lazy re-exports) and ``python -m gdbm``; above everything.
ROOT_LAYER = "api"


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def package_modules(root: Path) -> dict[str, Path]:
    """``{dotted name: file}`` of every module under ``root`` (the ``gdbm`` folder)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (``a.b.c`` or ``a.b.attr``) lies in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def module_imports(modules: dict[str, Path], package: str = "gdbm") -> list[Import]:
    """Every import of a package module by a package module, lazy (inside functions) ones included."""
    found = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target == package or target.startswith(package + "."):
                    resolved = _resolve(target, modules)
                    if resolved is not None and resolved != name:
                        found.append(Import(name, resolved, node.lineno))
    return found


def layer_of(module: str) -> str:
    """``gdbm.sampling.jobs`` -> ``sampling``; root modules -> :data:`ROOT_LAYER`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ROOT_LAYER


def rank(layer: str) -> int:
    return len(LAYERS) if layer == ROOT_LAYER else LAYERS.index(layer)


def upward_imports(imports: list[Import]) -> list[Import]:
    """Imports of a module in a later layer than the importer's."""
    return [i for i in imports if rank(layer_of(i.imported)) > rank(layer_of(i.importer))]


def unknown_layers(modules: dict[str, Path]) -> list[str]:
    """Package folders that :data:`LAYERS` does not name."""
    return sorted({layer_of(m) for m in modules} - set(LAYERS) - {ROOT_LAYER})


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each a cycle to break."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        graph.setdefault(i.importer, set()).add(i.imported)
        graph.setdefault(i.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def layer_edges(imports: list[Import]) -> dict[tuple[str, str], int]:
    """``{(importer layer, imported layer): number of module imports}`` between different layers."""
    edges: dict[tuple[str, str], int] = {}
    for i in imports:
        key = (layer_of(i.importer), layer_of(i.imported))
        if key[0] != key[1]:
            edges[key] = edges.get(key, 0) + 1
    return edges


def graphviz(imports: list[Import]) -> str:
    """The layers as a Graphviz digraph, lowest at the bottom, one edge per pair of layers that import."""
    lines = ["digraph layers {", "  rankdir=BT; node [shape=box, fontname=Helvetica];"]
    for a, b in sorted(layer_edges(imports)):
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def report(root: Path) -> str:
    """Module count, imports, cycles and upward imports of the package at ``root``, as text."""
    modules = package_modules(root)
    imports = module_imports(modules)
    cycles, upward = import_cycles(imports), upward_imports(imports)
    lines = [f"{len(modules)} modules, {len(imports)} imports between them",
             f"layers (lowest first): {' < '.join(LAYERS)} < {ROOT_LAYER}",
             f"{len(cycles)} import cycles", *(f"  cycle: {' <-> '.join(c)}" for c in cycles),
             f"{len(upward)} upward imports",
             *(f"  {i.importer}:{i.line} imports {i.imported} ({layer_of(i.imported)} is above "
               f"{layer_of(i.importer)})" for i in upward)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dot", action="store_true", help="print the Graphviz picture of the layers instead")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    print(graphviz(module_imports(package_modules(root))) if args.dot else report(root), end="")


if __name__ == "__main__":
    main()
