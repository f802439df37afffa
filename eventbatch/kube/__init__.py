"""The ``kube`` cluster adapter: eventbatch running against a Kubernetes API server.

Where it sits: the edges of the pipeline when ``--cluster kube``. ``watch``
turns what the API server holds (the project's CRDs, nodes, priority classes,
eventbatch's pods) into intents and observations on the log; ``actuator``
performs the decisions on the log (create, bind and delete pods, services,
config maps, secrets); ``status`` writes Job, Queue and PodGroup status back;
``leader`` makes sure only one replica acts; ``crds`` generates the
CustomResourceDefinitions from ``schemas``.
"""
