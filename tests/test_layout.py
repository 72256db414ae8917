"""The package's layout holds: imports run one way, from the data's first stage to the
commands, with no cycle (imports inside functions count too), and no module is long.
docs/ARCHITECTURE.md draws the same picture."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "alexnet_tf"

# Small modules every stage may use; they import no stage.
BASE = {"errors", "atomic", "quiet", "config", "progress", "version", "commands"}
# What each stage may import besides itself and BASE. A stage further down the data's way
# may use the ones before it, never the reverse.
MAY_IMPORT = {
    "base": set(),
    "data": set(),
    "model": set(),
    "distribute": set(),
    "evaluation": {"data", "model", "distribute"},
    "training": {"data", "model", "distribute", "evaluation"},
    "cli": {"data", "model", "distribute", "evaluation"},
    "pretrained": {"model"},
}
# The commands and tools on top may import anything (but nothing imports them).
TOP = {
    "__init__",
    "bench",
    "experiments",
    "predict",
    "prepare",
    "data_stats",
    "reproduce",
    "data_service",
    "import_weights",
    "train",
    "evaluate",
    "export",
    "app",
}
MAX_LINES = 400


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path, known):
    """The project modules `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports pkg.mod when that is a module, else pkg.
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n == "alexnet_tf" or n.startswith("alexnet_tf."))
    return found


def stage(name):
    parts = name.split(".")
    if len(parts) == 1:
        return "__init__"
    if parts[1] in BASE:
        return "base"
    return parts[1]


def graph():
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def test_every_stage_imports_only_the_stages_before_it():
    wrong = []
    for name, targets in graph().items():
        here = stage(name)
        if here in TOP:
            continue
        for target in targets:
            there = stage(target)
            if there not in (here, "base") and there not in MAY_IMPORT[here]:
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports against the stages' order:\n" + "\n".join(sorted(wrong))


def test_no_module_is_imported_by_the_stages_from_the_top():
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if stage(name) not in TOP
        for target in targets
        if stage(target) in TOP
    ]
    assert not wrong, "\n".join(sorted(wrong))


def find_cycle(edges):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_not_even_inside_functions():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_is_over_400_lines():
    # One test for the whole package, naming every module over the limit with its length.
    long = [
        f"{module_name(path)}: {count} lines"
        for path in sorted(PACKAGE.rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)
