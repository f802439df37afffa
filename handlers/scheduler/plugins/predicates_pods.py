"""Inter-pod affinity and anti-affinity: kube-scheduler's InterPodAffinity filter and score over one session.

Where it sits: made at session open by the ``predicates`` plugin (required
terms, ``predicate.PodAffinityEnable``) and the ``nodeorder`` plugin
(preferred terms, ``podaffinity.weight``), one ``PodRules`` per session
shared by both, and only when the cluster state has a pod with such terms
(``ClusterState.pod_affinity_pods``): otherwise nothing here runs. The
session's ``static_filter`` adds its refusals to the predicates' (what
preempt, reclaim, reserve and fit errors read); a ``Placement`` asks it for
the task in hand at each ``best`` (``judge``), since where a pod may go now
depends on where the session put the pods before it.

The pods counted are those holding a node (Bound, Running, Releasing) and
those the session allocated or pipelined; an eviction takes its pod out, as
in Volcano's predicates plugin. They are kept grouped by kind (namespace and
labels) with their node rows, and each set of terms is counted once per
topology domain (nodes sharing the value of the term's ``topologyKey``), then
kept current as the session places and evicts: judging a task costs its
terms times the nodes in array operations, not pods times nodes.

The rules, as kube-scheduler's (a term selects pods by ``labelSelector``, in
``namespaces`` and namespaces matching ``namespaceSelector``, the pod's own
when both are unset; a namespace's labels are taken to be
``kubernetes.io/metadata.name: <name>``, the only one Kubernetes sets):

- required affinity: a node passes if it has every term's topology label and
  each term's domain holds a pod matching all the terms; when no pod anywhere
  matches them all, a pod matching its own terms may go to any node with the
  labels (the first of a group);
- required anti-affinity: a node fails if some term's domain holds a pod the
  term matches;
- the symmetric rule: a node fails if its domain holds a pod whose required
  anti-affinity term matches the incoming pod;
- preferred terms score: per domain, the weights of the incoming pod's
  preferred affinity terms (minus its anti-affinity ones) times the pods they
  match there, plus the weights of placed pods' preferred terms that match
  the incoming pod; a node scores the sum over its topology labels,
  normalised to 0..100 over the nodes being compared (kube-scheduler's
  NormalizeScore), times ``podaffinity.weight``. Existing pods' required
  affinity adds nothing (Volcano leaves ``hardPodAffinityWeight`` at 0).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec
import numpy as np

from handlers.scheduler.api import NodeArrays, TaskInfo
from handlers.scheduler.hooks import Refusal
from projections.cluster_model import HOLDING, PodRecord

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

AFFINITY = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
NAMESPACE_NAME = "kubernetes.io/metadata.name"
MAX = 100

# A pod as terms see it: its namespace and its labels, sorted.
Kind: TypeAlias = tuple[str, tuple[tuple[str, str], ...]]
# A label a pod must have for a selector to match it: (key, value), or (key, None) for the key alone.
Anchor: TypeAlias = tuple[str, str | None]

_encode = msgspec.json.Encoder(order="sorted").encode


class Selector:
    """A compiled ``metav1.LabelSelector``: missing selects nothing, empty selects everything."""

    __slots__ = ("nothing", "equal", "exprs")

    def __init__(self, raw: object) -> None:
        self.nothing = not isinstance(raw, dict)
        self.equal: dict[str, str] = {}
        self.exprs: list[tuple[str, str, frozenset[str]]] = []
        if isinstance(raw, dict):
            labels = raw.get("matchLabels") or {}
            if isinstance(labels, dict):
                self.equal = {str(k): str(v) for k, v in labels.items()}
            for expr in raw.get("matchExpressions") or []:
                if not isinstance(expr, dict):
                    self.nothing = True
                    continue
                values = expr.get("values") or []
                self.exprs.append((str(expr.get("key", "")), str(expr.get("operator", "")), frozenset(map(str, values))))

    def anchors(self) -> list[Anchor] | None:
        """Labels of which a matching pod has at least one (None: no such list, any pod may match)."""
        if self.nothing:
            return []
        for key, value in self.equal.items():
            return [(key, value)]
        for key, op, values in self.exprs:
            if op == "In":
                return [(key, v) for v in sorted(values)]
        for key, op, _ in self.exprs:
            if op == "Exists":
                return [(key, None)]
        return None

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        for key, value in self.equal.items():
            if labels.get(key) != value:
                return False
        for key, op, values in self.exprs:
            have = labels.get(key)
            if op == "In":
                ok = have is not None and have in values
            elif op == "NotIn":
                ok = have is None or have not in values
            elif op == "Exists":
                ok = have is not None
            elif op == "DoesNotExist":
                ok = have is None
            else:
                ok = False
            if not ok:
                return False
        return True


class Term:
    """One pod affinity term, its namespaces resolved against the pod that states it."""

    __slots__ = ("selector", "namespaces", "ns_selector", "key", "ident")

    def __init__(self, raw: dict[str, Any], owner_namespace: str) -> None:
        self.selector = Selector(raw.get("labelSelector"))
        listed = frozenset(str(n) for n in raw.get("namespaces") or [])
        ns_raw = raw.get("namespaceSelector")
        if not listed and ns_raw is None:
            listed = frozenset({owner_namespace})
        self.namespaces = listed
        self.ns_selector = Selector(ns_raw)
        self.key = str(raw.get("topologyKey", ""))
        # What makes two terms the same term: as written, with the namespaces resolved.
        self.ident = _encode([raw.get("labelSelector"), sorted(listed), ns_raw, self.key])

    def matches(self, kind: Kind, labels: Mapping[str, str]) -> bool:
        namespace = kind[0]
        if namespace not in self.namespaces and not self.ns_selector.matches({NAMESPACE_NAME: namespace}):
            return False
        return self.selector.matches(labels)


class PodTerms:
    """A pod's inter-pod terms: required affinity and anti-affinity, preferred (weight, term) pairs."""

    __slots__ = ("affinity", "anti", "preferred", "ident")

    def __init__(self, record: PodRecord) -> None:
        ns = record.namespace
        aff = record.affinity
        pod_affinity = (aff.pod_affinity if aff else None) or {}
        pod_anti = (aff.pod_anti_affinity if aff else None) or {}
        self.affinity = _required(pod_affinity, ns)
        self.anti = _required(pod_anti, ns)
        # Preferred: affinity terms weigh +weight, anti-affinity ones -weight.
        self.preferred = _preferred(pod_affinity, ns, 1) + _preferred(pod_anti, ns, -1)
        self.ident = (
            tuple(t.ident for t in self.affinity),
            tuple(t.ident for t in self.anti),
            tuple((w, t.ident) for w, t in self.preferred),
        )

    def __bool__(self) -> bool:
        return bool(self.affinity or self.anti or self.preferred)


def _required(spec: dict[str, Any], ns: str) -> tuple[Term, ...]:
    raw = spec.get("requiredDuringSchedulingIgnoredDuringExecution") or []
    return tuple(Term(t, ns) for t in raw if isinstance(t, dict) and t.get("topologyKey"))


def _preferred(spec: dict[str, Any], ns: str, sign: int) -> tuple[tuple[int, Term], ...]:
    out = []
    for item in spec.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if not isinstance(item, dict):
            continue
        term = item.get("podAffinityTerm")
        weight = item.get("weight", 0)
        if isinstance(term, dict) and term.get("topologyKey") and isinstance(weight, int) and weight:
            out.append((sign * weight, Term(term, ns)))
    return tuple(out)


class Domains:
    """One topology key over the session's nodes: each row's domain id, ``count`` for a node without the label
    (a count array has one slot more, always 0, which such rows read)."""

    __slots__ = ("ids", "count")

    def __init__(self, nodes: NodeArrays, key: str) -> None:
        values: dict[str, int] = {}
        ids = []
        for labels in nodes.labels:
            value = labels.get(key)
            ids.append(-1 if value is None else values.setdefault(value, len(values)))
        self.count = len(values)
        array = np.array(ids, dtype=np.int64)
        array[array < 0] = self.count
        self.ids = array


class Tally:
    """Pods counted per topology domain for a set of terms: ``all`` counts a pod matching every term (once per
    term: required affinity), otherwise each term a pod matches adds its weight (anti-affinity, preferred).
    ``placed`` counts additions landing in a domain (a node with the term's label)."""

    __slots__ = ("terms", "all", "counts", "placed", "seen", "anchors")

    def __init__(self, rules: PodRules, terms: tuple[tuple[int, Term], ...], all_terms: bool) -> None:
        self.terms = terms
        self.all = all_terms
        self.counts = {t.key: np.zeros(rules.domains(t.key).count + 1, dtype=np.int64) for _, t in terms}
        self.placed = 0
        self.seen: dict[Kind, tuple[tuple[int, str], ...]] = {}  # kind -> (weight, key) it adds to
        # Labels of which a pod it counts has one (None: any pod may count): all terms must match
        # for ``all``, so the first term's will do; otherwise any term's.
        anchors: list[Anchor] | None = []
        for _, term in terms[:1] if all_terms else terms:
            found = term.selector.anchors()
            if found is None or anchors is None:
                anchors = None
            else:
                anchors += found
        self.anchors = anchors

    def adds(self, rules: PodRules, kind: Kind) -> tuple[tuple[int, str], ...]:
        found = self.seen.get(kind)
        if found is None:
            labels = rules.labels[kind]
            hits = [(w, t.key) for w, t in self.terms if t.matches(kind, labels)]
            if self.all and len(hits) != len(self.terms):
                hits = []
            found = self.seen[kind] = tuple(hits)
        return found

    def update(self, rules: PodRules, kind: Kind, row: int, delta: int) -> None:
        for weight, key in self.adds(rules, kind):
            domains = rules.domains(key)
            slot = domains.ids[row]
            self.counts[key][slot] += weight * delta
            if slot != domains.count:
                self.placed += delta


class Tallies:
    """Tallies, and for each kind of pod those it counts in, found through the kinds' labels
    (``Tally.anchors``) so that a pod placed updates the tallies it matters to, not every one."""

    __slots__ = ("rules", "all", "loose", "by_anchor", "of_kind")

    def __init__(self, rules: PodRules) -> None:
        self.rules = rules
        self.all: dict[object, Tally] = {}
        self.loose: list[Tally] = []
        self.by_anchor: dict[Anchor, list[Tally]] = {}
        self.of_kind: dict[Kind, list[Tally]] = {}

    def add(self, key: object, tally: Tally) -> None:
        self.all[key] = tally
        rules = self.rules
        if tally.anchors is None:
            self.loose.append(tally)
            kinds: list[Kind] = list(self.of_kind)
        else:
            for anchor in tally.anchors:
                self.by_anchor.setdefault(anchor, []).append(tally)
            kinds = rules.kinds_with(tally.anchors)
        for kind in kinds:
            known = self.of_kind.get(kind)
            if known is not None and tally.adds(rules, kind):
                known.append(tally)

    def for_kind(self, kind: Kind) -> list[Tally]:
        found = self.of_kind.get(kind)
        if found is None:
            rules = self.rules
            seen: set[int] = set()
            found = []
            candidates = list(self.loose)
            for anchor in rules.anchors_of(kind):
                candidates.extend(self.by_anchor.get(anchor, ()))
            for tally in candidates:
                if id(tally) not in seen:
                    seen.add(id(tally))
                    if tally.adds(rules, kind):
                        found.append(tally)
            self.of_kind[kind] = found
        return found


def _mask(rules: PodRules, counts: dict[str, np.ndarray]) -> np.ndarray:
    """Rows whose domain, under some key, has a positive count."""
    hit = np.zeros(len(rules.nodes), dtype=bool)
    for key, array in counts.items():
        hit |= array[rules.domains(key).ids] > 0
    return hit


# Placed pods of one kind: node row -> how many.
Rows: TypeAlias = dict[int, int]
# A verdict on a task: (the refusals, the allowed rows or None for all, raw preferred scores or None).
Judgement: TypeAlias = tuple[list[Refusal], np.ndarray | None, np.ndarray | None]

_BY_SESSION: weakref.WeakKeyDictionary[Session, PodRules] = weakref.WeakKeyDictionary()


def rules_of(ssn: Session) -> PodRules | None:
    """The session's inter-pod rules, if a plugin made them (see ``open_rules``)."""
    return _BY_SESSION.get(ssn) if _BY_SESSION else None


def open_rules(ssn: Session) -> tuple[PodRules, bool]:
    """The session's rules, made now if no plugin made them yet (then True: the caller listens to allocations)."""
    found = _BY_SESSION.get(ssn)
    if found is not None:
        return found, False
    rules = _BY_SESSION[ssn] = PodRules(ssn)
    return rules, True


class PodRules:
    """A session's inter-pod affinity state: the placed pods by kind, tallies per set of terms, a version."""

    def __init__(self, ssn: Session) -> None:
        self.nodes = ssn.nodes
        self.required = False  # predicates: enforce required terms
        self.weight = 0.0  # nodeorder: podaffinity.weight (0: no preferred scores)
        self.version = 0
        self.labels: dict[Kind, dict[str, str]] = {}
        self.placed: dict[Kind, Rows] = {}
        self._domains: dict[str, Domains] = {}
        self._terms: dict[tuple[str, bytes], PodTerms] = {}
        self._kinds: dict[int, Kind] = {}  # id(record) -> its kind
        self._by_anchor: dict[Anchor, list[Kind]] = {}  # the kinds with a label (or key)
        # Incoming pods' terms, counted over the placed pods: (which, idents) -> tally.
        self._tallies = Tallies(self)
        # Placed pods' own terms (the symmetric rules): term ident (and weight) -> the tally of their holders.
        self._held_anti = Tallies(self)
        self._held_preferred = Tallies(self)
        self._judged: dict[tuple[Kind, bytes], tuple[int, Judgement | None]] = {}
        self._where: dict[str, int] = {}  # pods the session placed -> their row
        self.pure: dict[bytes, tuple[np.ndarray, list[Refusal]]] = {}
        state, index = ssn.state, ssn.nodes.index
        affine = state.pod_affinity_pods
        for pod in state.pods.values():
            if pod.status in HOLDING and pod.node:
                row = index.get(pod.node)
                if row is not None:
                    self._count(pod, row, 1, pod.name in affine)

    # --- what the pods are ----------------------------------------------------

    def domains(self, key: str) -> Domains:
        found = self._domains.get(key)
        if found is None:
            found = self._domains[key] = Domains(self.nodes, key)
        return found

    def kind(self, record: PodRecord) -> Kind:
        found = self._kinds.get(id(record))
        if found is None:
            found = (record.namespace, tuple(sorted(record.labels.items())))
            self._kinds[id(record)] = found
            if found not in self.labels:
                self.labels[found] = record.labels
                for anchor in self.anchors_of(found):
                    self._by_anchor.setdefault(anchor, []).append(found)
        return found

    @staticmethod
    def anchors_of(kind: Kind) -> list[Anchor]:
        labels = kind[1]
        return [*labels, *((key, None) for key, _ in labels)]

    def kinds_with(self, anchors: list[Anchor]) -> list[Kind]:
        """The kinds having one of ``anchors``, each once."""
        if len(anchors) == 1:
            return self._by_anchor.get(anchors[0], [])
        return list(dict.fromkeys(k for a in anchors for k in self._by_anchor.get(a, ())))

    def terms(self, record: PodRecord) -> PodTerms | None:
        if record.affinity is None or not (record.affinity.pod_affinity or record.affinity.pod_anti_affinity):
            return None
        key = (record.namespace, record.signature)
        found = self._terms.get(key)
        if found is None:
            found = self._terms[key] = PodTerms(record)
        return found if found else None

    # --- keeping count ----------------------------------------------------------

    def _count(self, record: PodRecord, row: int, delta: int, affine: bool = True) -> None:
        kind = self.kind(record)
        rows = self.placed.setdefault(kind, {})
        left = rows.get(row, 0) + delta
        if left:
            rows[row] = left
        else:
            rows.pop(row, None)
        for tally in self._tallies.for_kind(kind):
            tally.update(self, kind, row, delta)
        terms = self.terms(record) if affine else None
        if terms is not None:
            for term in terms.anti:
                held = self._held_anti.all.get(term.ident)
                if held is None:
                    held = Tally(self, ((1, term),), False)
                    self._held_anti.add(term.ident, held)
                held.counts[term.key][self.domains(term.key).ids[row]] += delta
            for weight, term in terms.preferred:
                pref = self._held_preferred.all.get((term.ident, weight))
                if pref is None:
                    pref = Tally(self, ((weight, term),), False)
                    self._held_preferred.add((term.ident, weight), pref)
                pref.counts[term.key][self.domains(term.key).ids[row]] += weight * delta
        self.version += 1

    def allocated(self, task: TaskInfo) -> None:
        """A task placed (allocated or pipelined) or an eviction undone: it counts on its node."""
        if task.node >= 0:
            self._where[task.name] = task.node
            self._count(task.record, task.node, 1)

    def deallocated(self, task: TaskInfo) -> None:
        """A placement undone or a pod evicted: it no longer counts."""
        row = self._where.pop(task.name, task.node)
        if row >= 0:
            self._count(task.record, row, -1)

    def _tally(self, which: str, terms: tuple[tuple[int, Term], ...], all_terms: bool) -> Tally:
        key = (which, tuple((w, t.ident) for w, t in terms))
        tally = self._tallies.all.get(key)
        if tally is None:
            tally = Tally(self, terms, all_terms)
            placed = self.placed
            kinds = list(placed) if tally.anchors is None else [k for k in self.kinds_with(tally.anchors) if k in placed]
            for kind in kinds:
                for row, count in placed[kind].items():
                    tally.update(self, kind, row, count)
            self._tallies.add(key, tally)
        return tally

    # --- judging a task ---------------------------------------------------------

    def judge(self, task: TaskInfo) -> Judgement | None:
        """Where ``task`` may go and how the nodes score for it now; None when no term concerns it."""
        record = task.record
        kind = self.kind(record)
        key = (kind, record.signature)
        hit = self._judged.get(key)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        found = self._judge(record, kind)
        self._judged[key] = (self.version, found)
        return found

    def _judge(self, record: PodRecord, kind: Kind) -> Judgement | None:
        terms = self.terms(record)
        labels = self.labels[kind]
        refusals: list[Refusal] = []
        n = len(self.nodes)
        if self.required:
            if terms is not None and terms.affinity:
                tally = self._tally("affinity", tuple((1, t) for t in terms.affinity), True)
                ok = np.ones(n, dtype=bool)
                exist = np.ones(n, dtype=bool)
                for key, counts in tally.counts.items():
                    ids = self.domains(key).ids
                    ok &= ids != self.domains(key).count
                    exist &= counts[ids] > 0
                first = tally.placed == 0 and all(t.matches(kind, labels) for t in terms.affinity)
                if not first:
                    ok &= exist
                refusals.append((AFFINITY, ~ok))
            if terms is not None and terms.anti:
                tally = self._tally("anti", tuple((1, t) for t in terms.anti), False)
                refusals.append((ANTI_AFFINITY, _mask(self, tally.counts)))
            if self._held_anti.all:
                held: dict[str, np.ndarray] = {}
                for tally in self._held_anti.for_kind(kind):
                    for key, counts in tally.counts.items():
                        held[key] = held[key] + counts if key in held else counts
                if held:
                    refusals.append((EXISTING_ANTI_AFFINITY, _mask(self, held)))
        scores = None
        if self.weight:
            parts: list[np.ndarray] = []
            if terms is not None and terms.preferred:
                tally = self._tally("preferred", terms.preferred, False)
                parts.extend(counts[self.domains(key).ids] for key, counts in tally.counts.items())
            for tally in self._held_preferred.for_kind(kind) if self._held_preferred.all else ():
                parts.extend(counts[self.domains(key).ids] for key, counts in tally.counts.items())
            if parts:
                scores = np.sum(parts, axis=0)
        if not refusals and scores is None:
            return None
        allowed = None
        if refusals:
            allowed = np.ones(n, dtype=bool)
            for _, mask in refusals:
                allowed &= ~mask
        return refusals, allowed, scores

    # --- what the session and placements ask ----------------------------------

    def filter(self, task: TaskInfo, static: tuple[np.ndarray, list[Refusal]]) -> tuple[np.ndarray, list[Refusal]]:
        """The session's static filter for ``task`` with the inter-pod refusals as they stand added."""
        self.pure[task.signature] = static
        verdict = self.judge(task)
        if verdict is None or verdict[1] is None:
            return static
        return static[0] & verdict[1], static[1] + verdict[0]


def normalised(raw: np.ndarray, among: np.ndarray) -> np.ndarray:
    """kube-scheduler's InterPodAffinity NormalizeScore: 0..100 between the lowest and highest raw score
    of the nodes ``among`` (all 0 when they are equal)."""
    if not among.any():
        return np.zeros(len(raw))
    values = raw[among]
    low, high = int(values.min()), int(values.max())
    if high <= low:
        return np.zeros(len(raw))
    return np.floor(MAX * ((raw - low) / (high - low)))
