"""HyperNode manifests: what loads, and what admission refuses with the field that is wrong."""

from __future__ import annotations

import pytest

from schemas.hypernode import HyperNode
from schemas.loaders import ManifestError, load_manifests

HEAD = "apiVersion: topology.volcano.sh/v1alpha1\nkind: HyperNode\nmetadata: {name: s0}\n"


def one(spec: str, head: str = HEAD) -> HyperNode:
    [manifest] = load_manifests(head + spec, source="hn.yaml")
    assert isinstance(manifest, HyperNode)
    return manifest


def test_every_selector_and_both_groups_load():
    spec = """spec:
  tier: 1
  tierName: switch
  members:
  - {type: Node, selector: {exactMatch: {name: n0}}}
  - {type: Node, selector: {regexMatch: {pattern: "^gpu-[0-9]+$"}}}
  - {type: Node, selector: {labelMatch: {matchLabels: {rack: r1},
      matchExpressions: [{key: zone, operator: In, values: [a, b]}, {key: spot, operator: DoesNotExist}]}}}
"""
    hn = one(spec)
    assert hn.spec.tier == 1 and len(hn.spec.members) == 3
    assert one(spec, HEAD.replace("volcano.sh", "eventbatch.io")).spec == hn.spec


@pytest.mark.parametrize(
    ("spec", "path", "reason"),
    [
        ("spec: {tier: 0, members: [{type: Node, selector: {exactMatch: {name: n0}}}]}", "spec.tier", "must be >= 1"),
        ("spec: {tier: 1}", "spec.members", "at least one member"),
        ("spec: {tier: 1, members: [{type: Rack, selector: {exactMatch: {name: n0}}}]}",
         "spec.members[0].type", "must be one of Node, HyperNode"),
        ("spec: {tier: 1, members: [{type: Node, selector: {}}]}",
         "spec.members[0].selector", "one of exactMatch, regexMatch or labelMatch is required"),
        ("spec: {tier: 1, members: [{type: Node, selector: {exactMatch: {name: n0}, labelMatch: {matchLabels: {a: b}}}}]}",
         "spec.members[0].selector", "only one of exactMatch, regexMatch or labelMatch"),
        ("spec: {tier: 1, members: [{type: Node, selector: {exactMatch: {name: N_0}}}]}",
         "spec.members[0].selector.exactMatch.name", "not a valid name"),
        ("spec: {tier: 1, members: [{type: Node, selector: {regexMatch: {pattern: 'n[0-'}}}]}",
         "spec.members[0].selector.regexMatch.pattern", "invalid regular expression"),
        ("spec: {tier: 1, members: [{type: Node, selector: {labelMatch: {}}}]}",
         "spec.members[0].selector.labelMatch", "selects nothing"),
        ("spec: {tier: 1, members: [{type: Node, selector: {labelMatch: {matchExpressions: [{key: a, operator: In}]}}}]}",
         "spec.members[0].selector.labelMatch.matchExpressions[0].values", "In needs at least one value"),
        ("spec: {tier: 1, members: [{type: Node, selector: {labelMatch: {matchExpressions: [{key: a, operator: Gt}]}}}]}",
         "spec.members[0].selector.labelMatch.matchExpressions[0].operator", "must be one of In, NotIn"),
        ("spec: {tier: 2, members: [{type: HyperNode, selector: {regexMatch: {pattern: s}}}]}",
         "spec.members[0].selector", "selected by exactMatch only"),
        ("spec: {tier: 2, members: [{type: HyperNode, selector: {exactMatch: {name: s0}}}]}",
         "spec.members[0].selector.exactMatch.name", "cannot be its own member"),
        ("spec: {tier: 2, members: [{type: HyperNode, selector: {exactMatch: {name: s1}}}, "
         "{type: Node, selector: {exactMatch: {name: n0}}}]}", "spec.members", "all Node or all HyperNode"),
    ],
    ids=["tier-0", "no-members", "unknown-type", "no-selector", "two-selectors", "bad-exact-name", "bad-regex",
         "empty-label-selector", "in-without-values", "unknown-operator", "hypernode-by-regex", "own-member",
         "mixed-member-types"],
)
def test_admission_refuses_naming_the_field(spec, path, reason):
    with pytest.raises(ManifestError) as info:
        load_manifests(HEAD + spec, source="hn.yaml")
    assert info.value.path == path
    assert reason in info.value.reason
    assert "(HyperNode s0)" in str(info.value)


def test_a_hypernode_has_no_namespace():
    with pytest.raises(ManifestError, match="cluster-scoped"):
        load_manifests(HEAD.replace("{name: s0}", "{name: s0, namespace: default}")
                       + "spec: {tier: 1, members: [{type: Node, selector: {exactMatch: {name: n0}}}]}")
