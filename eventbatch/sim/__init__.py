"""The simulated cluster: an actuator and kubelet that answer decisions with
observations on a virtual clock, so the whole pipeline runs with no cluster."""
