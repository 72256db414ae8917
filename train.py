"""Trains the paper's AlexNet: `python train.py [--data_dir DIR] [--model_dir DIR] ...`.

The command itself is `alexnet_tf/train.py` (installed as `alexnet-train`); this file
keeps `python train.py` working from the repository's root.
"""

from alexnet_tf.train import main

if __name__ == "__main__":
    main()
