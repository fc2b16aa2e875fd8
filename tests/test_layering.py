"""The house's layering, enforced by import-linter's contracts in pyproject.toml ([tool.importlinter])."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the project's contracts on the package under ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def lint_with_import(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """``lint`` on a copy of the package in ``tmp_path`` whose ``module`` (a path under embodia/) ends with ``line``."""
    shutil.copytree(
        ROOT / "src" / "embodia", tmp_path / "embodia", ignore=shutil.ignore_patterns("*.pt", "__pycache__")
    )
    path = tmp_path / "embodia" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    return lint(tmp_path)


def test_every_layering_contract_is_kept():
    proc = lint(ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "5 kept, 0 broken" in proc.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """A copy of the package whose env module imports an agent module: the check fails and names the import."""
    proc = lint_with_import(tmp_path, "envs/actions.py", "import embodia.agents.planner  # deliberately upward")
    assert proc.returncode != 0
    assert "envs and memory import nothing above them BROKEN" in proc.stdout
    assert "top-level layers, each importing only those below it BROKEN" in proc.stdout
    assert "embodia.envs.actions -> embodia.agents.planner" in proc.stdout


def test_an_import_cycle_breaks_the_contract(tmp_path):
    """A copy of the package whose policy registry imports the policy base (which imports the registry): a cycle."""
    proc = lint_with_import(tmp_path, "policies/registry.py", "import embodia.policies.base  # deliberately circular")
    assert proc.returncode != 0
    assert "no import cycles between the modules of any package BROKEN" in proc.stdout
    assert "No cycles are allowed in embodia.policies." in proc.stdout
