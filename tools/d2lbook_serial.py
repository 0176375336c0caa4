"""``d2lbook``, evaluating notebooks one at a time, each on all devices.

``python -m tools.d2lbook_serial build html`` is ``d2lbook build html``
but for two things of d2lbook 1.0.3 (``d2lbook/resource.py``) that would
falsify experiments timed on a known number of workers: without GPUs it
evaluates two notebooks at once, which share the cores; with GPUs it
gives a notebook at most two, guessed from its code, or none. Here one
notebook runs at a time and sees every GPU, as when run by hand.
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


def patch_d2lbook():
    resource.Scheduler = SerialScheduler
    resource._target = run_task  # looked up when a task process starts


if __name__ == '__main__':
    patch_d2lbook()
    sys.argv = ['d2lbook', *sys.argv[1:]]
    main()
