"""The eventbatch runtime: log ports and backends, handler runner, clock,
settings, composition root, cluster adapters and the CLI."""

__version__ = "0.1.0"
