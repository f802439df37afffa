"""Typed decoding of one manifest mapping, and the way back to a manifest.

Where it sits: between the YAML/JSON text the loaders read
(``schemas.loaders``) and ``msgspec.convert`` into the resource types
(``schemas.resources``). Walking the raw mapping against the types first lets
every problem be reported with the field path the user wrote
(``spec.tasks[1].replicas``) and decides, per part of the tree, what happens
to a field the types do not know:

* in a ``Container`` or ``PodSpec`` it is kept verbatim in ``extra``, so a pod
  template round-trips to the exact Kubernetes JSON the user wrote
  (``to_manifest`` merges it back);
* in ``metadata`` and ``status`` it is ignored, as Kubernetes' lenient
  decoding does (servers add ``managedFields`` and the like);
* anywhere else it is an error naming the field: ``minAvaliable`` in a job
  spec or ``resources.request`` in a container is a typo that would otherwise
  vanish without a trace (``kubectl --validate=strict`` refuses both too).

Quantities written as YAML numbers (``cpu: 2``, ``memory: 1e9``) are turned
into the strings Kubernetes would read them as. Typed integer fields hold
what Kubernetes' do: int32 where it declares int32 (``replicas``, ``weight``,
``minAvailable``...; ``schemas.limits.INT32_FIELDS``), int64 elsewhere.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec
import msgspec.inspect as mi

from schemas.limits import INT32, INT32_FIELDS, INT64, LimitError, check_tree, describe_int
from schemas.resources import (
    Container,
    Guarantee,
    NodeStatus,
    ObjectMeta,
    PodGroupSpec,
    PodSpec,
    QueueSpec,
    ResourceRequirements,
)

__all__ = ["DecodeError", "container_to_dict", "decode", "format_path", "pod_spec_to_dict", "to_manifest"]


class DecodeError(ValueError):
    """A mapping that does not fit the resource type, with the field path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


# Structs whose unknown fields are kept in ``extra``.
_KEEPS_EXTRA = (Container, PodSpec)
# Maps of resource name to quantity, where a YAML number means its string.
_QUANTITY_MAPS = {
    (ResourceRequirements, "requests"),
    (ResourceRequirements, "limits"),
    (QueueSpec, "capability"),
    (QueueSpec, "deserved"),
    (Guarantee, "resource"),
    (PodGroupSpec, "min_resources"),
    (NodeStatus, "capacity"),
    (NodeStatus, "allocatable"),
}

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_path(parts: tuple[str | int, ...]) -> str:
    """``("spec", "tasks", 1, "replicas")`` as ``spec.tasks[1].replicas``.

    Map keys that are not plain words are quoted as JSON strings, so the path
    stays one line: ``spec.capability["nvidia.com/gpu"]``.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        elif len(part) <= 60:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
        else:  # a key this long is shown by its start and its length, on one line
            out += f"[{json.dumps(part[:40], ensure_ascii=False)}...({len(part)} characters)]"
    return out


@functools.cache
def _info(cls: type[msgspec.Struct]) -> mi.StructType:
    info = mi.type_info(cls)
    if not isinstance(info, mi.StructType):  # pragma: no cover - a Struct class always has a StructType
        raise TypeError(f"{cls.__name__} is not a msgspec Struct")
    return info


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"number {describe_int(value)}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}" if len(value) <= 80 else f"a string of {len(value)} characters"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _quantity_text(value: Any, path: tuple[str | int, ...]) -> Any:
    if isinstance(value, bool):
        raise DecodeError(format_path(path), f"expected a quantity, got {_describe(value)}")
    if isinstance(value, int):
        _in_range(value, INT64, path, "int64")
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


def _in_range(value: int, bounds: tuple[int, int], path: tuple[str | int, ...], width: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise DecodeError(
            format_path(path), f"{describe_int(value)} is out of range for an {width} field ({low}..{high})"
        )


class _Walker:
    """One pass over a raw mapping, producing what ``msgspec.convert`` accepts."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def value(
        self, value: Any, t: mi.Type, path: tuple[str | int, ...], lenient: bool, int32: bool = False
    ) -> Any:
        if isinstance(t, mi.AnyType):
            _untyped(value, path)
            return value
        if isinstance(t, mi.UnionType):
            if value is None and any(isinstance(m, mi.NoneType) for m in t.types):
                return None
            members = [m for m in t.types if not isinstance(m, mi.NoneType)]
            if len(members) == 1:
                return self.value(value, members[0], path, lenient, int32)
            return value
        if isinstance(t, mi.StructType):
            return self.struct(value, t, path, lenient)
        if isinstance(t, mi.ListType):
            if not isinstance(value, list):
                raise DecodeError(format_path(path), f"expected a list, got {_describe(value)}")
            return [self.value(item, t.item_type, (*path, i), lenient, int32) for i, item in enumerate(value)]
        if isinstance(t, mi.DictType):
            if not isinstance(value, Mapping):
                raise DecodeError(format_path(path), f"expected an object, got {_describe(value)}")
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise DecodeError(format_path(path), f"keys must be strings, got {_describe(key)}")
                out[key] = self.value(item, t.value_type, (*path, key), lenient, int32)
            return out
        if isinstance(t, mi.StrType):
            if not isinstance(value, str):
                raise DecodeError(format_path(path), f"expected a string, got {_describe(value)}")
            return value
        if isinstance(t, mi.BoolType):
            if not isinstance(value, bool):
                raise DecodeError(format_path(path), f"expected true or false, got {_describe(value)}")
            return value
        if isinstance(t, mi.IntType):
            if isinstance(value, bool) or not isinstance(value, int):
                raise DecodeError(format_path(path), f"expected an integer, got {_describe(value)}")
            _in_range(value, INT32 if int32 else INT64, path, "int32" if int32 else "int64")
            return value
        return value

    def struct(self, value: Any, t: mi.StructType, path: tuple[str | int, ...], lenient: bool) -> Any:
        if not isinstance(value, Mapping):
            raise DecodeError(format_path(path), f"expected an object, got {_describe(value)}")
        cls = t.cls
        keeps_extra = cls in _KEEPS_EXTRA
        # metadata is lenient wherever it is (status is made lenient by its field).
        lenient = lenient or cls is ObjectMeta
        fields = {f.encode_name: f for f in t.fields if not (keeps_extra and f.name == "extra")}
        out: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, item in value.items():
            field = fields.get(key) if isinstance(key, str) else None
            if field is None:
                if keeps_extra:
                    _untyped(item, (*path, str(key)))
                    extra[key] = item
                elif self.strict and not lenient:
                    raise DecodeError(format_path((*path, str(key))), "unknown field")
                continue
            if item is None and not _nullable(field.type):
                continue  # null means unset, as in Kubernetes' JSON
            sub = (*path, key)
            if (cls, field.name) in _QUANTITY_MAPS and isinstance(item, Mapping):
                item = {k: _quantity_text(v, (*sub, k)) for k, v in item.items()}
            int32 = (cls, field.name) in INT32_FIELDS
            out[key] = self.value(item, field.type, sub, lenient or field.name == "status", int32)
        for field in t.fields:
            if field.required and field.encode_name not in out:
                raise DecodeError(format_path((*path, field.encode_name)), "required field is missing")
        if extra:
            out["extra"] = extra
        return out


def _untyped(value: Any, path: tuple[str | int, ...]) -> None:
    """An untyped part (``extra``, ``volumes``...) holds integers within int64 like the rest."""
    try:
        check_tree(value, path)
    except LimitError as exc:
        raise DecodeError(exc.path, exc.reason) from None


def _nullable(t: mi.Type) -> bool:
    return isinstance(t, mi.AnyType) or (
        isinstance(t, mi.UnionType) and any(isinstance(m, mi.NoneType) for m in t.types)
    )


def decode(
    raw: Mapping[str, Any],
    cls: type[msgspec.Struct],
    *,
    path: tuple[str | int, ...] = (),
    strict: bool = True,
) -> Any:
    """``raw`` as an instance of ``cls``, or ``DecodeError`` naming the field.

    ``strict=False`` ignores unknown fields everywhere (still keeping those of
    containers and pod specs in ``extra``): for objects read back from an API
    server that may run a newer Volcano than these types describe.
    """
    prepared = _Walker(strict).struct(raw, _info(cls), path, lenient=False)
    try:
        return msgspec.convert(prepared, cls)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(exc, path) from None


def _from_msgspec(exc: msgspec.ValidationError, prefix: tuple[str | int, ...]) -> DecodeError:
    """A ``DecodeError`` from msgspec's ``"reason - at `$.a.b[1]`"`` message."""
    text = str(exc)
    reason, sep, where = text.rpartition(" - at `")
    if not sep:
        return DecodeError(format_path(prefix), text)
    where = where.rstrip("`").removeprefix("$").lstrip(".")
    where = where.replace("[...]", "[?]")
    path = ".".join(p for p in (format_path(prefix), where) if p)
    return DecodeError(path.replace(".[", "["), reason.replace("`", "").lower())


# --- back to a manifest ------------------------------------------------------


def _merge_extra(value: Any, t: mi.Type) -> Any:
    if isinstance(t, mi.UnionType):
        if value is None:
            return None
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        return _merge_extra(value, members[0]) if len(members) == 1 else value
    if isinstance(t, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f for f in t.fields}
        out = {}
        for key, item in value.items():
            field = fields.get(key)
            if t.cls in _KEEPS_EXTRA and key == "extra":
                continue
            out[key] = _merge_extra(item, field.type) if field is not None else item
        if t.cls in _KEEPS_EXTRA:
            out.update(value.get("extra", {}))
        return out
    if isinstance(t, mi.ListType) and isinstance(value, list):
        return [_merge_extra(item, t.item_type) for item in value]
    if isinstance(t, mi.DictType) and isinstance(value, dict):
        return {k: _merge_extra(v, t.value_type) for k, v in value.items()}
    return value


def to_manifest(obj: msgspec.Struct) -> dict[str, Any]:
    """``obj`` as the Kubernetes JSON object it stands for.

    ``extra`` fields are merged back into their container or pod spec, and a
    top-level object always carries its ``apiVersion`` and ``kind``. Typed
    fields equal to their default (``args: []``, ``nodeSelector: {}``) are
    left out, which Kubernetes reads the same way.
    """
    out: dict[str, Any] = _merge_extra(msgspec.to_builtins(obj), _info(type(obj)))
    api_version, kind = getattr(obj, "api_version", ""), getattr(obj, "kind", "")
    if api_version and kind:
        out = {"apiVersion": api_version, "kind": kind, **out}
    return out


def pod_spec_to_dict(spec: PodSpec) -> dict[str, Any]:
    """A pod spec as Kubernetes JSON, unknown fields included."""
    return to_manifest(spec)


def container_to_dict(container: Container) -> dict[str, Any]:
    """A container as Kubernetes JSON, unknown fields included."""
    return to_manifest(container)
