"""Small manifests and scenarios that several test modules run as they are.

Where it sits: test data only; the modules import these instead of keeping copies.
"""

# A scenario of one node, the default queue and one 30 s job: finishes cleanly.
ONE_SHORT_JOB = """\
nodes:
- {prefix: node-, count: 1, allocatable: {cpu: 4, memory: 16Gi}}
queues:
- {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, spec: {weight: 1}}
workload:
- at: 0s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {name: short, namespace: default}
    spec:
      minAvailable: 1
      tasks:
      - name: main
        replicas: 1
        template:
          metadata: {annotations: {eventbatch.io/sim-duration: 30s}}
          spec: {containers: [{name: c, image: x, resources: {requests: {cpu: "1", memory: 1Gi}}}]}
until: all-finished
"""

QUEUE = "apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: default}\nspec: {weight: 1}\n"
JOB = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: train}
spec:
  minAvailable: 2
  tasks:
    - name: w
      replicas: 2
      template:
        spec: {containers: [{name: c, image: busybox, resources: {requests: {cpu: 1}}}]}
"""
