"""DESIGN.md: imports point down only, `launch -> distributed -> agents, envs`; `agents` and
`envs` never import `distributed` or `launch`, and `agents` never imports `envs`. Read from the
source (every import statement, also those inside functions), not from what a run imported."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"agents": {"distributed", "launch", "envs"}, "envs": {"distributed", "launch"},
             "distributed": {"launch"}}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module's import statements name (relative imports: its own)."""
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    wrong = {str(f.relative_to(ROOT)): sorted(imported_packages(f) & FORBIDDEN[package])
             for f in files}
    assert {f: w for f, w in wrong.items() if w} == {}


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import numpy\n\ndef f():\n    from launch.config import load_config\n")
    assert imported_packages(module) == {"numpy", "launch"}
