"""The package's structure: no import cycle, Keras internals in one place, one model walker.

The checks read the source (with `ast`), so they see every import, at module
level and inside functions, whether or not a test runs that code.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "keras_seqcells"

# The one module allowed to import Keras's private `keras.src`.
KERAS_INTERNALS = "keras_seqcells._keras_internals"

# The modules allowed to iterate a model's `.layers`: the stepping core, which
# every other module goes through to find layers.
LAYER_WALKERS = {
    "keras_seqcells.stepping",
    # Exceptions: the converters translate every layer of a model or stack in
    # turn (an ONNX graph, a PyTorch module, a LiteRT graph), which the stepping core does not
    # offer; they find no layer by kind.
    "keras_seqcells.onnx_export",
    "keras_seqcells.convert_torch",
    "keras_seqcells.litert",
    # The text front end of the ONNX and LiteRT exports, moved out of litert:
    # the layers that read a model's string input, its output layer's labels.
    "keras_seqcells.text_export",
}

# Builtins that iterate their argument.
_ITERATING_CALLS = {"list", "tuple", "set", "enumerate", "reversed", "sorted", "zip", "any"}
_ITERATING_CALLS |= {"all", "filter", "map", "sum", "next", "iter", "dict", "frozenset"}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _trees():
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


TREES = _trees()


def _is_package(name):
    return MODULES[name].name == "__init__.py"


def _imported_names(module, tree):
    """Every module name an import of `module` names, at any level of the code."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if _is_package(module) else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                yield f"{base}.{alias.name}"


def _package_imports(module, tree):
    """The keras_seqcells modules `module` imports (a name, else the module it comes from)."""
    found = set()
    for name in _imported_names(module, tree):
        # `from package import submodule` imports the submodule; `from module
        # import name` the module. The parent packages that Python initialises
        # on the way are not edges: a package's `__init__` importing its
        # submodules is not a cycle with them.
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def _import_graph():
    return {module: _package_imports(module, tree) for module, tree in TREES.items()}


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_checks_find_the_package_and_its_imports():
    graph = _import_graph()
    assert {"keras_seqcells", "keras_seqcells.stepping", "keras_seqcells.cli"} <= set(graph)
    # A module-level import, a function-level import and `from package import module`.
    assert "keras_seqcells.layers.loops" in graph["keras_seqcells.stepping"]
    assert "keras_seqcells.diagnostics.gates" in graph["keras_seqcells.cli"]
    assert "keras_seqcells.serving.signatures" in graph["keras_seqcells.serving.saved_model"]


def test_cycle_detection_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_another_in_a_circle():
    assert _cycles(_import_graph()) == []


def test_keras_private_modules_are_imported_in_one_module_only():
    importers = set()
    for module, tree in TREES.items():
        for name in _imported_names(module, tree):
            if name == "keras.src" or name.startswith("keras.src."):
                importers.add(module)
    assert importers <= {KERAS_INTERNALS}
    assert KERAS_INTERNALS in importers


def _iterated_layers(tree):
    """Line numbers where the code iterates something's `.layers`."""
    lines = []

    def is_layers(node):
        return isinstance(node, ast.Attribute) and node.attr == "layers"

    def iterated(node):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            return [node.iter]
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in _ITERATING_CALLS:
            return node.args
        if isinstance(node, ast.Starred):
            return [node.value]
        return []

    for node in ast.walk(tree):
        lines += [value.lineno for value in iterated(node) if is_layers(value)]
    return sorted(lines)


def test_layer_walk_detection_sees_loops_comprehensions_and_calls():
    source = (
        "for layer in model.layers: pass\n"
        "names = [layer.name for layer in model.layers]\n"
        "pairs = enumerate(inner.layers)\n"
        "count = len(model.layers)\n"
    )
    assert _iterated_layers(ast.parse(source)) == [1, 2, 3]


def test_only_the_stepping_core_walks_a_models_layers():
    walkers = {module: _iterated_layers(tree) for module, tree in TREES.items()}
    outside = {
        module: lines for module, lines in walkers.items() if lines and module not in LAYER_WALKERS
    }
    assert outside == {}
    assert walkers["keras_seqcells.stepping"]
