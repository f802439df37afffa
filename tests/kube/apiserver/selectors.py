"""Label and field selectors, parsed and matched as the API server does.

Where it sits: list and watch requests of the fake API server filter objects
with these. Label selectors take ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
``k in (a,b)`` and ``k notin (a,b)``; field selectors take ``=``, ``==`` and
``!=`` on ``metadata.name``, ``metadata.namespace``, ``spec.nodeName``,
``spec.schedulerName`` and ``status.phase``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.kube.apiserver.errors import ApiError

Predicate = Callable[[dict[str, Any]], bool]

FIELDS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "spec.schedulerName": ("spec", "schedulerName"),
    "status.phase": ("status", "phase"),
}

_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_selector(selector: str) -> Predicate:
    tests: list[Predicate] = []
    for term in _split(selector or ""):
        if m := _SET.match(term):
            key, op, values = m[1], m[2], {v.strip() for v in m[3].split(",") if v.strip()}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            absent = term[1:].strip()
            tests.append(lambda labels, k=absent: k not in labels)
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", term):
            tests.append(lambda labels, k=term: k in labels)
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
    return lambda obj: all(t(obj.get("metadata", {}).get("labels") or {}) for t in tests)


def field_selector(selector: str) -> Predicate:
    tests: list[Predicate] = []
    for term in _split(selector or ""):
        negate = "!=" in term
        key, value = (s.strip() for s in term.replace("!=", "=").replace("==", "=").split("=", 1))
        if key not in FIELDS:
            raise ApiError(400, "BadRequest", f'field label not supported: "{key}"')
        section, name = FIELDS[key]

        def test(obj: dict[str, Any], s=section, n=name, v=value, neg=negate) -> bool:
            actual = (obj.get(s) or {}).get(n) or ""
            return (actual != v) if neg else (actual == v)

        tests.append(test)
    return lambda obj: all(t(obj) for t in tests)
