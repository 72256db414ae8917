"""The network: the LRN layer, the two-tower layers, `build_alexnet`, the paper's optimizer."""
