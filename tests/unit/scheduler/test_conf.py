"""The scheduler conf: Volcano's format in, clear errors for anything unusable."""

from __future__ import annotations

import pytest

from handlers.scheduler import DEFAULT_CONF, ConfError, SchedulerHandler, load_conf


def test_default_conf_is_volcanos():
    assert DEFAULT_CONF.actions == ("enqueue", "allocate", "backfill")
    assert [[p.name for p in tier.plugins] for tier in DEFAULT_CONF.tiers] == [
        ["priority", "gang", "conformance"],
        ["overcommit", "drf", "predicates", "proportion", "nodeorder", "binpack"],
    ]


def test_full_conf_with_switches_and_arguments():
    conf = load_conf(
        """
actions: "enqueue, allocate, backfill"
tiers:
- plugins:
  - name: priority
  - name: gang
    enablePreemptable: false
    enabledJobOrder: false
- plugins:
  - name: binpack
    arguments:
      binpack.weight: 10
      binpack.resources: nvidia.com/gpu
      binpack.resources.nvidia.com/gpu: 5
configurations:
- name: enqueue
  arguments:
    inqueue-timeout: 5m
""".replace("enablePreemptable", "enabledPreemptable")
    )
    gang = conf.tiers[0].plugins[1]
    assert not gang.enabled("job_order") and not gang.enabled("preemptable") and gang.enabled("job_ready")
    assert conf.tiers[1].plugins[0].arguments["binpack.weight"] == 10
    assert conf.action_arguments("enqueue") == {"inqueue-timeout": "5m"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('actions: "enqueue, allocate, elect"\ntiers: []', "action 'elect' is not available"),
        (
            'actions: "reserve"\ntiers: []\nconfigurations:\n- name: reserve\n  arguments: {starvation: forever}',
            "not a duration",
        ),
        ('actions: "enqueue, allocat"\ntiers: []', "unknown action 'allocat'"),
        ('actions: ""\ntiers: []', "actions is empty"),
        ('actions: "allocate"\ntiers:\n- plugins:\n  - name: gangg', "unknown plugin 'gangg'"),
        ('actions: "allocate"\ntiers:\n- plugins:\n  - name: tdm', "plugin 'tdm' is not available"),
        ('actions: "allocate"\ntiers:\n- plugins:\n  - name: gang\n    enabledJobOrdr: true', "unknown field"),
        ('actions: "allocate"\ntiers:\n- plugins:\n  - name: gang\n- plugins:\n  - name: gang', "appears twice"),
        ('tiers: []', "has no 'actions'"),
        (
            'actions: "allocate"\ntiers:\n- plugins:\n  - name: overcommit\n    arguments: {overcommit-factor: lots}',
            "not a number",
        ),
        (
            'actions: "allocate"\ntiers:\n- plugins:\n  - name: sla\n    arguments: {sla-waiting-time: soon}',
            "not a duration",
        ),
        (
            'actions: "allocate"\ntiers:\n- plugins:\n  - name: predicates\n'
            "    arguments: {runtimeClasses: {kata: {nodeSelector: 3}}}",
            "runtimeClasses.kata",
        ),
        (
            'actions: "enqueue"\ntiers: []\nconfigurations:\n- name: enqueue\n  arguments: {inqueue-timeout: later}',
            "not a duration",
        ),
        (
            'actions: "enqueue"\ntiers: []\nconfigurations:\n- name: allocate\n  arguments: {speed: max}',
            "unknown argument",
        ),
    ],
    ids=[
        "elect-later",
        "bad-starvation",
        "typo-action",
        "no-actions",
        "typo-plugin",
        "tdm-later",
        "typo-switch",
        "duplicate-plugin",
        "missing-actions",
        "bad-factor",
        "bad-sla",
        "bad-runtime-class",
        "bad-timeout",
        "unknown-action-argument",
    ],
)
def test_unusable_confs_are_refused_with_a_reason(text, message):
    with pytest.raises(ConfError, match=message):
        load_conf(text)


def test_handler_accepts_conf_text():
    handler = SchedulerHandler('actions: "allocate"\ntiers:\n- plugins:\n  - name: gang')
    assert handler.conf.actions == ("allocate",)
    assert handler.name == "scheduler"
