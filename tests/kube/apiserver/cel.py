"""CEL validation rules (``x-kubernetes-validations``) of a CRD schema, evaluated as the API server does.

Where it sits: the fake API server's admission of custom objects, after the
structural check and pruning (``schema.check``). Every rule of a schema node
is evaluated with ``self`` bound to the value at that node, only where the
value is present (a rule on an absent field does not run), by ``cel-python``
with the list function ``sum()`` of Kubernetes' CEL library added. A rule
that is false, or fails to evaluate, is an error naming the field, in the
form the real server writes: ``spec: Invalid value: "object": <message>``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import celpy
from celpy import celtypes

_KIND_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def _sum(values: celtypes.ListType) -> Any:
    """Kubernetes' ``<list>.sum()``: the sum of a list of numbers (0 for an empty list)."""
    total: Any = celtypes.IntType(0)
    for value in values:
        total = total + value
    return total


@cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule), functions={"sum": _sum})


def failed(rule: str, value: Any) -> str | None:
    """Why ``rule`` refuses ``value`` (None: it holds)."""
    try:
        result = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
    except Exception as exc:  # a compile or evaluation error refuses the object, as in the API server
        return f"rule evaluation error: {exc}"
    if isinstance(result, Exception):
        return f"rule evaluation error: {result}"
    return None if bool(result) else "false"


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Every rule of ``schema`` (and of its properties, items and map values) that ``value`` breaks."""
    errors: list[str] = []
    if value is None:
        return errors
    for rule in schema.get("x-kubernetes-validations") or []:
        if failed(rule["rule"], value) is not None:
            kind = _KIND_NAMES.get(type(value), "value")
            shown = f'"{kind}"' if isinstance(value, dict | list) else repr(value)
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            errors.append(f"{path or '<root>'}: Invalid value: {shown}: {message}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in properties:
                errors.extend(validate(item, properties[key], sub))
            elif isinstance(additional, dict):
                errors.extend(validate(item, additional, sub))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors.extend(validate(item, schema["items"], f"{path}[{i}]"))
    return errors
