"""``eventbatch trace import`` then ``simulate``: fractional GPUs are placed per device, and ``why`` says so."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_simulate import eventbatch

NODES = "sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0000,32000,262144,2,V100M32\n"
PODS = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
    "openb-pod-0000,1000,1024,1,600,,LS,Succeeded,0,1000,0\n"
    "openb-pod-0001,1000,1024,1,600,,LS,Succeeded,10,1010,10\n"
    "openb-pod-0002,1000,1024,1,600,,LS,Succeeded,20,1020,20\n"
)


def test_three_600m_trace_pods_on_a_two_gpu_node_the_third_waits_and_why_says_so(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "openb_node_list_all_node.csv").write_text(NODES)
    (trace / "openb_pod_list_default.csv").write_text(PODS)
    scenario = tmp_path / "openb.json"
    imported = eventbatch("trace", "import", str(trace), "-o", str(scenario))
    assert imported.returncode == 0, imported.stderr
    loaded = json.loads(scenario.read_text())
    loaded["until"] = "5m"  # stop while the third pod waits for a device
    scenario.write_text(json.dumps(loaded))
    log = tmp_path / "sim.db"
    result = eventbatch("simulate", str(scenario), "--json", log=log)
    assert result.returncode == 0, result.stderr[-3000:]
    bound = {p["pod"] for p in json.loads(result.stdout)["pods"] if p["bound"] is not None}
    # 1.8 GPUs asked of 2: the node total would take all three; one device each holds one 0.6.
    assert bound == {"openb/openb-pod-0000-main-0", "openb/openb-pod-0001-main-0"}
    why = eventbatch("why", "openb/openb-pod-0002", log=log)
    assert why.returncode == 0, why.stderr
    assert "insufficient GPU on any one device (free 0.4 + 0.4 on 2 GPUs; request 0.6 of one GPU)" in why.stdout
    audit = eventbatch("audit", "job", "openb/openb-pod-0001", log=log)
    assert "openb/openb-pod-0001-main-0 -> openb-node-0000 GPU 1" in audit.stdout
