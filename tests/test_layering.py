"""The layers README's "Repository layout" states hold: every module imports only its own layer's and lower layers'
modules. In one fresh interpreter the layers are imported from the lowest up, each while every higher layer's
modules are blocked (one interpreter serves them all: a module imported with the higher layers blocked stays
imported as it was); and every import statement, those inside functions too, is checked against the layers."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

LAYERS = (  # low to high: (name, the packages or modules that make it up; a longer prefix decides)
    ("modeling", ("gemo_clap.modeling",)),
    ("processing", ("gemo_clap.processing",)),
    ("train", ("gemo_clap.train",)),
    ("evaluation", ("gemo_clap.train.evaluation",)),
    ("training runs and publishing", ("gemo_clap.train.loop", "gemo_clap.train.selection", "gemo_clap.train.hub")),
    ("application", ("gemo_clap",)),
)
APPLICATION = len(LAYERS) - 1
COMMAND = re.compile(r"\.cli(_\w+)?$")  # each folder's command module (`cli`, `cli_train`, ...) is application
# inside the application layer: what the front ends share sits below them, and no front end imports another
BENEATH_FRONT_ENDS = (
    "gemo_clap.loading",
    "gemo_clap.stream_input",
    "gemo_clap.timeline",
    "gemo_clap.onnx.runtime",
    "gemo_clap.onnx.features",
)
FRONT_ENDS = (
    ("gemo_clap.predict",),
    ("gemo_clap.app",),
    ("gemo_clap.demo",),
    ("gemo_clap.onnx.cli", "gemo_clap.onnx.export", "gemo_clap.onnx.quantize"),
)

IMPORT_LAYER_BY_LAYER = """
import importlib, importlib.abc, json, sys

layers = json.loads(sys.argv[1])  # [(name, its modules)], lowest first
blocked = {module for _, modules in layers for module in modules}


class HigherLayers(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in blocked:
            raise ImportError(f"{name} is in a higher layer")


sys.meta_path.insert(0, HigherLayers())
failures = {}
for name, modules in layers:
    blocked -= set(modules)
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            failures[module] = f"{name} layer: {error}"
print(json.dumps(failures))
"""


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(name: str) -> int:
    if COMMAND.search(name):
        return APPLICATION
    return max((len(p), index) for index, (_, group) in enumerate(LAYERS) for p in group if within(name, p))[1]


def package_files() -> dict[str, Path]:
    """Every module of the installed package (the repository folders it is made of) -> its file."""
    modules = {}
    for package in ("gemo_clap", "gemo_clap.modeling", "gemo_clap.processing", "gemo_clap.train"):
        folder = Path(importlib.util.find_spec(package).submodule_search_locations[0])
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join([package, *parts[:-1]] + ([] if parts[-1] == "__init__" else [parts[-1]]))
            modules.setdefault(name, path)
    modules.pop("gemo_clap")  # the root holds only `__version__`: every layer is inside it
    return modules


def test_the_layers_are_those_readme_states():
    table = Path(__file__).resolve().parents[1] / "README.md"
    section = table.read_text().split("## Repository layout", 1)[1].split("\n## ", 1)[0]
    for name, group in LAYERS:
        assert all(f"`{prefix}`" in section for prefix in group), f"README's layout does not state the {name} layer"
    examples = {
        "gemo_clap.modeling.pipeline_gemo_clap": 0,
        "gemo_clap.processing.atomic": 1,
        "gemo_clap.train.towers": 2,
        "gemo_clap.train.evaluation.probe": 3,
        "gemo_clap.train.loop": 4,
        "gemo_clap.train.hub.publish": 4,
        "gemo_clap.train.cli_train": APPLICATION,
        "gemo_clap.processing.cli": APPLICATION,
        "gemo_clap.timeline.result": APPLICATION,
    }
    assert {name: layer_of(name) for name in examples} == examples


def test_each_layer_imports_with_the_higher_layers_blocked():
    modules = package_files()
    layers = [
        (name, [module for module in modules if layer_of(module) == index]) for index, (name, _) in enumerate(LAYERS)
    ]
    assert all(own for _, own in layers)
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_LAYER_BY_LAYER, json.dumps(layers)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == {}


def imported_names(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, module) of every gemo_clap module `path` imports, at any depth (function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return [(line, module) for line, module in found if within(module, "gemo_clap")]


def test_no_module_imports_a_higher_layer_even_inside_a_function():
    modules = package_files()
    crossings = []
    for name, path in modules.items():
        for line, imported in imported_names(name, path):
            target = max((module for module in modules if within(imported, module)), key=len, default=None)
            if target is not None and layer_of(target) > layer_of(name):
                crossings.append(f"{path.name}:{line} {name} -> {target}")
            ends = [index for index, group in enumerate(FRONT_ENDS) if any(within(imported, m) for m in group)]
            own = [index for index, group in enumerate(FRONT_ENDS) if any(within(name, m) for m in group)]
            if ends and (ends != own or any(within(name, shared) for shared in BENEATH_FRONT_ENDS)):
                crossings.append(f"{path.name}:{line} {name} -> {imported}")
    assert crossings == []
