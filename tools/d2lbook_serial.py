"""``d2lbook``, evaluating notebooks one at a time, each on all devices.

d2lbook 1.0.3 evaluates two notebooks at once without GPUs (sharing the
cores) and gives one at most two GPUs, guessed from its code: both would
falsify experiments timed on a known number of workers.
"""
import sys

import d2lbook.resource as resource
from d2lbook.main import main


class SerialScheduler(resource.Scheduler):
    """d2lbook's scheduler with one slot: tasks run one after another."""

    def __init__(self, num_cpu_workers, num_gpu_workers):
        super().__init__(1, 0)

    def add(self, num_cpus, num_gpus, *args, **kwargs):
        return super().add(1, 0, *args, **kwargs)


def run_task(gpus, target, *args):
    """Run a task without restricting ``CUDA_VISIBLE_DEVICES``."""
    return target(*args)


if __name__ == '__main__':
    resource.Scheduler = SerialScheduler
    resource._target = run_task  # looked up when a task process starts
    sys.argv = ['d2lbook', *sys.argv[1:]]
    main()
