"""Structural-schema validation and pruning of custom objects, as for a CRD.

Where it sits: the fake API server checks every custom object written against
its CRD's openAPIV3Schema: types, ``required``, ``enum``, ``int-or-string``,
``maxItems``/``maxLength``, and prunes fields the schema does not declare
unless ``x-kubernetes-preserve-unknown-fields`` is set, and a ``null`` where
the schema is not ``nullable`` (as the API server prunes it before
validating). The CEL rules are evaluated on the pruned object
(``tests.kube.apiserver.cel``). A mismatch is a 422 Invalid naming the
field, as a real server answers.
"""

from __future__ import annotations

from typing import Any

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


def check(value: Any, schema: dict[str, Any], path: str = "") -> tuple[Any, list[str]]:
    """``(pruned value, errors)``."""
    errors: list[str] = []
    if value is None:
        if schema.get("nullable"):
            return None, errors
        errors.append(f"{path or '<root>'}: Invalid value: null")
        return None, errors
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            errors.append(f"{path}: Invalid value: must be an integer or a string")
        return value, errors
    kind = schema.get("type")
    if kind in ("integer", "number"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if kind == "number":
            ok = ok or isinstance(value, float)
        if not ok:
            errors.append(f"{path}: Invalid value: must be of type {kind}")
        return value, errors
    if kind in _TYPES and not isinstance(value, _TYPES[kind]):
        errors.append(f"{path}: Invalid value: must be of type {kind}")
        return value, errors
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: Unsupported value: {value!r}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: Too long: may not be more than {schema['maxLength']} bytes")
    if isinstance(value, list) and "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
    if isinstance(value, list):
        items = schema.get("items")
        out = []
        for i, item in enumerate(value):
            pruned, errs = check(item, items, f"{path}[{i}]") if items else (item, [])
            out.append(pruned)
            errors.extend(errs)
        return out, errors
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        out = {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                out[key] = item  # ObjectMeta is the server's, whatever the schema says
            elif properties and key in properties:
                if item is None and not properties[key].get("nullable"):
                    continue  # a null where the schema is not nullable: pruned, as the API server does
                out[key], errs = check(item, properties[key], sub)
                errors.extend(errs)
            elif isinstance(additional, dict):
                out[key], errs = check(item, additional, sub)
                errors.extend(errs)
            elif preserve or (properties is None and additional is None and kind != "object"):
                out[key] = item
            # else: pruned, as the API server prunes unknown fields
        for name in schema.get("required") or []:
            if name not in value:
                errors.append(f"{path + '.' if path else ''}{name}: Required value")
        return out, errors
    return value, errors
