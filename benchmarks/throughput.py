"""Training throughput of both scripts next to the compute bound.

For the chapter's CPU set-up (LeNet-style CNN, 28x28, 20,000 training and
10,000 validation images, one thread per trial as during tuning), this runs
each training script for a few epochs as a real process and measures its
seconds per epoch (training and validation). The compute bound is the same
work on tensors already in memory as floats, in this process. Also: an
estimate of AlexNet's epoch on this CPU, and how long a process that
imported PyTorch takes to exit.

    .venv/bin/python -m benchmarks.throughput [--epochs 3] [--threads 1]
"""
import argparse
import os
import subprocess
import sys

from benchmarks import common

SETUP = dict(model='lenet', image_size=28, n_train=20000)
HYPER = dict(learning_rate=0.05, momentum=0.9, batch_size=128)
SCRIPTS = ('train_script.py', 'train_script_report_eachepoch.py')


def teardown_seconds(repeats=3):
    """Seconds a process that imported PyTorch needs to exit, and with
    ``hpo.training.exit_now`` (the scripts' way), from its last output."""
    result = {}
    for how, code in (('normal exit', 'import torch; print(1, flush=True)'),
                      ('exit_now()', 'import torch, hpo.training; '
                       'print(1, flush=True); hpo.training.exit_now()')):
        times = []
        for _ in range(repeats):
            p = subprocess.Popen([sys.executable, '-c', code],
                                 cwd=common.ROOT, stdout=subprocess.PIPE,
                                 text=True)
            p.stdout.readline()
            times.append(common.timed(p.wait))
        result[how] = min(times)
    return result


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
    """Seconds per batch and minutes per epoch (50,000 images) of AlexNet
    at 224x224 on the CPU: the fastest of ``batches`` SGD steps after one
    warm-up step, scaled to an epoch."""
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
    """Measure; print a line per result; return the results' rows."""
    n = SETUP['n_train']
    bound = compute_bound(epochs, threads)
    print(f'CPU set-up: {SETUP}, {HYPER}, {threads} thread(s), '
          f'{os.cpu_count()} cores; per epoch: training on {n} images and '
          'validation on 10,000, best of the epochs after the first')
    per_batch, minutes = alexnet_epoch_estimate(os.cpu_count())
    result = [('AlexNet 224x224, all cores, min/epoch (estimate)',
               f'{minutes:.0f}')]
    result += [(f'process exit after last output, {how}', f'{t:.2f} s')
               for how, t in teardown_seconds().items()]
    result.append(('compute bound, s/epoch', f'{bound:.2f}'))
    args = [f'--{k}={v}' for k, v in {**SETUP, **HYPER}.items()]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               CUDA_VISIBLE_DEVICES='')
    for script in SCRIPTS:
        r = common.script_times(script, args, epochs, env=env)[0]
        t = r['epoch']
        result += [(f'{script}, s/epoch of {n} images (img/s)',
                    f'{t:.2f} ({n / t:.0f})'),
                   (f'{script}, share of bound', f'{100 * bound / t:.0f}%')]
        print(f'{script}: first report after {r["first"]:.1f} s (process '
              'start-up, data loading and one epoch)')
    for measure, value in result:
        print(f'{measure}: {value}')
    print(f'(AlexNet: {per_batch:.2f} s per batch of 128)')
    return [('throughput', measure, value) for measure, value in result]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args(argv)
    return rows(args.epochs, args.threads)


if __name__ == '__main__':
    main()
