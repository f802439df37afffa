"""The dependency rule: schemas <- projections <- handlers <- eventbatch.

schemas imports nothing of ours; projections and handlers import no adapter,
no runtime, no I/O library. A violation here means a pure fold or decision
could start depending on the outside world.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"schemas", "projections", "handlers", "eventbatch"}
IO = {"aiokafka", "aiosqlite", "kubernetes_asyncio", "asyncio", "socket", "sqlite3", "aiohttp", "uvloop"}
THIRD_PARTY_OK = {"msgspec", "yaml", "numpy"}

RULES = {
    "schemas": {"ours": set(), "third_party": {"msgspec", "yaml"}},
    "projections": {"ours": {"schemas", "projections"}, "third_party": THIRD_PARTY_OK},
    "handlers": {"ours": {"schemas", "projections", "handlers"}, "third_party": THIRD_PARTY_OK},
}


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def violations(package: str, source: str) -> list[str]:
    rule = RULES[package]
    bad = []
    for root in sorted(imported_roots(source)):
        if root in OURS:
            if root != package and root not in rule["ours"]:
                bad.append(root)
        elif root in IO:
            bad.append(root)
        elif root not in sys.stdlib_module_names and root not in rule["third_party"]:
            bad.append(root)
    return bad


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_respects_the_dependency_rule(package: str) -> None:
    files = modules(package)
    assert files, f"{package}/ has no modules"
    found = {
        str(path.relative_to(ROOT)): bad
        for path in files
        if (bad := violations(package, path.read_text()))
    }
    assert found == {}


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("schemas", "from eventbatch.log import codec", ["eventbatch"]),
        ("schemas", "import handlers.base", ["handlers"]),
        ("handlers", "import aiosqlite", ["aiosqlite"]),
        ("handlers", "from kubernetes_asyncio import client", ["kubernetes_asyncio"]),
        ("projections", "import asyncio", ["asyncio"]),
        ("projections", "from handlers.scheduler import x", ["handlers"]),
        ("handlers", "import requests", ["requests"]),
        ("handlers", "from projections.cluster import ClusterState\nimport heapq", []),
    ],
    ids=["schemas->runtime", "schemas->handlers", "handler->sqlite", "handler->kube",
         "projection->asyncio", "projection->handlers", "handler->3rd-party", "allowed"],
)
def test_checker_catches_planted_violations(package: str, source: str, expected: list[str]) -> None:
    assert violations(package, source) == expected
