"""The package layout: imports flow one way (CLI -> run folder -> analysis -> sweep -> training -> data), with no
cycle; names of models and data sets are compared only in their registries; pyproject installs every package."""

import ast
import pathlib

import pytest

from ddjax.data.registry import DATASETS
from ddjax.models.registry import MODELS

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ddjax"
# Lower layers first: a module may import its own layer's modules and those of LOWER layers only.
LAYERS = [
    ("ddjax.arguments", "ddjax.errors", "ddjax.optimizers", "ddjax.result"),
    ("ddjax.registration",),
    ("ddjax.models",),
    ("ddjax.data",),
    ("ddjax.config",),
    ("ddjax.training",),
    ("ddjax.solvers",),
    ("ddjax.sweep",),
    ("ddjax.analysis",),
    ("ddjax.runs",),
    ("ddjax.experiment",),
    ("ddjax.run",),
]


def _modules() -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name (packages by their __init__.py)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    """The ddjax modules `path` imports at run time, anywhere in it (imports inside functions count too)."""
    found, skip = set(), set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(child) for statement in node.body for child in ast.walk(statement))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("ddjax"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ddjax"):
            for alias in node.names:  # `from ddjax.runs import checkpoint` imports a module, not a name.
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found


def _layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer of LAYERS: give it one")


def _group(module: str) -> str:
    return module if module.count(".") < 1 else ".".join(module.split(".")[:2])


def test_every_import_goes_down_the_layers():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        if name == "ddjax":  # The package's public surface re-exports from every layer.
            continue
        for target in _imports(path, modules) - {"ddjax"}:  # `import ddjax` for __version__ only.
            same_group = _group(target) == _group(name)
            if not same_group and _layer(target) >= _layer(name):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports that go up or sideways: " + "; ".join(sorted(wrong))


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) - {"ddjax"} for name, path in modules.items()}
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "active", "import cycle: " + " -> ".join(trail + [name])
        state[name] = "active"
        for target in sorted(graph.get(name, ())):
            visit(target, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])


def test_the_layer_test_sees_a_wrong_import(tmp_path):
    # The checker itself: an upward import in a module of a low layer is reported.
    modules = _modules()
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from ddjax.run import main\n")
    assert "ddjax.run" in _imports(fake, modules) and _layer("ddjax.run") > _layer("ddjax.training.trainer")
    fake.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ddjax.config import Config\n")
    assert _imports(fake, modules) == set()


def _compared_names(path: pathlib.Path) -> list[str]:
    """String constants that a comparison (==, !=, in, not in) in `path` holds."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                for leaf in ast.walk(operand):
                    if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                        names.append(leaf.value)
    return names


def test_model_and_dataset_names_are_compared_only_in_the_registries():
    registered = set(MODELS) | set(DATASETS)
    registries = {PACKAGE / "models" / "registry.py", PACKAGE / "data" / "registry.py"}
    wrong = [f"{path.relative_to(ROOT)}: {name!r}" for path in sorted(PACKAGE.rglob("*.py")) if path not in registries
             for name in _compared_names(path) if name in registered]
    assert not wrong, "model or data-set names compared outside the registries: " + ", ".join(wrong)


def test_library_reads_no_test_environment_variable():
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if "DDJAX_TEST" in p.read_text()]
    assert not offenders


def test_pyproject_installs_every_package():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {".".join(p.relative_to(ROOT).parts) for p in (p.parent for p in PACKAGE.rglob("__init__.py"))}
    assert set(config["packages"]) == packages | {"ddjax.experiments"}
    assert config["package-dir"]["ddjax.experiments"] == "experiments"
