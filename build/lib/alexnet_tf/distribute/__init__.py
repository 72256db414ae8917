"""Where the work runs: devices, tf.distribute strategies and the towers' placement."""
