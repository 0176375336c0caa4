"""Run ``d2lbook`` with notebooks evaluated one at a time on all devices.

``python -m tools.d2lbook_serial build html`` is ``d2lbook build html``
with two changes to how d2lbook 1.0.3 evaluates notebooks
(``d2lbook/resource.py``), both of which would falsify this book's
experiments, which measure wall-clock time on a known number of workers:

* Without GPUs, d2lbook evaluates two notebooks at the same time (a fixed
  number). Two tuning experiments would then share the cores, and every
  trial would run at a fraction of its real speed. Here, one notebook runs
  at a time and has the whole machine.
* With GPUs, d2lbook gives a notebook at most two of them, guessed from
  patterns in its code, and hides all GPUs (``CUDA_VISIBLE_DEVICES=""``)
  from a notebook in which it finds none of its patterns. Here, every
  notebook sees every GPU, as it would when run by hand, and picks its
  set-up from them.

``tools.build_book`` uses this unless it is given ``--parallel-eval``.
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
