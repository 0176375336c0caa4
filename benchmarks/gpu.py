"""GPU throughput of the chapter's GPU set-up, measured where a GPU exists.

    .venv/bin/python benchmarks/gpu.py [--epochs 3] [--results PATH]

For the GPU set-up (AlexNet on 224x224 inputs, 8,000 training and 10,000
validation images per epoch, ``hpo.setups.GPU_CONSTANTS``) this measures:

* on every visible GPU, the bare rate of the model: forward, backward and
  SGD step on a batch of 128 images already on the GPU as floats, and the
  forward rate at the validation batch size; in float32 (twice, to show
  the run-to-run noise) and with the two options the scripts leave off
  until measured (channels-last, bfloat16 autocast); peak memory of a
  training step and a validation batch;
* on the first GPU, both training scripts as real processes: seconds per
  epoch (training and validation), images per second and the share of the
  bare rate they reach, their start-up time, and the validation error
  after the run with and without the options (same seed), so that an
  option is adopted only if it is faster *and* keeps the error;
* 1 to 4 trials sharing the first GPU at the same time: seconds per epoch
  of each, images per second of all together and their mean validation
  error, to decide how many trials should share one GPU
  (``hpo.setups.TRIALS_PER_GPU``: 2 on a one-GPU machine, not measured);
* for each section, the projected number of trials per 10 minutes with the
  workers ``choose_setup`` gives this machine, computed from the measured
  start-up and epoch times: random search runs every trial for 27 epochs; ASHA
  with eta = 3 and rungs 1, 3, 9 runs 1 + 2/3 + 6/9 + 18/27 = 3 epochs per
  trial on average once its rungs are filled. These two rows are projections,
  not measurements, and say so.

The rows go into ``benchmarks/results.md`` between two marker lines (the
rest of the file, written by ``benchmarks/run_all.py``, is kept; a rerun
replaces the block). On a machine without a usable GPU the block holds one
row, "not measured: no GPU", and the command ends within seconds.
``--cpu-check`` runs the same pipeline on the CPU with LeNet and tiny
sizes, to check the code on machines without a GPU; it writes nothing.
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from syne_tune.report import retrieve

from benchmarks import results_block


ROOT = Path(__file__).resolve().parent.parent

RESULTS = results_block.RESULTS
NO_GPU = 'not measured: no GPU'
SCRIPTS = ('train_script.py', 'train_script_report_eachepoch.py')
HYPER = dict(learning_rate=0.01, momentum=0.9, batch_size=128)
# 'float32, again' is the same run once more: cuDNN's autotuned
# algorithms are not deterministic, and the difference between the two
# float32 runs says how much of a difference between options is noise.
OPTIONS = {'float32': [], 'float32, again': [],
           'channels-last': ['--channels_last'],
           'bf16 autocast': ['--bf16'],
           'channels-last + bf16': ['--channels_last', '--bf16']}
SECONDS = 600            # the projection's horizon: 10 minutes
ASHA_EPOCHS = 1 + 2 / 3 + 6 / 9 + 18 / 27  # eta 3, rungs 1, 3, 9; max 27


class Plan:
    """What to measure: the GPU set-up, or a tiny CPU check of the code."""
    def __init__(self, cpu_check, epochs):
        import hpo.setups
        import hpo.training
        self.cpu_check = cpu_check
        if cpu_check:
            self.device_type = 'cpu'
            self.constants = dict(hpo.setups.CPU_CONSTANTS, n_train=200)
            self.epochs, self.steps, self.max_trials = 2, 3, 2
            self.options = {'float32': []}
        else:
            self.device_type = 'cuda'
            self.constants = dict(hpo.setups.GPU_CONSTANTS)
            self.epochs, self.steps, self.max_trials = epochs, 20, 4
            self.options = OPTIONS
        self.full_epochs = self.constants['max_epochs']
        self.val_batch = hpo.training.VAL_BATCH[self.device_type]


# ---------------------------------------------------------------------------
# in-process: the bare rate of the model, and its memory


def sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def bare_rates(plan, device, option):
    """Images/s of training steps and of validation batches; peak memory.

    The inputs are already floats of the final size on ``device``: no data
    handling at all, only the model's arithmetic. Returns
    ``(train_rate, forward_rate, peak_bytes_or_None)``.
    """
    import torch
    from torch.nn import functional as F
    import hpo.training
    size, bs = plan.constants['image_size'], HYPER['batch_size']
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    model = hpo.training.build_model(plan.constants['model'], size, device)
    channels_last, bf16 = ('channels-last' in option, 'bf16' in option)
    if channels_last or bf16:
        model = hpo.training.GPUOptions(model, channels_last, bf16)
    opt = hpo.training.SGD(model.parameters(), HYPER['learning_rate'],
                           HYPER['momentum'])
    x = torch.rand(bs, 1, size, size, device=device)
    y = torch.randint(0, 10, (bs,), device=device)
    model.train()

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for _ in range(3):  # warm-up: cuDNN autotuning, lazy allocations
        step()
    sync(device)
    tik = time.perf_counter()
    for _ in range(plan.steps):
        step()
    sync(device)
    train_rate = plan.steps * bs / (time.perf_counter() - tik)
    model.eval()
    xv = torch.rand(plan.val_batch, 1, size, size, device=device)
    with torch.no_grad():
        model(xv)
        sync(device)
        tik = time.perf_counter()
        for _ in range(max(2, plan.steps // 4)):
            model(xv)
        sync(device)
        forward_rate = (max(2, plan.steps // 4) * plan.val_batch
                        / (time.perf_counter() - tik))
    peak = None
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device)
        del model, opt, x, y, xv
        torch.cuda.empty_cache()  # leave the memory to the scripts
    return train_rate, forward_rate, peak


def epoch_bound(plan, train_rate, forward_rate):
    """Seconds of an epoch at the bare rates (training + validation)."""
    import hpo.data
    return (plan.constants['n_train'] / train_rate
            + hpo.data.NUM_VAL / forward_rate)


# ---------------------------------------------------------------------------
# the scripts, as real processes


def script_command(plan, script, options, epochs, seed=0):
    args = [f'--{k}={v}' for k, v in {**plan.constants, **HYPER}.items()
            if k != 'max_epochs']
    return [sys.executable, str(ROOT / script), *args,
            f'--max_epochs={epochs}', f'--seed={seed}', *options]


def script_env(plan, gpu):
    """The environment of a script run on this process's ``gpu``-th GPU.
    """
    env = dict(os.environ, OMP_NUM_THREADS='1')
    visible = os.environ.get('CUDA_VISIBLE_DEVICES', '').strip()
    physical = visible.split(',')[gpu].strip() if visible else str(gpu)
    env['CUDA_VISIBLE_DEVICES'] = '' if plan.cpu_check else physical
    return env


def summarize_run(stdout, one_epoch_stdout=None):
    """Seconds per epoch, start-up and final error, from the reports.

    With a report per epoch: the fastest epoch after the first. A script
    that reports only after its last epoch (``train_script.py``) is also
    run for one epoch (``one_epoch_stdout``); the difference of the two
    runs' elapsed times gives the mean time of the later epochs.
    """
    reports = {m['epoch']: m for m in retrieve(stdout.splitlines())}
    if not reports:
        raise RuntimeError('no report in the output:\n' + stdout[-2000:])
    last = reports[max(reports)]
    if len(reports) > 1:
        times = [reports[e]['elapsed_time'] for e in sorted(reports)]
        epoch = min(b - a for a, b in zip(times, times[1:]))
        startup = times[0] - epoch
    elif one_epoch_stdout is not None and last['epoch'] > 1:
        first = retrieve(one_epoch_stdout.splitlines())[-1]
        epoch = ((last['elapsed_time'] - first['elapsed_time'])
                 / (last['epoch'] - 1))
        startup = first['elapsed_time'] - epoch
    else:
        raise RuntimeError('need at least 2 epochs to time one:\n' + stdout)
    return dict(epoch=epoch, startup=startup, error=last['validation_error'])


def run_scripts(plan, gpu, script, options, k):
    """Run ``k`` copies of ``script`` at once on ``gpu``; their summaries."""
    outs = run_at_once(plan, gpu, script, options, k, plan.epochs)
    if script == 'train_script.py':  # one report, after the last epoch
        ones = run_at_once(plan, gpu, script, options, k, 1)
        return [summarize_run(out, one) for out, one in zip(outs, ones)]
    return [summarize_run(out) for out in outs]


def run_at_once(plan, gpu, script, options, k, epochs):
    """The standard outputs of ``k`` copies of ``script`` run at once."""
    procs = [subprocess.Popen(
                 script_command(plan, script, options, epochs, seed=i),
                 cwd=ROOT, env=script_env(plan, gpu), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
             for i in range(k)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=3600)
            if p.returncode != 0:
                raise RuntimeError(f'{script} failed:\n{err[-3000:]}')
            if not plan.cpu_check and 'device: cuda:0' not in out:
                raise RuntimeError(f'{script} did not train on the GPU:\n'
                                   + out[-2000:])
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


# ---------------------------------------------------------------------------


def gpu_status():
    """``(names, reason)``: the GPUs PyTorch can use, or why there are none.
    """
    import torch
    import hpo.setups
    hardware = hpo.setups.detect_hardware('auto')
    if hardware.gpus:
        return [torch.cuda.get_device_name(i)
                for i in range(len(hardware.gpus))], None
    return [], (f'nvidia-smi lists GPUs; PyTorch: {hardware.problem}'
                if hardware.problem else 'no nvidia-smi or it lists no GPU')


def gib(n_bytes):
    return f'{n_bytes / 2 ** 30:.2f} GiB'


def measure(plan, names):
    """All rows of the GPU block (or of the CPU check)."""
    import torch
    rows = []
    devices = ([torch.device('cpu')] if plan.cpu_check else
               [torch.device(f'cuda:{i}') for i in range(len(names))])
    bound = {}
    for i, device in enumerate(devices):
        label = 'CPU check' if plan.cpu_check else f'GPU {i} ({names[i]})'
        for option in plan.options:
            tr, fw, peak = bare_rates(plan, device, option)
            if i == 0:
                bound[option] = epoch_bound(plan, tr, fw)
            what = f'bare rate, {option}: train img/s, validation img/s'
            value = f'{tr:.0f}, {fw:.0f}'
            if peak is not None:
                what, value = what + ', peak memory', f'{value}, {gib(peak)}'
            rows.append((label, what, value))
        print(*rows[-len(plan.options):], sep='\n', flush=True)
    n_train = plan.constants['n_train']
    first = 'CPU check' if plan.cpu_check else 'GPU 0'
    runs = {}
    for script in SCRIPTS:
        for option, flags in plan.options.items():
            r = run_scripts(plan, 0, script, flags, 1)[0]
            runs[script, option] = r
            rows.append((first, f'{script}, {option}: s/epoch (train '
                         f'img/s), share of bare rate',
                         f'{r["epoch"]:.2f} ({n_train / r["epoch"]:.0f}), '
                         f'{100 * bound[option] / r["epoch"]:.0f}%'))
            rows.append((first, f'{script}, {option}: start-up s, '
                         f'validation error after {plan.epochs} epochs',
                         f'{r["startup"]:.1f}, {r["error"]:.4f}'))
            print(*rows[-2:], sep='\n', flush=True)
    sharing, slowdown = sharing_rows(plan, runs[SCRIPTS[1], 'float32'],
                                     first, n_train)
    return rows + sharing + projection_rows(plan, runs, names, slowdown)


def sharing_rows(plan, alone, first, n_train):
    """1 to ``plan.max_trials`` trials sharing the first GPU: rows, and
    how much slower each trial's epochs are with k trials (k -> factor).
    ``alone``: the run of one trial by itself."""
    rows, slowdown = [], {}
    for k in range(1, plan.max_trials + 1):  # k = 1: the run above
        what = (f'{k} trial(s) sharing it: s/epoch of the slowest, train '
                'img/s of all, vs one alone, mean validation error')
        try:
            rs = ([alone] if k == 1 else
                  run_scripts(plan, 0, SCRIPTS[1], [], k))
        except RuntimeError as e:  # out of memory is an answer too
            last = str(e).strip().splitlines()[-1][:120].replace('|', '/')
            rows.append((first, what, f'failed: {last}'))
            continue
        worst = max(r['epoch'] for r in rs)
        together = sum(n_train / r['epoch'] for r in rs)
        error = sum(r['error'] for r in rs) / len(rs)
        slowdown[k] = worst / alone['epoch']
        rows.append((first, what, f'{worst:.2f}, {together:.0f}, '
                     f'{together * alone["epoch"] / n_train:.2f}x, '
                     f'{error:.4f}'))
        print(rows[-1], flush=True)
    return rows, slowdown


def projection_rows(plan, runs, names, slowdown):
    """Trials per 10 minutes of each section with the workers that
    ``choose_setup`` gives this machine; epochs as slow as the sharing
    runs measured for that many trials per GPU (not measured itself)."""
    import hpo.setups
    setup = hpo.setups.choose_setup('full', n_gpus=max(1, len(names)))
    workers = 1 if plan.cpu_check else setup.n_workers
    factor = 1.0 if plan.cpu_check else slowdown.get(
        setup.trials_per_gpu, float('nan'))
    rows = []
    for script, section, epochs in (
            ('train_script.py', 'rs-async', plan.full_epochs),
            ('train_script_report_eachepoch.py', 'sh-async', ASHA_EPOCHS)):
        r = runs[script, 'float32']
        per_trial = r['startup'] + epochs * r['epoch'] * factor
        rows.append(('projection', f'{section}: trials per 10 min on '
                     f'{workers} worker(s) (not measured: {epochs:.3g} '
                     'epochs per trial from the times above, batch size '
                     f'{HYPER["batch_size"]})',
                     f'{workers * SECONDS / per_trial:.1f}'))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=3,
                   help='epochs per script run (timed: all but the first)')
    p.add_argument('--results', type=Path, default=RESULTS,
                   help='the results file whose GPU block is rewritten')
    p.add_argument('--cpu-check', action='store_true',
                   help='run the pipeline on the CPU with LeNet, tiny '
                        'sizes; prints, writes nothing')
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error('--epochs must be at least 2 (the first is not timed)')
    started = time.monotonic()
    plan = Plan(args.cpu_check, args.epochs)
    if args.cpu_check:
        rows = measure(plan, [])
        print('\n'.join(results_block.table(rows)))
        print('(a check of the code on the CPU: no GPU numbers)')
        return rows
    names, reason = gpu_status()
    today = datetime.date.today()
    if not names:
        print(f'No usable GPU on this machine ({reason}): nothing to '
              f'measure. Writing "{NO_GPU}" into {args.results}.')
        results_block.write(
            'gpu', 'GPU set-up',
            f'Made by `python benchmarks/gpu.py` on {today}: no usable GPU '
            f'on this machine ({reason}), so no GPU number in this file '
            'is a measurement.', [('gpu', NO_GPU, '-')], args.results)
        return []
    import torch
    rows = measure(plan, names)
    minutes = (time.monotonic() - started) / 60
    results_block.write(
        'gpu', 'GPU set-up',
        f'Made by `python benchmarks/gpu.py` on {today} in {minutes:.0f} '
        f'minutes. GPUs: {", ".join(names)}; Python '
        f'{platform.python_version()}, torch {torch.__version__}. Set-up: '
        f'{plan.constants}, {HYPER}; script runs of {plan.epochs} epochs, '
        'timed without the first.', rows, args.results)
    print('\n'.join(results_block.table(rows)))
    print(f'wrote the GPU block of {args.results}')
    return rows


if __name__ == '__main__':
    main()
