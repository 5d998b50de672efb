"""The package's tree is its data flow: stages in folders, imports only downward, no circles.

Every ``import`` in every module counts, at any depth: in functions, under
``TYPE_CHECKING``, in ``try`` blocks. ``docs/architecture.md`` states the
same rules in prose; this test is what keeps them true.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentmeter

PACKAGE = Path(agentmeter.__file__).parent
ROOT = PACKAGE.parent

# What sits directly in agentmeter/: public entry points, and the base layer.
TOP_LEVEL = {
    "__init__",  # the public API
    "_version",
    "errors",  # base
    "models",  # base
    "config",  # base
    "pricing",  # base: money
    "webhooks",  # base: verifying the webhooks a receiver gets
    "client",  # entry point
    "async_client",  # entry point (the async extra)
    "tracker",  # entry point
    "decorators",  # entry point
    "testing",  # entry point
    "exceptions",  # the 0.2 path of errors
    "langchain_integration",  # the 0.2 path of integrations.langchain
}
MAX_LINES = 400

# A module's stage: its folder, or its own name at the top level.
BASE = {"errors", "models", "config", "pricing", "_version", "exceptions", "core", "webhooks"}
# The stages each stage may import (besides itself). Base modules import only base.
MAY_IMPORT = {
    "base": set(),
    "ledger": {"base"},
    "transport": {"base", "ledger"},
    "endpoints": {"base", "transport"},
    "delivery": {"base", "transport"},
    "tracker": {"base", "transport", "delivery"},
    "client": {"base", "transport", "endpoints", "delivery", "tracker", "capture.budget"},
    # An async face on a sync client it holds (the tracker, budget, price book are its).
    "async_client": {
        "base",
        "transport",
        "endpoints",
        "delivery",
        "tracker",
        "client",
        "capture.budget",
    },
    "capture": {"base", "delivery", "tracker", "client"},
    "decorators": {"base", "capture", "tracker", "client"},
    "integrations": {"base", "capture", "delivery", "tracker", "client"},
    "langchain_integration": {"integrations"},
    "server": {"base", "ledger"},
    "testing": {"base", "ledger", "transport", "client", "server"},
    "cli": {
        "base",
        "ledger",
        "transport",
        "endpoints",
        "delivery",
        "tracker",
        "client",
        "server",
    },
    # integrations: only wrap(), which imports no provider SDK (nor LangChain).
    "agentmeter": {
        "base",
        "capture",
        "delivery",
        "tracker",
        "client",
        "async_client",  # for type checkers only: it loads on first use
        "decorators",
        "integrations",
    },
}
# Budget guards live with capture (decorators enforce them), and the client
# holds one for check_budget(): the one place the client reaches up.
NARROW = {"capture.budget"}


def module_files() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = module_files()


def imports_of(name: str, path: Path) -> Iterator[str]:
    """Every agentmeter module ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, package)
            if not target.startswith("agentmeter"):
                continue
            names = [f"{target}.{alias.name}" for alias in node.names]
            submodules = [name for name in names if name in MODULES]
            yield from submodules
            if len(submodules) < len(node.names) and target in MODULES:
                yield target  # names defined in the module (or package) itself


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


GRAPH = {name: sorted(set(imports_of(name, path)) - {name}) for name, path in MODULES.items()}


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "agentmeter"
    if parts[1] in BASE:
        return "base"
    if module.removeprefix("agentmeter.") in NARROW:
        return module.removeprefix("agentmeter.")
    return parts[1]


def test_the_top_level_holds_only_entry_points_and_the_base_layer():
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == {
        "core",
        "capture",
        "delivery",
        "endpoints",
        "transport",
        "ledger",
        "server",
        "cli",
        "integrations",
    }


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"


def test_no_import_circle_among_the_modules():
    """Regression: client -> tracker -> _delivery -> client (with budget and outbox
    in it too), through imports for type checking."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in GRAPH[module]:
            if state.get(target) == "open":
                circle = [*path[path.index(target) :], target]
                pytest.fail("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in GRAPH:
        if module not in state:
            visit(module)


def test_every_import_goes_to_a_stage_below():
    wrong = []
    for module, targets in GRAPH.items():
        mine = stage(module)
        allowed = MAY_IMPORT.get(mine, MAY_IMPORT.get(mine.split(".")[0], set()))
        for target in targets:
            theirs = stage(target)
            if theirs.split(".")[0] == mine.split(".")[0] or theirs in allowed:
                continue
            wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert wrong == []


def test_the_webhook_verifier_imports_only_errors_core_and_models():
    """A receiver imports agentmeter.webhooks alone: it must not load the client
    (nor does ``import agentmeter`` load it)."""
    allowed = ("agentmeter.errors", "agentmeter.models", "agentmeter.core")
    wrong = [t for t in GRAPH["agentmeter.webhooks"] if not t.startswith(allowed)]
    assert wrong == []
    assert "agentmeter.webhooks" not in GRAPH["agentmeter"]


def test_stage_packages_import_nothing_at_their_door():
    """Importing one part of a stage must not load the rest (nor cause a circle)."""
    for folder in ("core", "capture", "delivery", "endpoints"):
        assert GRAPH[f"agentmeter.{folder}"] == [], folder


@pytest.mark.parametrize(
    "module",
    [
        "agentmeter.client",
        "agentmeter.tracker",
        "agentmeter.decorators",
        "agentmeter.models",
        "agentmeter.config",
        "agentmeter.errors",
        "agentmeter.integrations.langchain",
        "agentmeter.testing",
        "agentmeter.exceptions",
        "agentmeter.langchain_integration",
        "agentmeter.webhooks",
    ],
)
def test_the_import_paths_users_write_still_work(module):
    importlib.import_module(module)


def test_every_public_name_resolves():
    for name in agentmeter.__all__:
        assert getattr(agentmeter, name) is not None, name


def test_the_0_2_paths_are_the_same_objects():
    import agentmeter.errors as errors
    import agentmeter.exceptions as exceptions
    import agentmeter.integrations.langchain as langchain
    import agentmeter.langchain_integration as langchain_integration

    assert exceptions.__all__
    for name in exceptions.__all__:
        assert getattr(exceptions, name) is getattr(errors, name)
    callback = langchain.LangChainAgentMeterCallback
    assert langchain_integration.LangChainAgentMeterCallback is callback
    assert agentmeter.AgentMeterAPIError is exceptions.AgentMeterAPIError


def test_the_architecture_doc_names_every_folder_and_top_level_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    folders = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    missing = [f"agentmeter/{f}/" for f in folders if f"agentmeter/{f}/" not in text]
    missing += [f"{m}.py" for m in TOP_LEVEL - {"__init__", "_version"} if f"{m}.py" not in text]
    assert missing == []


def test_only_the_catalog_imports_the_price_library():
    """The price data sits behind agentmeter/core/catalog.py, so a project's
    own table can sit in front of it and the library can be swapped."""
    importers = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(module.split(".")[0] == "genai_prices" for module in modules):
                importers.append(name)
    assert sorted(set(importers)) == ["agentmeter.core.catalog"]
