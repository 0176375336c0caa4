"""The training scripts as processes: throughput, start-up, exit.

    .venv/bin/python -m benchmarks.throughput [--epochs 3] [--threads 1]

In the chapter's CPU set-up (LeNet, 28x28, here 20,000 training images; one
thread per trial as in tuning) each script runs for a few epochs as a real
process: its seconds per epoch (training and validation on 10,000 images)
next to the compute bound, the same work on floats already in memory, in
this process. Also: AlexNet's epoch on this CPU (an estimate), how long a
process that imported PyTorch takes to exit, and the median seconds of the
phases of a trial's start-up (its ``[start-up]`` line) over 5 processes.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

from benchmarks import common

SETUP = dict(model='lenet', image_size=28, n_train=20000)
HYPER = dict(learning_rate=0.05, momentum=0.9, batch_size=128)


def startup_phases(repeats=5):
    """Median seconds per start-up phase over ``repeats`` processes."""
    import hpo.setups
    import hpo.training
    constants = hpo.setups.choose_setup('full', n_gpus=0).constants
    args = [f'--{k}={v}' for k, v in dict(constants, max_epochs=1).items()]
    samples = [hpo.training.read_startup(common.script_outputs(
        common.SCRIPTS[1], args)[0]) for _ in range(repeats)]
    return {p: float(np.median([s[p] for s in samples]))
            for p in samples[0] if p != 'cpu'}


def exit_seconds(code):
    """Seconds from a new Python process's first output to its exit."""
    p = subprocess.Popen([sys.executable, '-c', code], cwd=common.ROOT,
                         stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    return common.timed(p.wait)


def teardown_seconds(repeats=3):
    """Seconds a process that imported PyTorch needs to exit, and with
    ``hpo.training.exit_now`` (the scripts' way), from its last output."""
    return {how: min(exit_seconds(code) for _ in range(repeats))
            for how, code in (
                ('normal exit', 'import torch; print(1, flush=True)'),
                ('exit_now()', 'import torch, hpo.training; '
                 'print(1, flush=True); hpo.training.exit_now()'))}


def compute_bound(epochs, threads):
    """Seconds of the best epoch of the same work on in-memory floats."""
    import torch
    import hpo.data
    import hpo.training
    torch.set_num_threads(threads)
    (xtr, ytr), (xva, yva), _ = hpo.data.load_data(
        SETUP['image_size'], SETUP['n_train'])
    xtr, xva = xtr.float() / 255, xva.float() / 255
    model = hpo.training.build_model(SETUP['model'], SETUP['image_size'],
                                     'cpu')
    step = common.sgd_step(model, HYPER['learning_rate'], HYPER['momentum'])
    bs = HYPER['batch_size']

    def epoch():
        model.train()
        for i in range(0, len(ytr), bs):
            step(xtr[i:i + bs], ytr[i:i + bs])
        model.eval()
        with torch.no_grad():
            for i in range(0, len(yva), 1000):
                model(xva[i:i + 1000])
    return min(common.timed(epoch) for _ in range(epochs))


def alexnet_epoch_estimate(threads, batches=2, batch_size=128):
    """Seconds per batch (the fastest of ``batches`` SGD steps after a
    warm-up step) and minutes per epoch of 50,000 images of AlexNet."""
    import torch
    import hpo.training
    torch.set_num_threads(threads)
    step = common.sgd_step(hpo.training.build_model('alexnet', 224, 'cpu'),
                           0.01, 0.9)
    x = torch.rand(batch_size, 1, 224, 224)
    y = torch.randint(0, 10, (batch_size,))
    step(x, y)
    per_batch = min(common.timed(lambda: step(x, y))
                    for _ in range(batches))
    return per_batch, per_batch * 50000 / batch_size / 60


def rows(epochs=3, threads=1):
    """Measure; print and return the rows of the results."""
    n = SETUP['n_train']
    bound = compute_bound(epochs, threads)
    per_batch, minutes = alexnet_epoch_estimate(os.cpu_count())
    result = [('AlexNet 224x224, all cores, min/epoch (estimate)',
               f'{minutes:.0f}')]
    result += [(f'process exit after last output, {how}', f'{t:.2f} s')
               for how, t in teardown_seconds().items()]
    result.append(('compute bound, s/epoch', f'{bound:.2f}'))
    args = [f'--{k}={v}' for k, v in {**SETUP, **HYPER}.items()]
    for script in common.SCRIPTS:
        r = common.script_times(script, args, epochs, threads=threads)[0]
        result += [(f'{script}, s/epoch of {n} images (img/s)',
                    f'{r["epoch"]:.2f} ({n / r["epoch"]:.0f})'),
                   (f'{script}, share of bound',
                    f'{100 * bound / r["epoch"]:.0f}%')]
        print(f'{script}: first report after {r["first"]:.1f} s')
    phases = startup_phases()
    result = [('throughput', *row) for row in result] + [(
        'startup', 'trial start-up by phase, median of 5 processes (CPU '
        'set-up, 1 thread)', ', '.join(f'{k} {v:.2f} s'
                                       for k, v in phases.items()))]
    print(f'CPU set-up: {SETUP}, {HYPER}, {threads} thread(s); AlexNet '
          f'{per_batch:.2f} s per batch of 128', *common.table(result),
          sep='\n')
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args(argv)
    return rows(args.epochs, args.threads)


if __name__ == '__main__':
    main()
