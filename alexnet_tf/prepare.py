"""`python -m alexnet_tf.prepare`: its flags and work are in `alexnet_tf.data.records`."""

import sys

from alexnet_tf.data.records import main

if __name__ == "__main__":
    sys.exit(main())
