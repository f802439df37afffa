"""The limits on everything the edge accepts: sizes, nesting, aliases, strings, integers.

Where it sits: the first gate of the edge, before and during decoding.
``schemas.loaders`` checks a file's size and each YAML document's node graph
(``check_yaml_node``: aliases, recursion, nesting, long scalars) before it
builds a single Python object, and every parsed manifest's tree
(``check_tree``: nesting, strings, integers) before decoding; ``schemas.decode``
holds typed integer fields to their Kubernetes width (``INT32_FIELDS``);
``schemas.admission`` adds the per-object limits (pods per job, names, labels,
annotations) and the loaders the encoded size of the admitted object. The
scenario file of ``eventbatch simulate`` (``schemas.scenario``) goes through
the same checks with its own size limit. ``docs/limits.md`` lists them all.

Every limit is named after what Kubernetes or Volcano does where they have
one: an object as JSON is at most 1 MiB (etcd refuses a request over
1.5 MiB), a request body at most 3 MiB (the API server's limit), int32 fields
hold int32 values, names are RFC 1123 labels and subdomains, a label value is
at most 63 characters and the annotations of an object at most 256 KiB. A
broken limit is a ``LimitError`` whose message names the field, the limit
and the size of the value (never the value itself when it is huge).
"""

from __future__ import annotations

import math
from argparse import ArgumentTypeError
from collections.abc import Mapping
from typing import Any

import yaml

from schemas.resources import (
    JobSpec,
    JobStatus,
    LifecyclePolicy,
    NetworkTopologySpec,
    PodGroupSpec,
    PodGroupStatus,
    PodSpec,
    QueueSpec,
    QueueStatus,
    TaskSpec,
)

KiB = 1024
MiB = 1024 * KiB

# --- sizes ----------------------------------------------------------------------------

MAX_FILE_BYTES = 3 * MiB  # a manifest file, like the API server's request body limit
MAX_OBJECT_BYTES = 1 * MiB  # one admitted manifest as JSON (the log's record carries it)
MAX_SCENARIO_BYTES = 64 * MiB  # a scenario file of `eventbatch simulate` (imported traces are large)
MAX_DEPTH = 64  # nesting of mappings and lists in one document
MAX_ALIASES = 100  # YAML aliases (*name) in one document
MAX_ALIAS_NODES = 10_000  # nodes the aliases of one document may expand into, in total
MAX_STRING = 256 * KiB  # characters in any one string (or mapping key)
MAX_NUMBER_CHARS = 100  # characters of a number as written (a longer integer is no int64)
MAX_QUANTITY_CHARS = 64  # characters of a quantity ("500m") or a duration ("10m")

# --- Kubernetes' field widths -------------------------------------------------------------

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# --- per object -----------------------------------------------------------------------

MAX_PODS_PER_JOB = 10_000  # replicas of one task, and of all tasks of a job together
MAX_NAME = 253  # an RFC 1123 subdomain
MAX_LABEL = 63  # an RFC 1123 label, a label value, the name part of a label key
MAX_ANNOTATIONS_BYTES = 256 * KiB  # keys and values of an object's annotations together
MAX_SCENARIO_NODES = 5_000  # nodes of a simulated cluster (Kubernetes' largest supported cluster)
MAX_PRIORITY = 1_000_000_000  # the highest priority a user-defined PriorityClass may have

# Typed integer fields Kubernetes or Volcano declare as int32; every other
# integer field is an int64. Keyed by (struct, field name).
INT32_FIELDS: frozenset[tuple[type, str]] = frozenset(
    {
        (JobSpec, "min_available"),
        (JobSpec, "min_success"),
        (JobSpec, "max_retry"),
        (JobSpec, "ttl_seconds_after_finished"),
        (TaskSpec, "replicas"),
        (TaskSpec, "min_available"),
        (TaskSpec, "max_retry"),
        (LifecyclePolicy, "exit_code"),
        (NetworkTopologySpec, "highest_tier_allowed"),
        (QueueSpec, "weight"),
        (QueueSpec, "priority"),
        (PodGroupSpec, "min_member"),
        (PodGroupSpec, "min_task_member"),
        (PodSpec, "priority"),
        (JobStatus, "min_available"),
        (JobStatus, "pending"),
        (JobStatus, "running"),
        (JobStatus, "succeeded"),
        (JobStatus, "failed"),
        (JobStatus, "terminating"),
        (JobStatus, "unknown"),
        (JobStatus, "version"),
        (JobStatus, "retry_count"),
        (JobStatus, "task_status_count"),
        (QueueStatus, "pending"),
        (QueueStatus, "running"),
        (QueueStatus, "unknown"),
        (QueueStatus, "inqueue"),
        (QueueStatus, "completed"),
        (PodGroupStatus, "running"),
        (PodGroupStatus, "succeeded"),
        (PodGroupStatus, "failed"),
    }
)
assert all(hasattr(cls, "__struct_fields__") and name in cls.__struct_fields__ for cls, name in INT32_FIELDS)


class LimitError(ValueError):
    """A value over one of the limits: where (a field path or a place in the text) and which limit."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason
        # The 1-based document of a multi-document text it was found in (set by the YAML reader).
        self.document = 1


def size(n: int) -> str:
    """``3145728`` as ``3145728 bytes (3 MiB)``."""
    if n >= MiB and n % MiB == 0:
        return f"{n} bytes ({n // MiB} MiB)"
    if n >= KiB and n % KiB == 0:
        return f"{n} bytes ({n // KiB} KiB)"
    return f"{n} bytes"


def describe_int(value: int) -> str:
    """The integer itself when short, else how many digits it has (no 4300-digit conversions)."""
    if value.bit_length() <= 128:
        return str(value)
    return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"


def check_text(text: str | bytes, limit: int, what: str) -> None:
    """A file's text is at most ``limit`` bytes (counted in UTF-8 for a str)."""
    n = len(text) if isinstance(text, bytes) else len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    if n > limit:
        raise LimitError("", f"{what} is {n} bytes, more than the {size(limit)} allowed")


def int_in(value: int, bounds: tuple[int, int], path: str, width: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise LimitError(path, f"{describe_int(value)} is out of range for an {width} field ({low}..{high})")


# --- a YAML document's node graph, before anything is built --------------------------------

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def check_yaml_node(root: yaml.Node) -> None:
    """Refuse a composed YAML document that would build into something unbounded.

    Walks the node graph once without recursion: at most ``MAX_ALIASES``
    aliases, which expand into at most ``MAX_ALIAS_NODES`` nodes in total; no
    alias inside the node it names (a recursive structure); nesting at most
    ``MAX_DEPTH``; scalars at most ``MAX_STRING`` characters and numbers at
    most ``MAX_NUMBER_CHARS``.
    """
    from schemas.decode import format_path

    sizes: dict[int, int] = {}  # id(node) -> nodes it expands into, once finished
    open_nodes: set[int] = set()
    aliases = 0
    expanded = 0
    # Stack of (node, field path, children iterator or None before entering).
    stack: list[tuple[yaml.Node, tuple[str | int, ...], Any]] = [(root, (), None)]
    while stack:
        node, path, children = stack.pop()
        key = id(node)
        if children is None:
            if key in sizes or key in open_nodes:
                aliases += 1
                where = format_path(path) or _where(node)
                if key in open_nodes:
                    raise LimitError(where, "a YAML alias refers to a node that contains it (a recursive structure)")
                if aliases > MAX_ALIASES:
                    raise LimitError(where, f"more than {MAX_ALIASES} YAML aliases in one document")
                expanded += sizes[key]
                if expanded > MAX_ALIAS_NODES:
                    raise LimitError(
                        where,
                        f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes in one document (an alias bomb?)",
                    )
                if stack:
                    sizes[id(stack[-1][0])] += sizes[key]
                continue
            if isinstance(node, yaml.ScalarNode):
                value = node.value
                if len(value) > MAX_NUMBER_CHARS:  # only then can it break a limit
                    _check_scalar(node, format_path(path) or _where(node))
                sizes[key] = 1
                if stack:
                    sizes[id(stack[-1][0])] += 1
                continue
            if len(path) >= MAX_DEPTH:
                raise LimitError(format_path(path) or _where(node), f"nested more than {MAX_DEPTH} levels deep")
            open_nodes.add(key)
            if isinstance(node, yaml.SequenceNode):
                items = [(n, (*path, i)) for i, n in enumerate(node.value)]
            else:
                items = []
                for k, v in node.value:
                    items.append((k, path))
                    items.append((v, (*path, k.value if isinstance(k, yaml.ScalarNode) else "?")))
            sizes[key] = 1
            stack.append((node, path, iter(items)))
            continue
        nxt = next(children, None)
        if nxt is None:
            open_nodes.discard(key)
            if stack:
                sizes[id(stack[-1][0])] += sizes[key]
            continue
        stack.append((node, path, children))
        stack.append((nxt[0], nxt[1], None))


def _check_scalar(node: yaml.ScalarNode, where: str) -> None:
    value = node.value
    if len(value) > MAX_STRING:
        raise LimitError(where, f"a string of {len(value)} characters, more than the {MAX_STRING} allowed")
    if node.tag in (_INT_TAG, _FLOAT_TAG) and len(value) > MAX_NUMBER_CHARS:
        raise LimitError(
            where,
            f"a number of {len(value)} digits, more than the {MAX_NUMBER_CHARS} allowed "
            f"(an integer field holds at most int64, {INT64[1]})",
        )


# --- a parsed tree ------------------------------------------------------------------


def check_tree(value: Any, path: tuple[str | int, ...] = (), *, depth: int = MAX_DEPTH, ints: bool = True) -> None:
    """Refuse a parsed document (YAML, JSON or an API object) over the generic limits.

    Nesting at most ``depth``, strings and keys at most ``MAX_STRING``
    characters, integers within int64 (unless ``ints=False``: the typed
    decoding of ``schemas.decode`` then holds each integer to its field's
    width, and untyped parts to int64). Walks without recursion.
    """
    from schemas.decode import format_path

    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, path, 0)]
    while stack:
        item, at, level = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STRING:
                raise LimitError(
                    format_path(at), f"a string of {len(item)} characters, more than the {MAX_STRING} allowed"
                )
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if ints:
                int_in(item, INT64, format_path(at), "int64")
        elif isinstance(item, Mapping):
            if level >= depth:
                raise LimitError(format_path(at), f"nested more than {depth} levels deep")
            for key, sub in item.items():
                if isinstance(key, str) and len(key) > MAX_STRING:
                    raise LimitError(
                        format_path(at), f"a key of {len(key)} characters, more than the {MAX_STRING} allowed"
                    )
                if ints and isinstance(key, int) and not isinstance(key, bool):
                    int_in(key, INT64, format_path(at), "int64")
                stack.append((sub, (*at, key if isinstance(key, str) else str(key)[:40]), level + 1))
        elif isinstance(item, (list, tuple)):
            if level >= depth:
                raise LimitError(format_path(at), f"nested more than {depth} levels deep")
            stack.extend((sub, (*at, i), level + 1) for i, sub in enumerate(item))
        elif isinstance(item, bytes):
            if len(item) > MAX_STRING:
                raise LimitError(format_path(at), f"{len(item)} bytes of binary, more than the {MAX_STRING} allowed")


def check_quantity_text(value: Any, path: str, what: str = "quantity") -> None:
    """A quantity or duration as written is at most ``MAX_QUANTITY_CHARS`` characters."""
    if isinstance(value, str) and len(value) > MAX_QUANTITY_CHARS:
        raise LimitError(path, f"a {what} of {len(value)} characters, more than the {MAX_QUANTITY_CHARS} allowed")
    if isinstance(value, int) and not isinstance(value, bool):
        int_in(value, INT64, path, "int64")


# --- integer arguments on the command line ---------------------------------------------------


class IntArg:
    """An argparse ``type`` for an integer flag within ``[low, high]``; the error names the range."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.__name__ = "integer"

    def __call__(self, text: str) -> int:
        if len(text) > MAX_NUMBER_CHARS:
            raise ArgumentTypeError(f"a number of {len(text)} characters; expected an integer {self.low}..{self.high}")
        try:
            value = int(text)
        except ValueError:
            raise ArgumentTypeError(f"{text!r} is not an integer") from None
        if not self.low <= value <= self.high:
            raise ArgumentTypeError(f"{value} is out of range {self.low}..{self.high}")
        return value
