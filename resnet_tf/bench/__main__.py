"""python -m resnet_tf.bench ... (see resnet_tf/bench/cli.py)."""

import sys

from resnet_tf.bench.cli import main

sys.exit(main())
