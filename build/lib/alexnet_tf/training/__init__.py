"""The training run: the loop, its steps, checkpoints, stop signals and TensorBoard summaries."""
