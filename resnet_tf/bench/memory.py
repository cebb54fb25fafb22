"""Peak memory of this process, as the benchmark records it.

Standard library only: a test loads this file alone in a small child process.
"""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """Peak resident memory of this process. Linux's VmHWM, because ru_maxrss also counts the
    memory of the parent process at the exec that started this one (here ~570 MB: the bench
    driver has imported TensorFlow), which would hide a smaller child's own peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
