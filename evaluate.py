"""Scores a trained AlexNet: `python evaluate.py --model_dir DIR [--data_dir DIR] ...`.

The command itself is `alexnet_tf/evaluate.py` (installed as `alexnet-evaluate`); this
file keeps `python evaluate.py` working from the repository's root.
"""

from alexnet_tf.evaluate import main

if __name__ == "__main__":
    main()
