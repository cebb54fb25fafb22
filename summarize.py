#!/usr/bin/env python3
"""Compare finished runs (e.g. one recipe over several seeds): a markdown table and a plot.

python summarize.py outputs/fast-seed0 outputs/fast-seed1 outputs/fast-seed2 --plot runs.png
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from resnet_tf.runs.summarize import main

    sys.exit(main())
