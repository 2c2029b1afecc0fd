"""The package's folders are its layers, and imports point one way (docs/architecture.md):
faces -> api -> analysis -> archive -> sweep -> simulate -> solve -> game.

Every ``import`` and ``from ... import`` in ``deterrence/`` is read with :mod:`ast` (also
those inside functions), so a lazy import cannot hide an upward dependency."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "deterrence"
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
#: Lowest first: a module may import only from its own layer or the ones before it.
LAYERS = ("game", "solve", "simulate", "sweep", "archive", "analysis", "api", "cli")


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "deterrence":
        return None
    if len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return "package"
    return parts[1]


def imports(path: Path) -> list[str]:
    """Absolute names of the ``deterrence`` modules that ``path`` imports."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(relative.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # "from . import rules" imports the module deterrence.simulate.rules
            folder = PACKAGE.parent / module.replace(".", "/")
            submodules = [f"{module}.{alias.name}" for alias in node.names
                          if (folder / f"{alias.name}.py").exists()
                          or (folder / alias.name / "__init__.py").exists()]
            out += submodules if len(submodules) == len(node.names) else [module]
    return [m for m in out if m.split(".")[0] == "deterrence"]


def test_the_layers_exist():
    for layer in LAYERS[:-2]:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer


def test_imports_point_down_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        if own == "package":
            continue
        for module in imports(path):
            other = layer_of(module)
            if other == "package":
                upward.append(f"{path.name} imports the package root {module}")
            elif LAYERS.index(other) > LAYERS.index(own):
                upward.append(f"{path.relative_to(PACKAGE)} ({own}) imports {module} ({other})")
    assert upward == []


def test_no_module_imports_a_face():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        assert not [m for m in imports(path) if m == "deterrence.cli"], path
        assert "dashboard" not in {m.split(".")[-1] for m in imports(path)}, path


def test_the_dashboard_uses_only_the_public_api():
    for path in DASHBOARD.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deterrence"):
                # the package's API, or the dashboard's own modules
                assert node.module in ("deterrence", "deterrence.api") or (
                    node.module.startswith("deterrence.dashboard")), (path, node.module)
                if node.module == "deterrence":
                    assert {a.name for a in node.names} <= {"api"}, (path, node.names)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name in ("deterrence", "deterrence.api") \
                        or alias.name.startswith("deterrence.dashboard") \
                        or not alias.name.startswith("deterrence"), (path, alias.name)
