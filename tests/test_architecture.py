"""The shape of the code: which part may import which, read from the source (no import runs).

radimt is built in floors. A module may import modules of its own floor or below, never above:
the science never reaches for the batch, the analysis of one lesion never for the pipeline,
and nothing but the command line for the command line. A package's ``__init__`` imports what it
exports at the top, with no lazy ``__getattr__`` to hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "radimt"

#: Floors, lowest first; a module is on the floor of its longest matching name.
FLOORS: list[tuple[str, ...]] = [
    # 0: the vocabulary every part shares
    (
        "radimt._version",
        "radimt.errors",
        "radimt.roles",
        "radimt.options",
        "radimt.progress",
        "radimt.io.atomic",
        "radimt.dicom.uids",
        "radimt.processes",
        "radimt.fork_server",
    ),
    # 1: DICOM in, grids and measures, plain tables and seed files
    (
        "radimt.dicom",
        "radimt.grids",
        "radimt.measure",
        "radimt.io.tables",
        "radimt.io.seeds",
        "radimt.io.yamlfiles",
        "radimt.io.deidentify",
    ),
    # 2: the science of one image and mask
    (
        "radimt.segment",
        "radimt.kinetics",
        "radimt.diffusion",
        "radimt.features",
        "radimt.domain",
        "radimt.ibsi",
        "radimt.ibsi_processing",
        "radimt.ibsi_filters",
        "radimt.ibsi_texture",
        "radimt.robustness",
        "radimt.dictionary",
        "radimt.propose",
    ),
    # 3: masks and results as DICOM, synthetic studies, the classifier
    ("radimt.io", "radimt.synth", "radimt.classify", "radimt.pacs"),
    # 4: one lesion from study to row; figures and reports of one thing
    ("radimt.analysis", "radimt.report"),
    # 5: the batch
    ("radimt.pipeline",),
    # 6: reviewing a finished run
    ("radimt.review",),
    # 7: the command line
    ("radimt.cli",),
    # 8: the public face
    ("radimt",),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _floor(module: str) -> int:
    best, floor = -1, None
    for level, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, floor = len(name), level
    assert floor is not None, f"{module} is on no floor; add it to FLOORS"
    return floor


def _imports(module: str) -> set[str]:
    """radimt modules ``module`` imports anywhere in its source (functions included)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from radimt.x import y`` imports the submodule radimt.x.y when there is one
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("radimt") and name != module:
                found.add(name)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_module_has_a_floor():
    for module in MODULES:
        _floor(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_floor_above_its_own(module):
    upward = sorted(i for i in GRAPH[module] if _floor(i) > _floor(module))
    assert not upward, f"{module} (floor {_floor(module)}) imports {upward} from above"


def test_the_analysis_and_the_science_never_import_the_pipeline():
    for module, imported in GRAPH.items():
        if module.startswith(("radimt.pipeline", "radimt.review", "radimt.cli")) or module == "radimt":
            continue
        assert not [i for i in imported if i.startswith(("radimt.pipeline", "radimt.cli"))], module


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == 1:
                cycle = path[path.index(imported) :] + [imported]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_no_package_hides_its_imports_behind_a_module_getattr():
    """Only the public face loads lazily (``import radimt`` stays light), and every module it
    names lazily is also a visible import (its TYPE_CHECKING block), so the floors see it."""
    import radimt

    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        lazy = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
        assert not lazy or module == "radimt", f"{module} defines a module-level __getattr__"
    hidden = set(radimt._LAZY.values()) - GRAPH["radimt"]
    assert not hidden, f"radimt loads {sorted(hidden)} lazily without a visible import"


def test_the_floor_checks_can_fail():
    """The checks above read real imports: a module known to import the analysis is seen to."""
    assert "radimt.analysis" in GRAPH["radimt.pipeline.worker"]
    assert _floor("radimt.pipeline.worker") > _floor("radimt.analysis")
    assert "radimt.segment" in GRAPH["radimt.analysis"]
