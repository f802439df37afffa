"""Volcano-style manifests used across the schema tests, as users write them."""

MPI_JOB = """\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata:
  name: lm-mpi-job
  labels:
    volcano.sh/job-type: MPI
spec:
  minAvailable: 3
  schedulerName: volcano
  plugins:
    ssh: []
    svc: []
    mpi: ["--master=mpimaster", "--worker=mpiworker", "--port=22"]
  policies:
    - event: PodEvicted
      action: RestartJob
  tasks:
    - replicas: 1
      name: mpimaster
      policies:
        - event: TaskCompleted
          action: CompleteJob
      template:
        spec:
          containers:
            - command:
                - /bin/sh
                - -c
                - |
                  mkdir -p /var/run/sshd; /usr/sbin/sshd;
                  mpiexec --allow-run-as-root --host ${MPI_HOST} -np 2 mpi_hello_world;
              image: volcanosh/example-mpi:0.0.3
              name: mpimaster
              ports:
                - containerPort: 22
                  name: mpijob-port
              workingDir: /home
              resources:
                requests:
                  cpu: "500m"
                limits:
                  cpu: 1
          restartPolicy: OnFailure
    - replicas: 2
      name: mpiworker
      template:
        spec:
          containers:
            - command: ["/bin/sh", "-c", "mkdir -p /var/run/sshd; /usr/sbin/sshd -D;"]
              image: volcanosh/example-mpi:0.0.3
              name: mpiworker
              ports:
                - containerPort: 22
                  name: mpijob-port
              workingDir: /home
              resources:
                requests: {cpu: "1", memory: 2Gi}
                limits: {cpu: "2", memory: 2Gi}
          restartPolicy: OnFailure
"""

PYTORCH_JOB = """\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata:
  name: pytorch-job
  namespace: ml
spec:
  minAvailable: 1
  schedulerName: volcano
  queue: research
  maxRetry: 5
  ttlSecondsAfterFinished: 600
  plugins:
    pytorch: ["--master=master", "--worker=worker", "--port=23456"]
  policies:
    - events: [PodEvicted, PodFailed]
      action: RestartJob
      timeout: 10m
    - exitCode: 137
      action: RestartTask
    - exitCode: 3
      action: AbortJob
  tasks:
    - replicas: 1
      name: master
      policies:
        - event: TaskCompleted
          action: CompleteJob
      template:
        spec:
          containers:
            - image: docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727
              imagePullPolicy: IfNotPresent
              name: master
              command: ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"]
              resources:
                limits:
                  nvidia.com/gpu: 1
          restartPolicy: OnFailure
    - replicas: 2
      name: worker
      template:
        spec:
          containers:
            - image: docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727
              imagePullPolicy: IfNotPresent
              name: worker
              command: ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"]
              resources:
                limits:
                  nvidia.com/gpu: 1
          restartPolicy: OnFailure
"""

SPARK_JOB = """\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata:
  name: spark-pi
spec:
  queue: default
  tasks:
    - name: driver
      replicas: 1
      template:
        spec:
          serviceAccountName: spark
          containers:
            - name: driver
              image: apache/spark:3.5.0
              args: ["driver", "--class", "org.apache.spark.examples.SparkPi"]
              resources:
                requests: {cpu: "1", memory: 1Gi}
    - name: executor
      replicas: 4
      dependsOn:
        name: [driver]
      template:
        spec:
          containers:
            - name: executor
              image: apache/spark:3.5.0
              args: ["executor"]
              resources:
                requests: {cpu: "2", memory: 4Gi}
    - name: reporter
      replicas: 1
      dependsOn:
        name: [driver, executor]
        iteration: any
      template:
        spec:
          containers:
            - name: reporter
              image: busybox:1.36
"""

QUEUE = """\
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata:
  name: research
spec:
  weight: 4
  reclaimable: false
  capability:
    cpu: 64
    memory: 256Gi
    nvidia.com/gpu: 8
  deserved:
    cpu: 32
    memory: 128Gi
  guarantee:
    resource:
      cpu: 8
      memory: 32Gi
"""

COMMAND = """\
apiVersion: bus.volcano.sh/v1alpha1
kind: Command
metadata:
  name: abort-lm-mpi-job
  namespace: default
action: AbortJob
target:
  apiVersion: batch.volcano.sh/v1alpha1
  kind: Job
  name: lm-mpi-job
reason: maintenance
"""

POD_GROUP = """\
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata:
  name: lm-mpi-job
spec:
  minMember: 3
  minTaskMember: {mpimaster: 1, mpiworker: 2}
  queue: research
  minResources: {cpu: "2500m", memory: 4Gi}
"""
