"""The package layout: imports go one way, the solver needs no gymnasium or torch, and the
installed distribution adds no top-level ``train`` / ``evaluate`` / ``main`` modules.

Layers, lowest first (a module may import its own layer and the layers below it):

    core  <  solvers  <  envs  <  agents  <  deaoff_cli

Imports are read with ``ast`` from every module, including imports deferred into
functions (a deferred import is still a dependency; it only hides a cycle).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "solvers", "envs", "agents", "deaoff_cli")
# Third-party packages each layer must not import (nor may anything below it).
FORBIDDEN = {
    "core": ("gymnasium", "torch", "stable_baselines3", "sb3_contrib"),
    "solvers": ("gymnasium", "torch", "stable_baselines3", "sb3_contrib"),
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in the file; ``name`` is the
    file's module name (default: from its path under the repository)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path) if name is None else name
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # ``from . import x``: x is a submodule (or a name) of the package
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def _layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in LAYERS else None


def test_every_layer_has_modules():
    for package in LAYERS:
        assert _modules(package), f"no modules found under {package}/"


def test_walker_resolves_relative_and_deferred_imports(tmp_path):
    """``from .x import y``, ``from .. import z`` and an import inside a function are found,
    resolved as Python resolves them."""
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom .system import Scenario\nfrom .. import envs\n"
                      "def f():\n    from agents.features import x\n")
    assert imported_modules(module, "core.sub.m") == [
        (1, "os"), (2, "core.sub.system"), (3, "core.envs"), (5, "agents.features")]
    init = tmp_path / "__init__.py"
    init.write_text("from .cost import evaluate\n")
    assert imported_modules(init, "core") == [(1, "core.cost")]


@pytest.mark.parametrize("package", LAYERS)
def test_no_upward_import(package):
    """A module imports only its own layer and the layers below it."""
    rank = LAYERS.index(package)
    upward = []
    for path in _modules(package):
        for line, module in imported_modules(path):
            layer = _layer_of(module)
            if layer is not None and LAYERS.index(layer) > rank:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({layer} is above {package})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_rl_stack_below_envs(package):
    """core/ and solvers/ import neither gymnasium nor torch nor stable-baselines3."""
    bad = []
    for path in _modules(package):
        for line, module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_solver_import_is_gym_and_torch_free():
    """Importing the solver, the heuristics and the cost engine in a fresh interpreter loads
    neither gymnasium nor torch (nor stable-baselines3)."""
    code = ("import sys, solvers.deaoff, solvers.heuristics, core.cost\n"
            "heavy = sorted(m for m in ('gymnasium', 'torch', 'stable_baselines3', 'sb3_contrib') "
            "if m in sys.modules)\n"
            "print(','.join(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"loaded by the solver import: {proc.stdout.strip()}"


# ----- packaging ----------------------------------------------------------------------------
def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_no_top_level_script_modules_installed():
    """``train``, ``evaluate`` and ``main`` stay scripts in the repository: the distribution
    installs only the packages (``evaluate`` is also a Hugging Face package's name)."""
    setuptools_cfg = _pyproject()["tool"]["setuptools"]
    assert "py-modules" not in setuptools_cfg
    include = setuptools_cfg["packages"]["find"]["include"]
    tops = {pattern.split(".")[0] for pattern in include}
    assert tops == set(LAYERS), tops
    assert not tops & {"train", "evaluate", "main", "tests", "benchmarks", "scripts"}


def test_console_scripts_declared():
    scripts = _pyproject()["project"]["scripts"]
    assert scripts == {"deaoff-train": "deaoff_cli.train:main",
                       "deaoff-evaluate": "deaoff_cli.evaluate:main",
                       "deaoff-main": "deaoff_cli.main:main",
                       "deaoff-sweep": "deaoff_cli.sweep:main"}


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "main.py", "sweep.py"])
def test_wrappers_are_thin(script):
    """The top-level scripts only call their ``deaoff_cli`` module's ``main``."""
    tree = ast.parse((ROOT / script).read_text(encoding="utf-8"))
    imports = [m for _, m in imported_modules(ROOT / script)]
    assert imports == ["sys", f"deaoff_cli.{script[:-3]}"], imports
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not defs


@pytest.mark.parametrize("entry", ["deaoff_cli.train", "deaoff_cli.evaluate", "deaoff_cli.main", "deaoff_cli.sweep"])
def test_console_entry_points_answer_help(entry):
    """What each console script runs (``python -m`` of the same ``main``) prints its usage."""
    proc = subprocess.run([sys.executable, "-c", f"import sys, {entry} as m; sys.exit(m.main(['--help']))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_installed_distribution_has_no_script_modules():
    """When the project is installed (``pip install -e .``), its top-level names are the five
    packages only."""
    from importlib import metadata

    try:
        dist = metadata.distribution("deaoff-gym")
    except metadata.PackageNotFoundError:
        pytest.skip("deaoff-gym is not installed in this interpreter")
    top_level = (dist.read_text("top_level.txt") or "").split()
    if not top_level:
        pytest.skip("the installed metadata has no top_level.txt")
    assert not set(top_level) & {"train", "evaluate", "main"}, top_level
    assert {ep.name for ep in dist.entry_points if ep.group == "console_scripts"} >= {
        "deaoff-train", "deaoff-evaluate", "deaoff-main"}
