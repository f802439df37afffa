"""The ordered event log: the port, its codec, and the backends chosen by URL."""
