"""Training throughput of both scripts next to the compute bound.

For the chapter's CPU set-up (LeNet-style CNN, 28x28, 20,000 training and
10,000 validation images, one thread per trial as during tuning), this runs
each training script for a few epochs as a real process and measures its
seconds per epoch (training and validation, from the elapsed times the
script reports). The compute bound is the same work done on tensors
already in memory as floats, in this process: forward, backward and SGD
step over the training images, then a forward pass over the validation
images. The ratio bound/script says how close the scripts' input pipeline
and loop come to it.

    .venv/bin/python benchmarks/throughput.py [--epochs 3] [--threads 1]
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP = dict(model='lenet', image_size=28, n_train=20000)
HYPER = dict(learning_rate=0.05, momentum=0.9, batch_size=128)


def script_reports(script, epochs, threads):
    """The metrics the script reports in one run of ``epochs`` epochs."""
    from syne_tune.report import retrieve
    args = [f'--{k}={v}' for k, v in {**SETUP, **HYPER}.items()]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, str(ROOT / script), *args,
                          f'--max_epochs={epochs}'], env=env, check=True,
                         capture_output=True, text=True).stdout
    return retrieve(out.splitlines())


def script_epoch_times(script, epochs, threads):
    """Seconds per epoch after the first, and seconds to the first report.

    From the ``elapsed_time`` the script reports. A script that reports
    only after its last epoch (``train_script.py``) also runs for one
    epoch; the difference gives the mean time of the later epochs.
    """
    reports = script_reports(script, epochs, threads)
    times = [r['elapsed_time'] for r in reports]
    if len(times) == epochs:
        return [b - a for a, b in zip(times, times[1:])], times[0]
    first = script_reports(script, 1, threads)[-1]['elapsed_time']
    return [(times[-1] - first) / (epochs - 1)], first


def teardown_seconds(repeats=3):
    """Seconds a process that imported PyTorch needs to exit, and with
    ``hpo.training.exit_now`` (the scripts' way), from its last output."""
    result = {}
    for how, code in (('normal exit', 'import torch; print(1, flush=True)'),
                      ('exit_now()', 'import torch, hpo.training; '
                       'print(1, flush=True); hpo.training.exit_now()')):
        times = []
        for _ in range(repeats):
            p = subprocess.Popen([sys.executable, '-c', code], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True)
            p.stdout.readline()
            tik = time.perf_counter()
            p.wait()
            times.append(time.perf_counter() - tik)
        result[how] = min(times)
    return result


def compute_bound(epochs, threads):
    """Seconds per epoch of the same work on in-memory float tensors."""
    import torch
    from torch.nn import functional as F
    import hpo.data
    import hpo.training
    torch.set_num_threads(threads)
    (xtr, ytr), (xva, yva), _ = hpo.data.load_data(
        SETUP['image_size'], SETUP['n_train'])
    xtr, xva = xtr.float() / 255, xva.float() / 255
    model = hpo.training.build_model(SETUP['model'], SETUP['image_size'],
                                     'cpu')
    opt = hpo.training.SGD(model.parameters(), HYPER['learning_rate'],
                           HYPER['momentum'])
    bs, times = HYPER['batch_size'], []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for i in range(0, len(ytr), bs):
            loss = F.cross_entropy(model(xtr[i:i + bs]), ytr[i:i + bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for i in range(0, len(yva), 1000):
                model(xva[i:i + 1000])
        times.append(time.perf_counter() - start)
    return times


def alexnet_epoch_estimate(threads, batches=2, batch_size=128):
    """Minutes per epoch (50,000 images) of AlexNet at 224x224 on CPU.

    Times forward, backward and SGD step on ``batches`` minibatches after
    one warm-up batch, and scales to an epoch.
    """
    import torch
    from torch.nn import functional as F
    import hpo.training
    torch.set_num_threads(threads)
    model = hpo.training.build_model('alexnet', 224, 'cpu')
    opt = hpo.training.SGD(model.parameters(), 0.01, 0.9)
    x = torch.rand(batch_size, 1, 224, 224)
    y = torch.randint(0, 10, (batch_size,))
    times = []
    for _ in range(batches + 1):
        tik = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - tik)
    per_batch = min(times[1:])
    return per_batch, per_batch * 50000 / batch_size / 60


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args(argv)
    bound = compute_bound(args.epochs, args.threads)
    best_bound = min(bound)
    n = SETUP['n_train']
    print(f'CPU set-up: {SETUP}, {HYPER}, {args.threads} thread(s), '
          f'{os.cpu_count()} cores')
    print(f'{"what":36s} {"s/epoch":>8s} {"train img/s":>12s} '
          f'{"of bound":>9s}')
    print(f'{"compute bound (tensors in memory)":36s} {best_bound:8.2f} '
          f'{n / best_bound:12.0f} {"100%":>9s}')
    rows = {}
    for script in ('train_script.py', 'train_script_report_eachepoch.py'):
        epoch_times, startup = script_epoch_times(script, args.epochs,
                                                  args.threads)
        t = min(epoch_times)
        rows[script] = dict(seconds_per_epoch=t, startup=startup)
        print(f'{script:36s} {t:8.2f} {n / t:12.0f} '
              f'{100 * best_bound / t:8.0f}%')
    print('(per epoch: training on 20,000 images plus validation on '
          '10,000; best of the epochs after the first)')
    for script, r in rows.items():
        print(f'{script}: first report after {r["startup"]:.1f} s '
              '(process start-up, data loading and one epoch)')
    per_batch, minutes = alexnet_epoch_estimate(os.cpu_count())
    print(f'AlexNet 224x224 on this CPU ({os.cpu_count()} threads): '
          f'{per_batch:.2f} s per batch of 128, about {minutes:.0f} min '
          'per epoch of 50,000 images')
    teardown = teardown_seconds()
    print('process exit after the last output: ' + ', '.join(
        f'{how} {t:.2f} s' for how, t in teardown.items()))
    teardown['alexnet_minutes_per_epoch'] = minutes
    return rows, best_bound, teardown


if __name__ == '__main__':
    main()
