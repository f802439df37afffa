"""The state codec: folded state as self-describing msgpack, decoded without running code.

Where it sits: under the snapshot store (``eventbatch.snapshots``: handler
and component snapshots) and the read models' fold snapshot
(``eventbatch.readmodels``). Both keep state that a later process reads
back, from a file anyone with access to the directory could have replaced,
so reading one must never import a module or call anything the data names
(which is what a pickle does). ``encode`` turns a state into bytes and
``decode`` turns them back into an equal state.

What it encodes (msgpack via msgspec; ``docs/projections.md``, "Snapshot
format"):

- ``None``, ``bool``, ``float``, ``str``, ``bytes`` and ``int`` as msgpack
  scalars (an int outside 64 bits as its two's-complement bytes), lists as
  arrays and dicts whose keys are all ``str`` as maps;
- everything else as an array whose first item is a msgpack extension
  marker naming what it is: tuple, set, frozenset, ``collections.Counter``,
  a dict with other keys, an enum member, a record, or a reference to an
  object met earlier (objects met twice are restored as one object, as the
  state held them);
- a record is an instance of a class defined in this project's packages
  (``schemas``, ``projections``, ``handlers``, ``eventbatch``) or
  ``register``-ed: a dataclass, a ``msgspec.Struct`` or a plain class, by
  ``module:qualname`` and the names of its attributes, kept once per blob in
  a class table. Attributes named ``*_cache`` hold what readers derive from
  the rest (``ClusterState.node_cache``) and are stored as None;
- a frozen ``msgspec.Struct`` of ``schemas`` (a manifest, an event: a value
  no fold changes) as msgspec's own msgpack of it, read back by a decoder
  typed with its class, when that restores it exactly (checked as it is
  written: equal, and encoding to the same bytes); otherwise as any record.
  Whatever such a value holds is restored as its own copy, not shared.

Every blob also keeps the shape of each record class and enum it holds
(``shape``: a digest of the class's qualified name and the attributes its
code declares, or an enum's members), so a reader can tell a state saved by
code whose classes have since changed (``shape_changes``) before it uses it.

Decoding looks a class name up among modules already imported (never
imports one) and takes it only if it is a class of those packages whose
``__module__`` and ``__qualname__`` are what the data says, or a registered
one; a dataclass's or Struct's attribute names must be exactly its declared
fields. A dataclass or plain object is made with ``object.__new__`` and its
attributes set directly (no ``__init__``, no ``__setattr__``); a Struct by
calling its constructor; an enum member by ``cls(value)``. Anything else is
refused with ``StateCodecError``. A blob that does not start with ``MAGIC``
is refused as well (``OldFormat`` for a pickle of an older eventbatch): it
is never unpickled.
"""

from __future__ import annotations

import dataclasses
import dis
import enum
import hashlib
import sys
from collections import Counter
from operator import attrgetter
from typing import Any, NamedTuple, TypeGuard

import msgspec

MAGIC = b"eventbatch-state\x00"
VERSION = 1  # [VERSION, class table, root] or, since shapes are kept, [VERSION, class table, root, shapes]
PACKAGES = frozenset({"schemas", "projections", "handlers", "eventbatch"})

# Extension codes of the markers (the first item of a tagged array).
_TUPLE, _SET, _FROZENSET, _DICT, _COUNTER, _ENUM, _RECORD, _REF, _BIGINT, _VALUE = range(1, 11)
_MARK = {code: msgspec.msgpack.Ext(code, b"") for code in range(1, 11)}
_Ext = msgspec.msgpack.Ext
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1

_registered: dict[str, type] = {}


class StateCodecError(ValueError):
    """A state that cannot be encoded, or bytes that are not a state this codec wrote."""


class OldFormat(StateCodecError):
    """The bytes are a pickle, as an older eventbatch wrote its snapshots."""


def register(cls: type) -> type:
    """Allow a class defined outside the project's packages (a test's handler state)."""
    _registered[_key(cls)] = cls
    return cls


def _key(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_struct(cls: type) -> TypeGuard[type[msgspec.Struct]]:
    return isinstance(cls, type) and issubclass(cls, msgspec.Struct)


def _slots(cls: type) -> frozenset[str]:
    found = _SLOTS.get(cls)
    if found is None:
        found = _SLOTS[cls] = _declared_slots(cls)
    return found


_SLOTS: dict[type, frozenset[str]] = {}


def _declared_slots(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return frozenset(n for n in names if n not in ("__dict__", "__weakref__"))


def _allowed(cls: type) -> bool:
    if _registered.get(_key(cls)) is cls:
        return True
    if "<locals>" in cls.__qualname__ or cls.__module__.partition(".")[0] not in PACKAGES:
        return False
    return _lookup(_key(cls)) is cls


def _lookup(key: str) -> type | None:
    """The class ``module:qualname`` names, from imported modules only, or None."""
    if key in _registered:
        return _registered[key]
    module_name, sep, qualname = key.partition(":")
    if not sep or module_name.partition(".")[0] not in PACKAGES:
        return None
    module = sys.modules.get(module_name)
    if module is None:
        return None
    found: Any = module
    for part in qualname.split("."):
        found = vars(found).get(part) if isinstance(found, type) or found is module else None
        if found is None:
            return None
    if not isinstance(found, type) or found.__module__ != module_name or found.__qualname__ != qualname:
        return None
    return found


# -- shapes -----------------------------------------------------------------------


def _assigned(function: Any) -> set[str]:
    """The attributes a method sets on its first argument (``self.x = ...``), read from its bytecode."""
    code = getattr(function, "__code__", None)
    if code is None or not code.co_argcount:
        return set()
    me, found, previous = code.co_varnames[0], set(), None
    for instruction in dis.get_instructions(code):
        if instruction.opname == "STORE_ATTR" and previous is not None \
                and previous.opname == "LOAD_FAST" and previous.argval == me:
            found.add(instruction.argval)
        previous = instruction
    return found


@dataclasses.dataclass(frozen=True)
class _Shape:
    digest: str
    kind: str  # "enum", "struct", "dataclass" or "object"
    allowed: frozenset[str]  # the attributes an instance may hold
    required: frozenset[str]  # the attributes every instance holds (its fields, or what __init__ sets)


_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    found = _SHAPES.get(cls)
    if found is None:
        found = _SHAPES[cls] = _describe(cls)
    return found


def _describe(cls: type) -> _Shape:
    if issubclass(cls, enum.Enum):
        kind, allowed, required = "enum", frozenset[str](), frozenset[str]()
        parts = [f"{member.name}={member.value!r}" for member in cls]
    else:
        if _is_struct(cls):
            kind, allowed = "struct", frozenset(cls.__struct_fields__)
            required = allowed
        elif dataclasses.is_dataclass(cls):
            kind, allowed = "dataclass", frozenset(f.name for f in dataclasses.fields(cls))
            required = allowed
        else:
            kind, anywhere, in_init = "object", set(), set()
            for klass in cls.__mro__:
                if klass.__module__ == "builtins":
                    continue
                for name, member in sorted(vars(klass).items()):
                    if isinstance(member, property):
                        member = member.fset
                    sets = _assigned(member)
                    anywhere |= sets
                    if name == "__init__":
                        in_init |= sets
            descriptors = {n for n in anywhere if hasattr(getattr(cls, n, None), "__set__") and n not in _slots(cls)}
            allowed = frozenset((anywhere - descriptors) | _slots(cls))
            # An attribute the class itself defaults (``timelines = True``) may be left unset.
            defaulted = {n for n in in_init if n not in _slots(cls) and any(n in vars(k) for k in cls.__mro__)}
            required = frozenset(in_init - descriptors - defaulted)
        parts = sorted(allowed) + ["required:"] + sorted(required)
    text = f"{kind} {_key(cls)} " + " ".join(parts)
    return _Shape(hashlib.sha256(text.encode()).hexdigest()[:16], kind, allowed, required)


def shape(cls: type) -> str:
    """The shape of ``cls`` as this code declares it: a digest of its ``module:qualname``, its
    kind and the attributes its instances hold (a Struct's or dataclass's fields; a plain
    class's slots and what its methods set on ``self``) or an enum's members. Deterministic."""
    return _shape(cls).digest


# -- encoding ---------------------------------------------------------------------


class _Encoder:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}  # id(object) -> its index in visiting order
        self.building: set[int] = set()  # immutable containers being encoded (a cycle through one cannot be restored)
        self.classes: dict[tuple[type, tuple[str, ...]], int] = {}
        self.table: list[list] = []
        self.allowed: set[type] = set()
        self.enums: set[type] = set()
        self.plans: dict[type, _Plan] = {}

    def value(self, x: Any) -> Any:
        t = type(x)
        if t is str or t is float or t is bool or x is None or t is bytes:
            return x
        if t is int:
            if _MIN_INT <= x <= _MAX_INT:
                return x
            return [_MARK[_BIGINT], x.to_bytes((x.bit_length() + 8) // 8, "little", signed=True)]
        if isinstance(x, enum.Enum):
            return [_MARK[_ENUM], self._enum_key(t), self.value(x.value)]
        ident = id(x)
        index = self.seen.get(ident)
        if index is not None:
            if ident in self.building:
                raise StateCodecError(f"a {t.__name__} that contains itself cannot be kept")
            return [_MARK[_REF], index]
        self.seen[ident] = len(self.seen)
        if t is list:
            plain, value = _PLAIN, self.value
            return [v if type(v) in plain else value(v) for v in x]
        if t is dict:
            if all(type(k) is str for k in x):
                plain, value = _PLAIN, self.value
                return {k: v if type(v) in plain else value(v) for k, v in x.items()}
            out = [_MARK[_DICT]]
            for k, v in x.items():
                out.append(self.value(k))
                out.append(self.value(v))
            return out
        if t is tuple or t is frozenset:
            self.building.add(ident)
            out = [_MARK[_TUPLE if t is tuple else _FROZENSET], *(self.value(v) for v in x)]
            self.building.discard(ident)
            return out
        if t is set:
            return [_MARK[_SET], *(self.value(v) for v in x)]
        if t is Counter:
            out = [_MARK[_COUNTER]]
            for k, v in x.items():
                out.append(self.value(k))
                out.append(self.value(v))
            return out
        return self._record(x, t, ident)

    def _enum_key(self, cls: type) -> str:
        if not _allowed(cls):
            raise StateCodecError(f"cannot keep {_key(cls)}: not an enum of this project (statecodec.register it)")
        self.enums.add(cls)
        return _key(cls)

    def _record(self, x: Any, cls: type, ident: int) -> list:
        plan = self.plans.get(cls)
        if plan is None:
            plan = self.plans[cls] = self._plan(cls)
        if plan.value:
            kept = _as_value(x, cls)
            if kept is not None:
                return [_MARK[_VALUE], self._slot(cls, plan.names), kept]
        values: Any = None
        skip = plan.skip
        if plan.getter is not None:  # a Struct, or a class whose instances hold every slot and nothing else
            try:
                values = plan.getter(x)
                names = plan.names
            except AttributeError:  # a slot left unset
                values = None
        if values is None:
            names = tuple(n for n in plan.names if hasattr(x, n)) + tuple(getattr(x, "__dict__", ()))
            if plan.declared is not None and set(names) != plan.declared:
                raise StateCodecError(
                    f"cannot keep a {_key(cls)}: attributes {sorted(set(names) ^ plan.declared)} "
                    "are not its fields, or are missing"
                )
            values = tuple(getattr(x, n) for n in names)
            skip = frozenset(n for n in names if n.endswith("_cache"))
        elif len(names) == 1:
            values = (values,)
        slot = self._slot(cls, names)
        if plan.struct:
            self.building.add(ident)  # made by its constructor, after its fields
        out = [_MARK[_RECORD], slot]
        append, plain, value = out.append, _PLAIN, self.value
        for name, v in zip(names, values, strict=True):
            if skip and name in skip:
                append(None)
            elif type(v) in plain:
                append(v)
            else:
                try:
                    append(value(v))
                except StateCodecError as exc:
                    raise StateCodecError(f"{cls.__qualname__}.{name}: {exc}") from None
        self.building.discard(ident)
        return out

    def _slot(self, cls: type, names: tuple[str, ...]) -> int:
        slot = self.classes.get((cls, names))
        if slot is None:
            slot = self.classes[(cls, names)] = len(self.table)
            self.table.append([_key(cls), list(names)])
        return slot

    def _plan(self, cls: type) -> _Plan:
        """How to read a record of ``cls``: worked out once per class and encode."""
        if not _allowed(cls):
            raise StateCodecError(
                f"cannot keep a {_key(cls)}: only records of {', '.join(sorted(PACKAGES))} "
                "(or statecodec.register-ed classes) are kept"
            )
        self.allowed.add(cls)
        if _is_struct(cls):
            names = cls.__struct_fields__
            value = cls.__struct_config__.frozen and cls.__module__.partition(".")[0] == "schemas"
            return _Plan(names, attrgetter(*names) if names else None, None, True, _caches(names), value)
        names = tuple(sorted(_slots(cls)))
        declared = frozenset(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
        slots_only = names and not any("__dict__" in vars(k).get("__slots__", ("__dict__",))
                                       for k in cls.__mro__ if k is not object)
        fast = slots_only and (declared is None or declared == frozenset(names))
        return _Plan(names, attrgetter(*names) if fast else None, declared, False, _caches(names), False)


def _as_value(x: Any, cls: type) -> bytes | None:
    """A frozen schema record as msgspec's own msgpack of it, when that restores it exactly
    (read back by a decoder typed with its class, it is equal and encodes to the same bytes);
    else None. Such a record is a value: what it holds is restored as copies, not shared."""
    try:
        kept = _value_encoder.encode(x)
        back = _value_decoder(cls).decode(kept)
    except (TypeError, ValueError, OverflowError, msgspec.MsgspecError):
        return None
    return kept if back == x and _value_encoder.encode(back) == kept else None


def _value_decoder(cls: type) -> Any:
    found = _VALUE_DECODERS.get(cls)
    if found is None:
        found = _VALUE_DECODERS[cls] = msgspec.msgpack.Decoder(cls)
    return found


_value_encoder = msgspec.msgpack.Encoder()
_VALUE_DECODERS: dict[type, Any] = {}


def _caches(names: tuple[str, ...]) -> frozenset[str]:
    """The attributes kept as None: ``*_cache`` ones hold what readers derive from the rest."""
    return frozenset(n for n in names if n.endswith("_cache"))


class _Plan(NamedTuple):
    names: tuple[str, ...]  # a Struct's fields, or the sorted slots of any other class
    getter: Any  # all of ``names`` at once, where every instance holds exactly them; else None
    declared: frozenset[str] | None  # a dataclass's fields
    struct: bool
    skip: frozenset[str]  # kept as None
    value: bool  # a frozen Struct of ``schemas``: kept whole, as msgspec encodes it, where that is exact


# Values kept as they are (an int is not: one outside 64 bits is tagged).
_PLAIN = frozenset({str, float, bool, bytes, type(None)})


_encoder = msgspec.msgpack.Encoder()


def encode(state: Any) -> bytes:
    """``state`` as bytes ``decode`` restores; ``StateCodecError`` for what it cannot keep."""
    encoder = _Encoder()
    root = encoder.value(state)
    shapes = {_key(cls): shape(cls) for cls in (*encoder.allowed, *encoder.enums)}
    return MAGIC + _encoder.encode([VERSION, encoder.table, root, dict(sorted(shapes.items()))])


# -- decoding ---------------------------------------------------------------------


class _Decoder:
    def __init__(self, table: Any) -> None:
        self.objects: list[Any] = []
        self.classes: list[tuple[type, list[str], str]] = []
        if type(table) is not list:
            raise StateCodecError("no class table")
        for entry in table:
            if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str or type(entry[1]) is not list:
                raise StateCodecError("a malformed class table")
            key, names = entry
            cls = _lookup(key)
            if cls is None or issubclass(cls, enum.Enum):
                raise StateCodecError(f"it holds a {key}, which this eventbatch does not have (or may not restore)")
            if not all(type(n) is str and n.isidentifier() and not n.startswith("__") for n in names):
                raise StateCodecError(f"a {key} with attributes {names!r}")
            if _is_struct(cls):
                kind, declared = "struct", set(cls.__struct_fields__)
            elif dataclasses.is_dataclass(cls):
                kind, declared = "object", {f.name for f in dataclasses.fields(cls)}
            else:
                kind, declared = "object", None
            if declared is not None and set(names) != declared:
                raise StateCodecError(
                    f"it holds a {key} with attributes {sorted(names)}; this eventbatch's has {sorted(declared)}"
                )
            self.classes.append((cls, names, kind))

    def value(self, x: Any) -> Any:
        t = type(x)
        if t is list:
            if x and type(x[0]) is _Ext:
                return self._tagged(x)
            out: list = []
            self.objects.append(out)
            out.extend(self.value(v) for v in x)
            return out
        if t is dict:
            out_map: dict = {}
            self.objects.append(out_map)
            for k, v in x.items():
                out_map[k] = self.value(v)
            return out_map
        if t is _Ext:
            raise StateCodecError("a stray marker")
        return x

    def _reserve(self) -> int:
        self.objects.append(_PENDING)
        return len(self.objects) - 1

    def _tagged(self, x: list) -> Any:
        code = x[0].code
        if code == _REF:
            if len(x) != 2 or type(x[1]) is not int or not 0 <= x[1] < len(self.objects):
                raise StateCodecError("a reference to nothing")
            found = self.objects[x[1]]
            if found is _PENDING:
                raise StateCodecError("a reference into an object not yet made")
            return found
        if code == _BIGINT:
            if len(x) != 2 or type(x[1]) is not bytes:
                raise StateCodecError("a malformed integer")
            return int.from_bytes(x[1], "little", signed=True)
        if code == _ENUM:
            if len(x) != 3 or type(x[1]) is not str:
                raise StateCodecError("a malformed enum")
            cls = _lookup(x[1])
            if cls is None or not issubclass(cls, enum.Enum):
                raise StateCodecError(f"it holds a {x[1]}, which this eventbatch does not have")
            try:
                return cls(self.value(x[2]))
            except ValueError:
                raise StateCodecError(f"it holds a {x[1]} this eventbatch does not have") from None
        if code == _TUPLE or code == _FROZENSET:
            index = self._reserve()
            items = [self.value(v) for v in x[1:]]
            made = tuple(items) if code == _TUPLE else frozenset(items)
            self.objects[index] = made
            return made
        if code == _SET:
            made_set: set = set()
            self.objects.append(made_set)
            made_set.update(self.value(v) for v in x[1:])
            return made_set
        if code == _DICT or code == _COUNTER:
            if len(x) % 2 != 1:
                raise StateCodecError("a malformed mapping")
            made_map: dict = {} if code == _DICT else Counter()
            self.objects.append(made_map)
            for i in range(1, len(x), 2):
                key = self.value(x[i])
                made_map[key] = self.value(x[i + 1])
            return made_map
        if code == _RECORD:
            return self._record(x)
        if code == _VALUE:
            return self._value_record(x)
        raise StateCodecError(f"an unknown marker {code}")

    def _value_record(self, x: list) -> Any:
        if len(x) != 3 or type(x[1]) is not int or not 0 <= x[1] < len(self.classes) or type(x[2]) is not bytes:
            raise StateCodecError("a malformed record value")
        cls, _, kind = self.classes[x[1]]
        if kind != "struct":
            raise StateCodecError(f"a {_key(cls)} kept as a value, which only a Struct can be")
        try:
            made = _value_decoder(cls).decode(x[2])
        except msgspec.MsgspecError as exc:
            raise StateCodecError(f"a {_key(cls)} that cannot be restored: {exc}") from None
        self.objects.append(made)
        return made

    def _record(self, x: list) -> Any:
        if len(x) < 2 or type(x[1]) is not int or not 0 <= x[1] < len(self.classes):
            raise StateCodecError("a record of no class")
        cls, names, kind = self.classes[x[1]]
        if len(x) != 2 + len(names):
            raise StateCodecError(f"a {_key(cls)} with {len(x) - 2} values for {len(names)} attributes")
        if kind == "struct":
            index = self._reserve()
            made = cls(**{name: self.value(v) for name, v in zip(names, x[2:], strict=True)})
            self.objects[index] = made
            return made
        made = object.__new__(cls)
        self.objects.append(made)
        slots = _slots(cls)
        attributes = None
        for name, v in zip(names, x[2:], strict=True):
            value = self.value(v)
            if name in slots:
                object.__setattr__(made, name, value)  # a slot's member descriptor: no project code runs
            else:
                if attributes is None:
                    try:
                        attributes = object.__getattribute__(made, "__dict__")
                    except AttributeError:
                        raise StateCodecError(f"a {_key(cls)} with an attribute {name} it cannot hold") from None
                attributes[name] = value
        return made


_PENDING = object()
_decoder = msgspec.msgpack.Decoder()


def is_state(blob: bytes) -> bool:
    return bytes(blob[: len(MAGIC)]) == MAGIC


def decode(blob: bytes) -> Any:
    """The state ``encode`` wrote; ``StateCodecError`` (``OldFormat`` for a pickle) for anything else."""
    _, table, root, _ = _parts(blob, _decoder)
    try:
        return _Decoder(table).value(root)
    except RecursionError:
        raise StateCodecError("it is nested too deep") from None
    except TypeError as exc:  # an unhashable key, a constructor refusing its fields
        raise StateCodecError(f"it cannot be restored: {exc}") from None


def _parts(blob: bytes, decoder: Any) -> tuple[Any, Any, Any, Any]:
    """``[version, table, root, shapes]`` (shapes None in a blob that keeps none), decoded by ``decoder``."""
    if not is_state(blob):
        if bytes(blob[:1]) == b"\x80":
            raise OldFormat("it was written by an older eventbatch (a pickle)")
        raise StateCodecError("it is not eventbatch state")
    try:
        parts = decoder.decode(memoryview(blob)[len(MAGIC):])
    except (msgspec.DecodeError, ValueError, TypeError):
        raise StateCodecError("it is not eventbatch state (cannot be decoded)") from None
    if type(parts) is not list or len(parts) not in (3, 4):
        raise StateCodecError("it is not eventbatch state (cannot be decoded)")
    version = parts[0] if decoder is _decoder else _decoder.decode(parts[0])
    if version != VERSION:
        raise StateCodecError(f"it is in state format {version!r}; this eventbatch reads format {VERSION}")
    return parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else None


_raw_parts = msgspec.msgpack.Decoder(list[msgspec.Raw])


def shape_changes(blob: bytes) -> list[str] | None:
    """The record classes and enums of the state in ``blob`` whose shape this code does not
    have (``module:qualname``, sorted; empty when every one fits), or None if ``blob`` keeps
    no shapes (written before they were kept). The state itself is not decoded.

    A class fits when it still exists and its ``shape`` is the one kept with the blob, and
    every record of it was kept with the attributes its code has now (all its fields; for a
    plain class, what its ``__init__`` sets, and nothing it never sets). ``StateCodecError``
    (``OldFormat``) for bytes ``decode`` would refuse as well.
    """
    _, table_raw, _, shapes_raw = _parts(blob, _raw_parts)
    try:
        table = _decoder.decode(table_raw)
        shapes = _decoder.decode(shapes_raw) if shapes_raw is not None else None
    except (msgspec.DecodeError, ValueError, TypeError):
        raise StateCodecError("it is not eventbatch state (cannot be decoded)") from None
    if type(table) is not list or not (shapes is None or type(shapes) is dict):
        raise StateCodecError("a malformed class table")
    for entry in table:
        if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str or type(entry[1]) is not list \
                or not all(type(n) is str for n in entry[1]):
            raise StateCodecError("a malformed class table")
    for key in [entry[0] for entry in table] + list(shapes or ()):
        if type(key) is not str or (key not in _registered and key.partition(".")[0] not in PACKAGES):
            # Not a class of this project at all: bytes this codec never wrote, not an older shape.
            raise StateCodecError(f"it holds a {key}, which this eventbatch does not have (or may not restore)")
    if shapes is None:
        return None
    changed: set[str] = set()
    for key, digest in shapes.items():
        cls = _lookup(key)
        if cls is None or shape(cls) != digest:
            changed.add(key)
    for key, names in table:
        cls = _lookup(key)
        if cls is None or key not in shapes:
            changed.add(key)
            continue
        found = _shape(cls)
        held = set(names)
        if not held <= found.allowed or not found.required <= held:
            changed.add(key)
    return sorted(changed)


def decode_stored(blob: bytes, *, store: str, old: type[Exception], bad: type[Exception]) -> Any:
    """``decode`` for a store's blob: an older eventbatch's pickle raises ``old``, anything
    else unreadable ``bad``, each one line naming ``store`` and saying how to rebuild it."""
    try:
        return decode(blob)
    except OldFormat:
        raise old(f"{store} was written by an older eventbatch; delete it to rebuild from the log") from None
    except StateCodecError as exc:
        raise bad(f"{store} cannot be read: {exc}; delete it to rebuild from the log") from None
