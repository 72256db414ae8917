"""The names of AlexNet's eight weight layers, and the initializer seed each draws from."""

WEIGHT_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


def layer_seed(seed, name):
    """The initializer seed of weight layer `name` (one of WEIGHT_LAYERS) in a net built
    with `seed` (None stays None). One seed per layer: Keras' seeded initializers draw
    the same stream for every layer given the same seed."""
    return None if seed is None else seed * 100 + WEIGHT_LAYERS.index(name) * 10
