"""Layering rules of the engine and the repository, checked on the source."""

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OFFLINE = {"corpus", "train", "evaluate"}        # training and evaluation code
ENTRY_POINTS = {"cli", "__main__"}                # commands may run the offline code


def _imports(path: Path) -> set[str]:
    """The lipsync modules a file imports (relative or absolute), by their last name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level or mod.startswith("lipsync"):
                parts = mod.split(".") if mod else []
                names.update(p for p in parts if p != "lipsync")
                names.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("lipsync."):
                    names.update(a.name.split(".")[1:])
    return names


def test_runtime_code_never_imports_training_or_evaluation():
    offenders = []
    for path in (REPO / "lipsync").rglob("*.py"):
        if path.stem in OFFLINE or path.stem in ENTRY_POINTS:
            continue
        bad = _imports(path) & OFFLINE
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not offenders


def test_lipsync_never_imports_django():
    for path in (REPO / "lipsync").rglob("*.py"):
        assert "django" not in path.read_text(), path


def test_no_module_shadows_the_standard_library():
    """bench/queue.py once shadowed `queue` for everything run from bench/ (torch failed to
    import and the engine fell back silently).  What can shadow: the top-level packages and
    modules, and every module in a folder that lands on sys.path (scripts' folders and the
    test folders, which pytest puts first).  Modules inside a package (jobs/selectors.py) are
    imported by their full name and cannot."""
    stdlib = set(sys.stdlib_module_names)
    skip = {".venv", "var", "node_modules", ".git", "artifacts"}
    on_path = [REPO, REPO / "bench", REPO / "docker", *[p for p in (REPO / "tests").rglob("*") if p.is_dir()],
               REPO / "tests"]
    shadows = []
    for folder in on_path:
        if skip & set(folder.relative_to(REPO).parts):
            continue
        for path in folder.iterdir():
            name = path.stem if path.suffix == ".py" else path.name if (path / "__init__.py").exists() else None
            if name in stdlib:
                shadows.append(str(path.relative_to(REPO)))
    assert not shadows
