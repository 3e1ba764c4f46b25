"""Every module imports on its own, and no module-level import forms a cycle."""

import ast
import os
import pathlib
import subprocess
import sys

import mat_keras

PACKAGE = pathlib.Path(mat_keras.__file__).resolve().parent
# `mat_keras.zoo` and `mat_keras.export` live at the top of the repository.
ROOTS = {
    "mat_keras": PACKAGE,
    "mat_keras.zoo": PACKAGE.parent / "zoo",
    "mat_keras.export": PACKAGE.parent / "export",
}


def _modules():
    """Maps every module name of the library to its file."""
    files = {}
    for prefix, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            if prefix == "mat_keras" and relative.parts[0] in ("zoo", "export"):
                continue  # the links to the two folders above
            if "data" in relative.parts:
                continue  # scripts, not modules
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            files[".".join((prefix, *parts))] = path
    return files


MODULES = _modules()


def _top_level_imports(path):
    """Yields the modules a file imports when it loads (not inside functions or classes)."""
    pending = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                yield name if name in MODULES else node.module
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            pending.extend(ast.iter_child_nodes(node))


def _cycle(graph):
    """Returns one import cycle of `graph` as a list of modules, or None."""
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_module_level_import_cycle():
    graph = {
        module: sorted({name for name in _top_level_imports(path) if name in MODULES} - {module})
        for module, path in MODULES.items()
    }
    assert "mat_keras.devices.model" in graph and "mat_keras.noise.registry" in graph
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


# The modules of the noise and devices packages and their users. Each is
# imported with no module of the library loaded: one interpreter (TensorFlow
# and Keras load once, which is what costs), the library's modules forgotten
# before each import.
FRESH = sorted(
    m for m in MODULES
    if m.startswith(("mat_keras.noise", "mat_keras.devices"))
    or m in ("mat_keras.deployment", "mat_keras.export.apply", "mat_keras.export.mapping", "mat_keras.export.tables")
)

_IMPORT_EACH = """
import importlib, sys, traceback
failed = []
for module in sys.argv[1:]:
    for name in [n for n in sys.modules if n == "mat_keras" or n.startswith("mat_keras.")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except Exception:
        failed.append(module + ": " + traceback.format_exc(limit=-3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_alone():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *FRESH], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_a_device_module_imports_first_in_a_fresh_interpreter():
    # A device module asked for first, and the noise registry then resolving a preset.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")]))
    code = "import mat_keras.devices.presets as p, mat_keras.noise as n; assert n.get('pcm') == p.PCM()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
