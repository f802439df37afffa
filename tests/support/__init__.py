"""Helpers shared by the tests and the benchmarks (a local Kafka-protocol broker)."""
