"""The stage contracts, read from the source: every import (module level or inside a
function) of every module, as `ast` sees it.

- features never import backtest or training (labels look into the future by design;
  features must never);
- backtest never imports training; training never imports ingest;
- the store (stockml/store) imports no stage;
- no import circle inside training/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "features", "backtest", "training")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, as dotted names (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = (package or module_name(path)).split(".")
                base = ".".join(parent[: len(parent) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return out


def modules(package: str) -> dict[str, set[str]]:
    folder = ROOT / package.replace(".", "/")
    return {module_name(p): imports_of(p) for p in sorted(folder.rglob("*.py"))}


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("features", {"backtest", "training"}),
        ("backtest", {"training"}),
        ("training", {"ingest"}),
        ("stockml.store", set(STAGES)),
    ],
)
def test_a_stage_never_imports_what_it_must_not(package, forbidden):
    """Each package's modules import none of the packages its contract forbids."""
    found = {
        (module, name)
        for module, names in modules(package).items()
        for name in names
        if top(name) in forbidden
    }
    assert not found, f"{package} imports {sorted(found)}"


def test_training_has_no_import_circle():
    """The graph of imports between training's modules is acyclic (a depth-first search
    finds no back edge); the cycle is named when there is one."""
    graph = {
        module: {n for n in names if n in modules_in} - {module}
        for modules_in in [set(modules("training"))]
        for module, names in modules("training").items()
    }
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_checker_sees_a_circle_and_a_forbidden_import(tmp_path, monkeypatch):
    """The checks can fail: two modules importing each other inside functions, and a
    features module importing training, are both found."""
    package = tmp_path / "training"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from training import b\n")
    (package / "b.py").write_text("def g():\n    import training.a\n")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "x.py").write_text("from training.a import f\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    with pytest.raises(AssertionError, match=r"import circle: training\.a -> training\.b"):
        test_training_has_no_import_circle()
    with pytest.raises(AssertionError, match="features imports"):
        test_a_stage_never_imports_what_it_must_not("features", {"training"})


def test_no_module_is_a_hall():
    """Every module of the training wing stays under about 400 lines."""
    long = {
        module_name(p): n
        for p in sorted((ROOT / "training").glob("*.py"))
        if (n := len(p.read_text().splitlines())) > 420
    }
    assert not long, long


def test_the_run_id_digests_every_module_a_fit_depends_on():
    """training.config.FIT_PATH (the sources the run id digests) is closed under
    training's imports: a fit-path module that came to depend on another training module
    without digesting it would let a rerun reuse fits the new code would not make."""
    from training.config import FIT_PATH

    # The config holds the rules' settings as data, digested with it; the rules' code
    # chooses a rule from the fits' predictions, after them.
    exempt = {("training.config", "training.rules")}
    graph = modules("training")
    digested = {f"training.{name.removesuffix('.py')}" for name in FIT_PATH}
    missing = {
        (module, name)
        for module in digested
        for name in graph[module]
        if name in graph and name not in digested and name != "training"
    } - exempt
    assert not missing, f"fit-path modules import undigested ones: {sorted(missing)}"
