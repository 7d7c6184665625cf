"""The package's layers, read from its import statements.

Each layer imports only the layers below it (docs/design.md, section 3):

    cli -> estimators -> distributed -> engine -> contract -> errors
    datasets (the data layer) -> errors

and no module imports, through any chain, itself. Imports inside functions
count: a late import hides a cycle from the interpreter, not from the design.
The package's facade (`fastnn/__init__.py`, `__main__.py`, `_moved.py`) may
import anything.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "fastnn"

# layer -> the layers its modules may import
ALLOWED = {
    "errors": set(),
    "datasets": {"errors"},
    "contract": {"errors"},
    "engine": {"contract", "errors"},
    "distributed": {"engine", "contract", "errors"},
    "estimators": {"distributed", "engine", "contract", "datasets", "errors"},
    "cli": {"estimators", "distributed", "engine", "contract", "datasets", "errors"},
}
FACADE = {"fastnn", "fastnn.__main__", "fastnn._moved"}
TOP_LEVEL = {
    "fastnn.errors": "errors",
    "fastnn.distributed": "distributed",
    "fastnn.kernels": "contract",
    "fastnn.reference": "contract",
    "fastnn.backend": "contract",
}


def layer_of(module):
    if module in FACADE:
        return "facade"
    if module in TOP_LEVEL:
        return TOP_LEVEL[module]
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(
        f"{module} belongs to no layer: add it to tests/test_layers.py and docs/design.md"
    )


def module_name(path, root):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path, name, modules):
    """The fastnn modules that the file at `path` (module `name`) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from fastnn.engine import shuffling` imports the module fastnn.engine.shuffling
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # fastnn.x.y.attr -> fastnn.x.y
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root=PACKAGE):
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: imports_of(path, name, files) for name, path in files.items()}


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def upward_imports(graph):
    bad = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        if layer == "facade":
            continue
        for target in sorted(targets):
            if layer_of(target) not in ALLOWED[layer] | {layer}:
                bad.append(f"{module} ({layer}) imports {target} ({layer_of(target)})")
    return bad


def test_no_module_imports_itself_through_a_chain():
    assert find_cycle(import_graph()) is None


def test_each_layer_imports_only_the_layers_below_it():
    assert upward_imports(import_graph()) == []


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def planted(tmp_path, extra):
    """A copy of the package with `extra` appended to some of its files."""
    import shutil

    root = tmp_path / "fastnn"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, line in extra.items():
        with open(root / relative, "a") as f:
            f.write("\n" + line + "\n")
    return import_graph(root)


def test_a_planted_cycle_is_found(tmp_path):
    # the kind of cycle this test exists for: a late import back up the chain
    graph = planted(
        tmp_path,
        {
            "estimators/validation.py": "def f():\n    from fastnn.estimators import base",
        },
    )
    cycle = find_cycle(graph)
    assert cycle and "fastnn.estimators.base" in cycle and cycle[0] == cycle[-1]


@pytest.mark.parametrize(
    "relative,line",
    [
        ("engine/params.py", "from fastnn.estimators.mlp import MLPClassifier"),
        ("contract/checks.py", "from fastnn.engine import shuffling"),
        ("datasets/__init__.py", "from ..contract import tables"),
        ("distributed.py", "import fastnn.cli.app"),
    ],
)
def test_a_planted_upward_import_is_found(tmp_path, relative, line):
    bad = upward_imports(planted(tmp_path, {relative: line}))
    assert len(bad) == 1, bad
