"""From files to batches: data layouts, file checks, image ops, statistics, the tf.data pipeline."""
