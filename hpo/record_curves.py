"""Record full learning curves of the CPU set-up for the simulator.

    .venv/bin/python -m hpo.record_curves [--n_configs 200]

Configuration ``i`` (the ``i``-th draw from the search space) is trained
for all epochs by ``train_script_report_eachepoch.py``, one thread, a few
at a time; its rows are appended as soon as it ends. Run again, it trains
only what is missing; it refuses a file of another set-up or seed.
"""
import argparse
import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hpo.setups
from hpo.sim import COLUMNS, CURVES as OUTPUT, check_curve
from hpo.tuner import ROOT, search_space

SCRIPT = ROOT / 'train_script_report_eachepoch.py'


def sample_configs(n, seed):
    """The first ``n`` configurations drawn from the search space."""
    rng = np.random.RandomState(seed)
    space = search_space()
    return [{name: domain.sample(random_state=rng)
             for name, domain in space.items()} for _ in range(n)]


def header(setup, seed, n_workers):
    """The lines that must match for a file to be extended."""
    fixed = ' '.join(f'{k}={v}' for k, v in setup.constants.items())
    return [f'# set-up: {fixed} threads_per_trial=1 n_workers={n_workers}',
            f'# seed: {seed} (configuration i is the i-th draw from the '
            'search space)']


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
    return set(pd.read_csv(path, comment='#')['config_id'])


def finished(i, config, proc, max_epochs):
    """A finished trial's curve (from its ``[tune-metric]`` lines and its
    start-up line; no rows without one); ``ValueError`` says what is wrong."""
    from syne_tune.report import retrieve
    from hpo.training import read_startup
    out, err = proc.communicate()
    if proc.returncode:
        raise ValueError(f'exit code {proc.returncode}: {err.strip()[-500:]}')
    startup = read_startup(out)
    rows = [] if startup is None else [
        dict(report, config_id=i, **config, startup_time=startup['total'],
             startup_cpu_time=startup['cpu'])
        for report in retrieve(out.splitlines())]
    curve = pd.DataFrame(rows, columns=COLUMNS)  # test_error: NaN if absent
    check_curve(curve, f'{i}', max_epochs)
    return curve


def launch(config, setup):
    args = [f'--{k}={v}' for k, v in dict(config, **setup.constants).items()]
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    return subprocess.Popen([sys.executable, str(SCRIPT), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT,
                            start_new_session=True)


def append(path, curve, first_lines):
    """Append ``curve`` to ``path`` after ``first_lines`` (the header too, if
    the file is new), in one write: a curve is in whole or not."""
    text = curve.to_csv(header=not path.exists(), index=False,
                        float_format='%.6g')
    with open(path, 'a') as f:
        f.write(''.join(line + '\n' for line in first_lines) + text)


def record(todo, configs, setup, output, n_workers, first_lines):
    """Train the configurations in ``todo``, ``n_workers`` at a time, and
    append each curve as it ends (the first after ``first_lines``)."""
    running, failures, done = {}, 0, 0
    started = time.time()
    try:
        while todo or running:
            while todo and len(running) < n_workers:
                i = todo.pop(0)
                running[i] = launch(configs[i], setup)
            time.sleep(0.2)
            for i in [i for i, p in running.items() if p.poll() is not None]:
                try:
                    curve = finished(i, configs[i], running.pop(i),
                                     setup.constants['max_epochs'])
                except ValueError as problem:
                    failures += 1
                    print(f'configuration {i} failed ({problem}); it will '
                          'be retried by the next run', flush=True)
                    if failures > 3:
                        raise SystemExit('more than 3 failures; stopping')
                    continue
                append(output, curve, first_lines)
                first_lines, done = [], done + 1
                minutes = (time.time() - started) / 60
                print(f'configuration {i}: {len(curve)} epochs, final error '
                      f'{curve["validation_error"].iloc[-1]:.4f} '
                      f'({done} done, {len(todo)} to go, {minutes:.1f} '
                      'min)', flush=True)
    finally:
        for proc in running.values():  # interrupted: leave nothing behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main():
    # SIGTERM (kill, a cancelled job) ends the recording as Ctrl+C does:
    # running trials are killed, finished curves are already in the file
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n_configs', type=int, default=200)
    p.add_argument('--n_workers', type=int, default=2,
                   help='trials at a time (the CPU set-up uses 2)')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--output', type=Path, default=OUTPUT)
    p.add_argument('--budget', default='full', choices=['full', 'test'],
                   help='the set-up to record (test: tiny, for the tests)')
    args = p.parse_args()
    setup = hpo.setups.choose_setup(args.budget, n_gpus=0)
    lines = header(setup, args.seed, args.n_workers)
    done = recorded_ids(args.output, lines)
    todo = [i for i in range(args.n_configs) if i not in done]
    if not todo:
        print(f'all {args.n_configs} configurations are in {args.output}')
        return
    now = datetime.datetime.now().isoformat(timespec='minutes')
    what = f'resumed with {len(done)} done' if done else 'started'
    first_lines = ([] if done else [
        '# learning curves of the chapter\'s CPU set-up, recorded by '
        'hpo/record_curves.py', *lines]) + [
        f'# {what} {now} on {hpo.setups.machine()}, {args.n_workers} '
        'trials at a time']
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
