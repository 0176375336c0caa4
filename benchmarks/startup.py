"""A trial's start-up, phase by phase, in the chapter's CPU set-up.

    .venv/bin/python -m benchmarks.startup [--repeats 5]

Starts ``train_script_report_eachepoch.py`` as a new process several
times (one thread, one epoch, as a trial of the CPU set-up) and prints the
median seconds of each phase that the script reports on its
``[start-up]`` line: Python and PyTorch imported, Syne Tune imported,
data in memory, network built, and the total from the process's start.
"""
import argparse
import os

import numpy as np

from benchmarks import common

PHASES = ('python_and_torch', 'syne_tune', 'data', 'model', 'total')


def startup_phases(repeats=5):
    """Median seconds per phase over ``repeats`` fresh processes."""
    import hpo.setups
    import hpo.training
    constants = hpo.setups.choose_setup('full', n_gpus=0).constants
    args = [f'--{k}={v}' for k, v in dict(constants, max_epochs=1).items()]
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    samples = [hpo.training.read_startup(common.script_outputs(
        'train_script_report_eachepoch.py', args, env=env)[0])
        for _ in range(repeats)]
    return {p: float(np.median([s[p] for s in samples])) for p in PHASES}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--repeats', type=int, default=5)
    args = p.parse_args(argv)
    for phase, seconds in startup_phases(args.repeats).items():
        print(f'{phase:>16}: {seconds:.3f} s')


if __name__ == '__main__':
    main()
