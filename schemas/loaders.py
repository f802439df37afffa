"""Volcano manifests from YAML or JSON text into admitted resource objects.

Where it sits: the edge of the pipeline. The CLI and the CRD watch hand the
text (or an already parsed mapping) to this module; what comes back is a
``Job``, ``Queue``, ``Command`` or ``PodGroup`` that is decoded
(``schemas.decode``), defaulted (``schemas.defaults``) and admitted
(``schemas.admission``), ready to become an intent event. Anything wrong is
a ``ManifestError`` naming the file, the document, the object and the field,
so nothing invalid ever reaches the log. Nothing unbounded does either: the
limits of ``schemas.limits`` (``docs/limits.md``) are checked on the text,
on each YAML document's node graph before it is built (alias bombs, deep
nesting, numbers too long to convert), on the parsed tree, on typed integer
fields, and on the admitted object's size as JSON.

Both Volcano's API groups and the project's own are accepted:
``batch.volcano.sh/v1alpha1`` / ``batch.eventbatch.io/v1alpha1`` Job and
CronJob (``schemas.cronjob``),
``scheduling.volcano.sh/v1beta1`` / ``scheduling.eventbatch.io/v1beta1``
Queue and PodGroup, ``bus.volcano.sh/v1alpha1`` / ``bus.eventbatch.io/v1alpha1``
Command, ``flow.volcano.sh/v1alpha1`` / ``flow.eventbatch.io/v1alpha1`` JobFlow and
JobTemplate (``schemas.jobflow``), a Kubernetes ``v1`` Pod (a plain pod for the scheduler, as other
operators create them) and a Kubernetes ``v1`` Node (for a simulated cluster; checked by
``schemas.node_admission``: the fields of a Node spec the scheduler has no use
for, such as ``podCIDR`` and ``providerID``, are dropped, not refused). A
``kind: List`` (as ``kubectl get -o yaml`` writes) and a JSON array are read
item by item. ``topology.volcano.sh/v1alpha1`` / ``topology.eventbatch.io/v1alpha1``
HyperNode is read too (``schemas.hypernode``: a network domain of nodes, cluster-scoped).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from schemas import (
    cronjob,  # noqa: F401 - registers CronJob's rules with ``validate`` and ``apply_defaults``
    jobflow,  # noqa: F401 - registers JobFlow's and JobTemplate's defaults and rules
    limits,
    node_admission,  # noqa: F401 - registers Node's rules with ``validate``
)
from schemas.admission import Violation, validate
from schemas.decode import DecodeError, decode, format_path
from schemas.defaults import apply_defaults
from schemas.hypernode import HyperNode  # also registers HyperNode's rules with ``validate``
from schemas.resources import Command, CronJob, Job, JobFlow, JobTemplate, Manifest, Node, Pod, PodGroup, Queue

__all__ = [
    "KINDS",
    "Manifest",
    "ManifestError",
    "admit",
    "decode_manifest",
    "load_file",
    "load_manifests",
    "parse_json",
    "parse_yaml",
    "read_text",
]

KINDS: dict[tuple[str, str], type[Manifest]] = {}
for _group, _version, _kinds in (
    ("batch", "v1alpha1", (Job, CronJob)),
    ("scheduling", "v1beta1", (Queue, PodGroup)),
    ("bus", "v1alpha1", (Command,)),
    ("flow", "v1alpha1", (JobFlow, JobTemplate)),
):
    for _domain in ("volcano.sh", "eventbatch.io"):
        for _cls in _kinds:
            KINDS[(f"{_group}.{_domain}/{_version}", _cls.__name__)] = _cls
KINDS[("v1", "Node")] = Node
KINDS[("v1", "Pod")] = Pod
_CLUSTER_SCOPED = (Queue, Node, HyperNode)
for _domain in ("volcano.sh", "eventbatch.io"):
    KINDS[(f"topology.{_domain}/v1alpha1", "HyperNode")] = HyperNode
# Node spec fields Kubernetes has and the scheduler does not read: dropped on decoding.
_NODE_SPEC_UNUSED = frozenset({"podCIDR", "podCIDRs", "providerID", "externalID", "configSource"})


class ManifestError(ValueError):
    """A manifest that cannot be accepted, and exactly where it goes wrong.

    ``str()`` reads like
    ``job.yaml document 2 (Job default/mpi): spec.tasks[1].replicas: must be >= 0``.
    ``violations`` lists every admission rule broken, the first of which is
    ``path``/``reason``. The message is one line, and short whatever the
    input: a part longer than ``_MAX_PART`` characters is cut, saying how long
    it was.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str = "<input>",
        document: int = 1,
        path: str = "",
        label: str = "",
        violations: tuple[Violation, ...] = (),
    ) -> None:
        self.source = source
        self.document = document
        self.path = path
        self.reason = reason
        self.label = label
        self.violations = violations or (Violation(path, reason),)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{_short(self.source)} document {self.document}"
        if self.label:
            where += f" ({_short(self.label)})"
        reason = _short(self.reason)
        return f"{where}: {_short(self.path)}: {reason}" if self.path else f"{where}: {reason}"


_MAX_PART = 500


def _short(text: str) -> str:
    """``text`` on one line, cut to ``_MAX_PART`` characters."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) <= _MAX_PART:
        return text
    return f"{text[:_MAX_PART - 100]}... ({len(text)} characters)"


def _name(value: str) -> str:
    return value if len(value) <= 80 else f"{value[:40]}...({len(value)} characters)"


# --- text to documents -----------------------------------------------------


# libyaml's parser when PyYAML was built with it: several times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[valid-type, misc]  # PyYAML has no stubs here: its loaders are Any
    """Safe YAML that rejects duplicate keys and keeps timestamps as strings."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen and key != "<<":
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen[key] = key_node
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where and what (PyYAML's own text spans several)."""
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"invalid YAML at character {exc.position + 1}: {exc.reason} (#x{character:04x})"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _json_int(text: str) -> int:
    if len(text) > limits.MAX_NUMBER_CHARS:
        raise limits.LimitError(
            "", f"a number of {len(text)} digits, more than the {limits.MAX_NUMBER_CHARS} allowed "
            f"(an integer field holds at most int64, {limits.INT64[1]})"
        )
    return int(text)


def parse_json(text: str) -> Any:
    """JSON text as Python values, refusing over-long numbers and nesting Python cannot follow.

    ``LimitError`` for a limit, ``json.JSONDecodeError`` for invalid JSON.
    """
    try:
        return json.loads(text, parse_int=_json_int)
    except RecursionError:
        raise limits.LimitError("", f"nested more than {limits.MAX_DEPTH} levels deep") from None


def parse_yaml(text: str) -> Iterator[tuple[int, Any]]:
    """``(1-based document number, document)`` for every YAML document of ``text``, empty ones included.

    Each document's node graph is checked (``limits.check_yaml_node``) before
    it is built. ``LimitError`` and ``yaml.YAMLError`` carry the document
    number as ``document``.
    """
    number = 1
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                limits.check_yaml_node(node)
            yield number, loader.construct_document(node) if node is not None else None
            number += 1
    except (limits.LimitError, yaml.YAMLError) as exc:
        exc.document = number
        raise
    except RecursionError:  # the pure-Python parser, without libyaml, on deep nesting
        error = limits.LimitError("", f"nested more than {limits.MAX_DEPTH} levels deep")
        error.document = number
        raise error from None
    finally:
        loader.dispose()


def _documents(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """``(1-based document number, parsed document)``, empty documents skipped."""
    try:
        limits.check_text(text, limits.MAX_FILE_BYTES, "the manifest text")
    except limits.LimitError as exc:
        raise ManifestError(exc.reason, source=source) from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ManifestError(f"not UTF-8 text: {exc.reason} at character {exc.start + 1}", source=source) from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = parse_json(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=source
            ) from None
        except limits.LimitError as exc:
            raise ManifestError(exc.reason, source=source) from None
        if isinstance(doc, list):
            yield from ((i, d) for i, d in enumerate(doc, start=1) if d is not None)
        elif doc is not None:
            yield 1, doc
        return
    documents = parse_yaml(text)
    while True:
        try:
            number, doc = next(documents)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            raise ManifestError(_yaml_problem(exc), source=source, document=exc.document) from None
        except limits.LimitError as exc:
            raise ManifestError(exc.reason, source=source, document=exc.document, path=exc.path) from None
        if doc is not None:
            yield number, doc


# --- one mapping to one object ------------------------------------------------


def _label(raw: Mapping[str, Any], cls: type | None) -> str:
    kind_value, meta = raw.get("kind"), raw.get("metadata")
    kind = _name(kind_value) if isinstance(kind_value, str) else ""
    if not isinstance(meta, Mapping):
        return kind
    name = meta.get("name")
    if not kind or not isinstance(name, str) or not name:
        return kind
    if cls in _CLUSTER_SCOPED:
        return f"{kind} {_name(name)}"
    namespace = meta.get("namespace")
    return f"{kind} {_name(namespace) if isinstance(namespace, str) and namespace else 'default'}/{_name(name)}"


def _kind_of(raw: Mapping[str, Any]) -> type[Manifest]:
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    if not api_version:
        raise DecodeError("apiVersion", "required field is missing")
    if not kind:
        raise DecodeError("kind", "required field is missing")
    cls = KINDS.get((api_version, kind)) if isinstance(api_version, str) and isinstance(kind, str) else None
    if cls is not None:
        return cls
    served = sorted(k for (v, k) in KINDS if v == api_version)
    if served:
        raise DecodeError("kind", f"unknown kind {_quoted(kind)} for {api_version} (known: {', '.join(served)})")
    accepted = ", ".join(sorted({f"{v} {k}" for v, k in KINDS}))
    raise DecodeError(
        "apiVersion", f"unknown apiVersion/kind {_quoted(api_version)}/{_quoted(kind)} (accepted: {accepted})"
    )


def _quoted(value: Any) -> str:
    return repr(_name(value)) if isinstance(value, str) else repr(value)


def decode_manifest(
    raw: Any,
    *,
    source: str = "<input>",
    document: int = 1,
    path: tuple[str | int, ...] = (),
    admission: bool = True,
    strict: bool = True,
) -> Manifest:
    """One parsed manifest mapping as an admitted object.

    With ``admission=False`` the object is returned exactly as decoded:
    neither defaulted nor checked against Volcano's admission rules. With
    ``strict=False`` unknown fields are ignored instead of refused (for
    objects a newer API server wrote; see ``schemas.decode.decode``).
    """
    if not isinstance(raw, Mapping):
        raise ManifestError(
            f"expected a manifest object, got {type(raw).__name__}",
            source=source,
            document=document,
            path=format_path(path),
        )
    cls: type | None = None
    try:
        limits.check_tree(raw, path, ints=False)
    except limits.LimitError as exc:
        raise ManifestError(
            exc.reason, source=source, document=document, path=exc.path, label=_label(raw, None)
        ) from None
    try:
        cls = _kind_of(raw)
        if cls is Node:
            raw = _without_unused_node_fields(raw)
        obj = decode(raw, cls, strict=strict)
    except DecodeError as exc:
        where = ".".join(p for p in (format_path(path), exc.path) if p).replace(".[", "[")
        raise ManifestError(
            exc.reason, source=source, document=document, path=where, label=_label(raw, cls)
        ) from None
    return admit(obj, source=source, document=document, path=path) if admission else obj


def _without_unused_node_fields(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = raw.get("spec")
    if not isinstance(spec, Mapping) or not _NODE_SPEC_UNUSED & spec.keys():
        return raw
    return {**raw, "spec": {k: v for k, v in spec.items() if k not in _NODE_SPEC_UNUSED}}


def admit(
    obj: Manifest,
    *,
    source: str = "<object>",
    document: int = 1,
    path: tuple[str | int, ...] = (),
) -> Manifest:
    """``obj`` with Volcano's defaults applied, or ``ManifestError`` for the first broken rule."""
    defaulted = apply_defaults(obj)
    violations = validate(defaulted)
    if not violations:
        encoded = len(msgspec.json.encode(defaulted))
        if encoded <= limits.MAX_OBJECT_BYTES:
            return defaulted
        violations = [
            Violation(
                "",
                f"the object is {encoded} bytes as JSON, more than the {limits.size(limits.MAX_OBJECT_BYTES)} "
                "an object may have",
            )
        ]
    first = violations[0]
    kind = type(obj).__name__
    name = _name(defaulted.metadata.name)
    if not name:
        label = kind
    elif isinstance(obj, _CLUSTER_SCOPED):
        label = f"{kind} {name}"
    else:
        label = f"{kind} {_name(defaulted.metadata.namespace)}/{name}"
    prefix = format_path(path)
    raise ManifestError(
        first.reason,
        source=source,
        document=document,
        path=".".join(p for p in (prefix, first.path) if p).replace(".[", "["),
        label=label,
        violations=tuple(violations),
    )


# --- text and files --------------------------------------------------------------


def load_manifests(
    text: str, *, source: str = "<input>", admission: bool = True, strict: bool = True
) -> list[Manifest]:
    """Every manifest in ``text`` (YAML or JSON, one or many documents), in order."""
    out: list[Manifest] = []
    for number, doc in _documents(text, source):
        if isinstance(doc, Mapping) and doc.get("kind") == "List" and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise ManifestError("expected a list", source=source, document=number, path="items")
            for i, item in enumerate(items):
                out.append(
                    decode_manifest(
                        item, source=source, document=number, path=("items", i), admission=admission, strict=strict
                    )
                )
            continue
        out.append(decode_manifest(doc, source=source, document=number, admission=admission, strict=strict))
    return out


def read_text(p: Path, limit: int, *, source: str, what: str = "the file") -> str:
    """The UTF-8 text of ``p``, refused unread beyond ``limit`` bytes (``OSError`` if unreadable)."""
    with p.open("rb") as f:
        data = f.read(limit + 1)
        if len(data) > limit:
            f.seek(0, 2)
            size = max(f.tell(), len(data))
            raise ManifestError(f"{what} is {size} bytes, more than the {limits.size(limit)} allowed", source=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text: {exc.reason}", source=source) from None


def load_file(path: str | Path, *, admission: bool = True, strict: bool = True) -> list[Manifest]:
    """Every manifest in the file at ``path``; errors name the file."""
    p = Path(path)
    text = read_text(p, limits.MAX_FILE_BYTES, source=str(path))
    return load_manifests(text, source=str(path), admission=admission, strict=strict)
