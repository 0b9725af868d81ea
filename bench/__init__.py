"""Benchmarks that print numbers: models, pipeline, temporal, live, cluster."""
