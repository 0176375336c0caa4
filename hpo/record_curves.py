"""Record full learning curves of the CPU set-up for the simulator.

    .venv/bin/python -m hpo.record_curves [--n_configs 200]

Configuration ``i`` is the ``i``-th draw from the chapter's search space
with a fixed seed, so it is the same however many are recorded. Each one
is trained for the set-up's full number of epochs by
``train_script_report_eachepoch.py`` (a few processes at a time, one CPU
thread each, as in the chapter's CPU set-up), and its rows (one per epoch:
validation error, seconds since its process started and CPU seconds it
used, both also at the end of its start-up, and the test error after the
last epoch) are appended to ``curves_lenet.csv`` as soon as it ends.

The recording resumes: run the command again, with the same or a larger
``--n_configs``, and it trains only the configurations that are not in the
file yet. It refuses to extend a file recorded with another set-up or seed.
The comment lines at the top say on which machine, with which versions,
set-up and seed the table was recorded, and each resumption adds a line.
Elapsed times depend on the machine and on what else ran on it; CPU
times of these one-thread trials do not grow with other load, and on an
otherwise idle machine they equal the elapsed times.
"""
import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hpo.sim import COLUMNS, CURVES as OUTPUT

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'train_script_report_eachepoch.py'


def sample_configs(n, seed):
    """The first ``n`` configurations drawn from the search space."""
    import hpo.tuner
    rng = np.random.RandomState(seed)
    space = hpo.tuner.search_space()
    return [{name: domain.sample(random_state=rng)
             for name, domain in space.items()} for _ in range(n)]


def header(setup, seed, n_workers):
    """The lines that must match for a file to be extended."""
    fixed = ' '.join(f'{k}={v}' for k, v in setup.constants.items())
    return [f'# set-up: {fixed} threads_per_trial=1 n_workers={n_workers}',
            f'# seed: {seed} (configuration i is the i-th draw from the '
            'search space)']


def machine():
    import syne_tune
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} cores; Python '
            f'{platform.python_version()}, torch {torch.__version__}, '
            f'syne-tune {syne_tune.__version__}')


def recorded_ids(path, lines):
    """Configuration ids already in ``path``; check its set-up and seed."""
    if not path.exists():
        return set()
    text = path.read_text()
    missing = [line for line in lines if line not in text.splitlines()]
    if missing:
        raise SystemExit(
            f'{path} was recorded with another set-up or seed; it lacks '
            f'{missing}. Record to another --output, or delete the file.')
    table = pd.read_csv(path, comment='#')
    return set(table['config_id'].unique())


def curve_rows(config_id, config, stdout):
    """The rows of one finished trial, from its ``[tune-metric]`` lines."""
    import json

    from syne_tune.report import retrieve

    from hpo.training import STARTUP_TAG
    reports = retrieve(stdout.splitlines())
    startup = next(json.loads(line[len(STARTUP_TAG):])
                   for line in stdout.splitlines()
                   if line.startswith(STARTUP_TAG))
    return [dict(config_id=config_id, **config, epoch=r['epoch'],
                 validation_error=r['validation_error'],
                 elapsed_time=r['elapsed_time'], cpu_time=r['cpu_time'],
                 startup_time=startup['total'],
                 startup_cpu_time=startup['cpu'],
                 test_error=r.get('test_error', np.nan)) for r in reports]


def check_curve(rows, max_epochs):
    """Complain unless the epochs are 1..max_epochs or end in divergence."""
    epochs = [r['epoch'] for r in rows]
    if epochs != list(range(1, len(epochs) + 1)) or not epochs:
        return f'epochs {epochs} are not 1, 2, ...'
    if len(epochs) < max_epochs and rows[-1]['validation_error'] != 1.0:
        return f'stopped after {len(epochs)} epochs without diverging'
    return None


def launch(config, setup):
    args = [sys.executable, str(SCRIPT)]
    for name, value in dict(config, **setup.constants).items():
        args += [f'--{name}', str(value)]
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    return subprocess.Popen(args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT, start_new_session=True)


def append(path, rows, first_lines):
    text = pd.DataFrame(rows, columns=COLUMNS).to_csv(
        header=False, index=False, float_format='%.6g')
    if not path.exists():
        text = '\n'.join([*first_lines, ','.join(COLUMNS), text])
    with open(path, 'a') as f:  # one write: a curve is in whole or not
        f.write(text)


def record(todo, configs, setup, output, n_workers, first_lines):
    """Train the configurations in ``todo``, ``n_workers`` at a time."""
    running, failures, done = {}, 0, 0
    max_epochs = setup.constants['max_epochs']
    started = time.time()
    try:
        while todo or running:
            while todo and len(running) < n_workers:
                i = todo.pop(0)
                running[i] = launch(configs[i], setup)
            time.sleep(0.2)
            for i, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[i]
                out, err = proc.communicate()
                rows = curve_rows(i, configs[i], out) if not \
                    proc.returncode else []
                problem = (f'exit code {proc.returncode}: '
                           f'{err.strip()[-500:]}' if proc.returncode
                           else check_curve(rows, max_epochs))
                if problem:
                    failures += 1
                    print(f'configuration {i} failed ({problem}); it will '
                          'be retried by the next run', flush=True)
                    if failures > 3:
                        raise SystemExit('more than 3 failures; stopping')
                    continue
                append(output, rows, first_lines)
                first_lines = []
                done += 1
                minutes = (time.time() - started) / 60
                print(f'configuration {i}: {len(rows)} epochs, final error '
                      f'{rows[-1]["validation_error"]:.4f} '
                      f'({done} done, {len(todo)} to go, {minutes:.1f} '
                      'min)', flush=True)
    finally:
        for proc in running.values():  # interrupted: leave nothing behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main():
    # SIGTERM (kill, a cancelled job) ends the recording as Ctrl+C does:
    # running trials are killed, finished curves are already in the file
    signal.signal(signal.SIGTERM, _interrupt)
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n_configs', type=int, default=200)
    p.add_argument('--n_workers', type=int, default=2,
                   help='trials at a time (the CPU set-up uses 2)')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--output', type=Path, default=OUTPUT)
    p.add_argument('--budget', default='full', choices=['full', 'test'],
                   help='the set-up to record (test: tiny, for the tests)')
    args = p.parse_args()
    import hpo.setups
    setup = hpo.setups.choose_setup(args.budget, n_gpus=0)
    lines = header(setup, args.seed, args.n_workers)
    done = recorded_ids(args.output, lines)
    todo = [i for i in range(args.n_configs) if i not in done]
    now = datetime.datetime.now().isoformat(timespec='minutes')
    what = 'started' if not done else f'resumed with {len(done)} done'
    first_lines = [] if done else [
        '# learning curves of the chapter\'s CPU set-up, recorded by '
        'hpo/record_curves.py', *lines]
    first_lines.append(f'# {what} {now} on {machine()}, '
                       f'{args.n_workers} trials at a time')
    if not todo:
        print(f'all {args.n_configs} configurations are in {args.output}')
        return
    if done:
        with open(args.output, 'a') as f:
            f.write(first_lines[-1] + '\n')
        first_lines = []
    print(f'recording {len(todo)} configurations into {args.output}',
          flush=True)
    try:
        record(todo, sample_configs(args.n_configs, args.seed), setup,
               args.output, args.n_workers, first_lines)
    except KeyboardInterrupt:
        raise SystemExit(f'interrupted; the finished curves are in '
                         f'{args.output}: run the command again to go on')


if __name__ == '__main__':
    main()
