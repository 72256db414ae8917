"""`python -m alexnet_tf.predict`: its flags and work are in `alexnet_tf.evaluation.predict`."""

import sys

from alexnet_tf.evaluation.predict import main

if __name__ == "__main__":
    sys.exit(main())
