"""Benchmarks: `python -m alexnet_tf.bench <subcommand> ... [--json]`, see `__main__`."""
