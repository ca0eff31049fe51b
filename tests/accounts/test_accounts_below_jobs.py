"""accounts sits below jobs: no module of accounts imports jobs (the dependency runs one way,
jobs -> accounts). Migrations are left out: their model references are strings."""
from __future__ import annotations

import ast
from pathlib import Path

ACCOUNTS = Path(__file__).resolve().parents[2] / "accounts"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_accounts_module_imports_jobs():
    offenders = [f"{path.relative_to(ACCOUNTS.parent)}: {name}"
                 for path in sorted(ACCOUNTS.rglob("*.py")) if "migrations" not in path.parts
                 for name in _imports(path) if name == "jobs" or name.startswith("jobs.")]
    assert not offenders, offenders


def test_the_walk_sees_lazy_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from jobs.models import Job\n    import jobs.selectors\n")
    assert _imports(sample) == ["jobs.models", "jobs.selectors"]
