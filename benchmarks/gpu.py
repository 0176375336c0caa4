"""GPU throughput of the chapter's GPU set-up, measured where a GPU exists.

    .venv/bin/python -m benchmarks.gpu [--epochs 3] [--results PATH]

For ``hpo.setups.GPU_CONSTANTS`` (AlexNet, 224x224): the model's bare rate
on every GPU (floats already there; float32 twice, for the noise, and the
options the scripts leave off: channels-last, bf16 autocast; peak memory);
both scripts as processes with each option on the first GPU (s/epoch,
share of the bare rate, start-up, error: an option must be faster *and*
keep the error); 1 to 4 trials sharing it (``hpo.setups.TRIALS_PER_GPU``);
a projection of the trials per 10 minutes of each section. Without a usable
GPU, one row: "not measured: no GPU". ``--cpu-check``: the same code on the
CPU with LeNet and tiny sizes; it writes nothing.
"""
import argparse
import os
import time
from pathlib import Path
from types import SimpleNamespace

import torch

import hpo.data
import hpo.setups
import hpo.sim
import hpo.training
from benchmarks import common

NO_GPU = 'not measured: no GPU'
SCRIPTS = common.SCRIPTS
HYPER = dict(learning_rate=0.01, momentum=0.9, batch_size=128)
# 'float32, again': cuDNN's autotuned algorithms are not deterministic;
# the two float32 runs' difference says how much of the options' is noise
OPTIONS = {'float32': [], 'float32, again': [],
           'channels-last': ['--channels_last'],
           'bf16 autocast': ['--bf16'],
           'channels-last + bf16': ['--channels_last', '--bf16']}
SECONDS = 600            # the projection's horizon: 10 minutes


def make_plan(cpu_check, epochs):
    """What to measure: the GPU set-up, or a tiny CPU check of the code."""
    if cpu_check:
        return SimpleNamespace(
            cpu_check=True, epochs=2, steps=3, max_trials=2,
            constants=dict(hpo.setups.CPU_CONSTANTS, n_train=200),
            options={'float32': []}, label='CPU check',
            val_batch=hpo.training.VAL_BATCH['cpu'])
    return SimpleNamespace(
        cpu_check=False, epochs=epochs, steps=20, max_trials=4,
        constants=dict(hpo.setups.GPU_CONSTANTS), options=OPTIONS,
        label='GPU 0', val_batch=hpo.training.VAL_BATCH['cuda'])


def bare_rates(plan, device, option):
    """Images/s of SGD steps and of validation batches on floats already
    on ``device`` (the model's arithmetic only), and peak memory (bytes;
    None on the CPU)."""
    size, bs = plan.constants['image_size'], HYPER['batch_size']
    cuda = device.type == 'cuda'
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    model = hpo.training.build_model(plan.constants['model'], size, device)
    if 'channels-last' in option or 'bf16' in option:
        model = hpo.training.GPUOptions(model, 'channels-last' in option,
                                        'bf16' in option)
    step = common.sgd_step(model, HYPER['learning_rate'], HYPER['momentum'])
    x = torch.rand(bs, 1, size, size, device=device)
    y = torch.randint(0, 10, (bs,), device=device)
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else None
    model.train()  # 3 warm-up steps: cuDNN autotuning, lazy allocations
    train = plan.steps * bs / common.timed(lambda: step(x, y), plan.steps,
                                           3, sync)
    model.eval()
    xv = torch.rand(plan.val_batch, 1, size, size, device=device)
    n = max(2, plan.steps // 4)
    with torch.no_grad():
        forward = n * plan.val_batch / common.timed(lambda: model(xv), n, 1,
                                                    sync)
    return train, forward, (
        torch.cuda.max_memory_allocated(device) if cuda else None)


def run_scripts(plan, script, flags, copies):
    """``common.script_times`` of ``copies`` of ``script`` at once on the
    first GPU."""
    visible = os.environ.get('CUDA_VISIBLE_DEVICES', '').strip()
    gpu = '' if plan.cpu_check else visible.split(',')[0].strip() or '0'
    args = [f'--{k}={v}' for k, v in {**plan.constants, **HYPER}.items()
            if k != 'max_epochs']
    runs = common.script_times(script, [*args, *flags], plan.epochs,
                               copies, gpu=gpu)
    for r in runs:
        if not plan.cpu_check and 'device: cuda:0' not in r['out']:
            raise RuntimeError(f'{script} did not train on the GPU:\n'
                               + r['out'][-2000:])
    return runs


def gpu_status():
    """``(names, reason)``: the GPUs PyTorch can use, or why none."""
    hardware = hpo.setups.detect_hardware('auto')
    if hardware.gpus:
        return [torch.cuda.get_device_name(i)
                for i in range(len(hardware.gpus))], None
    return [], (f'nvidia-smi lists GPUs; PyTorch: {hardware.problem}'
                if hardware.problem else 'no nvidia-smi or it lists no GPU')


def bare_rows(plan, names):
    """Rows of the bare rates on every device; the first device's epoch
    bound (seconds at the bare rates) by option."""
    rows, bound = [], {}
    for i, name in enumerate(names or [None]):
        label = f'GPU {i} ({name})' if name else plan.label
        for option in plan.options:
            train, forward, peak = bare_rates(plan, torch.device(
                f'cuda:{i}' if name else 'cpu'), option)
            hpo.training.release_gpu_memory()  # leave it to the scripts
            if i == 0:
                bound[option] = (plan.constants['n_train'] / train
                                 + hpo.data.NUM_VAL / forward)
            what = f'bare rate, {option}: train img/s, validation img/s'
            value = f'{train:.0f}, {forward:.0f}'
            if peak is not None:
                what += ', peak memory'
                value += f', {peak / 2 ** 30:.2f} GiB'
            rows.append((label, what, value))
            print(rows[-1], flush=True)
    return rows, bound


def script_rows(plan, bound):
    """Rows of each script with each option alone on the first device, and
    the runs by ``(script, option)``."""
    rows, runs, n_train = [], {}, plan.constants['n_train']
    for script in SCRIPTS:
        for option, flags in plan.options.items():
            r = runs[script, option] = run_scripts(plan, script, flags, 1)[0]
            rows.append((plan.label, f'{script}, {option}: s/epoch (train '
                         'img/s), share of bare rate',
                         f'{r["epoch"]:.2f} ({n_train / r["epoch"]:.0f}), '
                         f'{100 * bound[option] / r["epoch"]:.0f}%'))
            rows.append((plan.label, f'{script}, {option}: start-up s, '
                         f'validation error after {plan.epochs} epochs',
                         f'{r["startup"]:.1f}, {r["error"]:.4f}'))
            print(*rows[-2:], sep='\n', flush=True)
    return rows, runs


def sharing_rows(plan, alone):
    """Rows of 1 to ``plan.max_trials`` trials sharing the first GPU, and
    k -> how much slower than ``alone`` (one trial's run) k trials are."""
    rows, slowdown, n_train = [], {}, plan.constants['n_train']
    for k in range(1, plan.max_trials + 1):  # k = 1: the run above
        what = (f'{k} trial(s) sharing it: s/epoch of the slowest, train '
                'img/s of all, vs one alone, mean validation error')
        try:
            rs = [alone] if k == 1 else run_scripts(plan, SCRIPTS[1], [], k)
        except RuntimeError as e:  # out of memory is an answer too
            last = str(e).strip().splitlines()[-1][:120].replace('|', '/')
            rows.append((plan.label, what, f'failed: {last}'))
            continue
        worst = max(r['epoch'] for r in rs)
        together = sum(n_train / r['epoch'] for r in rs)
        error = sum(r['error'] for r in rs) / len(rs)
        slowdown[k] = worst / alone['epoch']
        rows.append((plan.label, what, f'{worst:.2f}, {together:.0f}, '
                     f'{together * alone["epoch"] / n_train:.2f}x, '
                     f'{error:.4f}'))
        print(rows[-1], flush=True)
    return rows, slowdown


def projection_rows(plan, runs, names, slowdown):
    """Trials per 10 minutes of each section with ``choose_setup``'s
    workers, epochs slowed as measured for its trials per GPU."""
    setup = hpo.setups.choose_setup('full', n_gpus=max(1, len(names)))
    workers = 1 if plan.cpu_check else setup.n_workers
    factor = 1.0 if plan.cpu_check else slowdown.get(
        setup.trials_per_gpu, float('nan'))
    rows = []
    for script, section, epochs in (
            (SCRIPTS[0], 'rs-async', plan.constants['max_epochs']),
            (SCRIPTS[1], 'sh-async', hpo.sim.epochs_per_trial(
                1, 3, plan.constants['max_epochs']))):
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
    p.add_argument('--cpu-check', action='store_true',
                   help='the code on the CPU, LeNet, tiny; writes nothing')
    p.add_argument('--results', type=Path, default=common.RESULTS)
    p.add_argument('--epochs', type=int, default=3,
                   help='epochs per script run (timed: all but the first)')
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error('--epochs must be at least 2 (the first is not timed)')
    started = time.monotonic()
    plan = make_plan(args.cpu_check, args.epochs)
    names, reason = ([], None) if args.cpu_check else gpu_status()
    if args.cpu_check or names:
        rows, bound = bare_rows(plan, names)
        more, runs = script_rows(plan, bound)
        sharing, slowdown = sharing_rows(plan, runs[SCRIPTS[1], 'float32'])
        rows += more + sharing + projection_rows(plan, runs, names, slowdown)
        print(*common.table(rows), sep='\n')
    if args.cpu_check:
        return rows
    if not names:
        print(f'No usable GPU on this machine ({reason}): nothing to '
              f'measure. Writing "{NO_GPU}" into {args.results}.')
        rows = [('gpu', NO_GPU, '-')]
    intro = ('Made by `python -m benchmarks.gpu`' + (
        f' in {(time.monotonic() - started) / 60:.0f} minutes. GPUs: '
        f'{", ".join(names)}. Set-up: {plan.constants}, {HYPER}; script '
        f'runs of {plan.epochs} epochs, timed without the first.' if names
        else f': no usable GPU on this machine ({reason}), so no GPU number '
        'in this file is a measurement.'))
    common.write('gpu', 'GPU set-up', intro, rows, args.results)
    return rows


if __name__ == '__main__':
    main()
