"""The simulator's runs against real runs of the chapter (calibration).

    .venv/bin/python -m benchmarks.calibration [--seeds 5] [--write]

Makes real tuning runs in the chapter's CPU set-up, for each seed one of
random search (480 s, ``train_script.py``) and one of ASHA (240 s,
``train_script_report_eachepoch.py``), built by
``hpo_utils.run_experiment`` as the sections build theirs. Each run tries
the recorded table's own configurations, in the order in which the
simulator draws them for its seed (``hpo_sim.sampled_configs``, passed as
``points_to_evaluate``): a real run and the simulated run with the same
seed try the same configurations in the same order.

Every run's trials and reports are kept in ``benchmarks/calibration/``
(one CSV each), so that the simulator can be checked against them again
without running them; a run whose files exist is not made again, so an
interrupted calibration resumes. Then each real run is placed among the
simulated runs of the same set-up and budget (50 seeds): its number of
trials against the simulated ones, and the share of simulated runs that
started fewer trials or ended with a worse best validation error.
``--write`` puts that table into ``benchmarks/results.md``.

About 65 minutes with 5 seeds on an idle 2-core machine; the load
average before and after each run is kept with it.
"""
import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import results_block

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'chapter_hpo'))
import hpo_sim  # noqa: E402
import hpo_utils  # noqa: E402

OUT = Path(__file__).resolve().parent / 'calibration'
METHODS = {'random search': ('train_script.py', 480),
           'ASHA': ('train_script_report_eachepoch.py', 240)}
N_POINTS = 400  # far more configurations than a run can try
N_SIMULATED = 50


def slug(method, seed):
    return f"{method.replace(' ', '-').lower()}-seed{seed}"


def table_points(curves, seed):
    """The table's configurations in the simulator's order for ``seed``:
    ``(config_ids, points)``, points as the training scripts take them."""
    configs = curves.groupby('config_id')[hpo_sim.HYPERPARAMETERS].first()
    ids = [p['config_id']
           for p in hpo_sim.sampled_configs(seed, len(configs))[:N_POINTS]]
    points = [dict(learning_rate=float(configs.loc[i, 'learning_rate']),
                   momentum=float(configs.loc[i, 'momentum']),
                   batch_size=int(configs.loc[i, 'batch_size']))
              for i in ids]
    return ids, points


def scheduler_for(method, setup, points, seed):
    """The section's scheduler for ``method``, trying ``points`` first."""
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    np.random.seed(seed)
    space = dict(hpo_utils.search_space(), **setup.constants)
    if method == 'random search':
        return RandomSearch(space, metrics=['validation_error'],
                            do_minimize=True, random_seed=seed,
                            points_to_evaluate=points)
    return ASHA(space, metric='validation_error', time_attr='epoch',
                max_t=setup.constants['max_epochs'], grace_period=1,
                reduction_factor=3, do_minimize=True, random_seed=seed,
                points_to_evaluate=points)


def real_run(method, seed, curves, setup):
    """Make one real run; return its trials and its reports."""
    script, seconds = METHODS[method]
    ids, points = table_points(curves, seed)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        exp = hpo_utils.run_experiment(
            scheduler_for(method, setup, points, seed), script, seconds,
            setup, folder)
        trials = hpo_utils.trial_table(exp).drop(columns='log')
        reports = hpo_utils.report_times(exp)
    by_values = {(p['batch_size'], round(p['learning_rate'], 6)): i
                 for i, p in zip(ids, points)}
    trials['config_id'] = [
        by_values[(int(b), round(float(lr), 6))]
        for b, lr in zip(trials['batch_size'], trials['learning_rate'])]
    trials = trials.assign(method=method, seed=seed, seconds=seconds,
                           load_before=load, load_after=os.getloadavg()[0])
    keep = ['trial_id', 'epoch', 'validation_error', 'test_error', 'time',
            'elapsed_time', 'cpu_time', 'st_decision']
    return trials, reports[[c for c in keep if c in reports.columns]]


def make_runs(seeds, curves, setup):
    """Every real run not made yet, saved as soon as it ends."""
    OUT.mkdir(exist_ok=True)
    for seed in seeds:
        for method in METHODS:
            name = slug(method, seed)
            if (OUT / f'{name}-trials.csv').exists():
                continue
            print(f'[calibration] {name}: {METHODS[method][1]} s',
                  flush=True)
            trials, reports = real_run(method, seed, curves, setup)
            reports.to_csv(OUT / f'{name}-reports.csv', index=False)
            trials.to_csv(OUT / f'{name}-trials.csv')  # last: complete


def placement(method, seeds, curves, setup):
    """Each real run of ``method`` among the simulated runs: one row each.
    """
    seconds = METHODS[method][1]
    sims = hpo_sim.run_many([method], range(N_SIMULATED), curves,
                            n_workers=setup.n_workers,
                            max_wallclock_time=seconds)
    counts = sims.groupby('seed')['n_trials'].first()
    bests = sims.groupby('seed')['validation_error'].min()
    rows = []
    for seed in seeds:
        name = slug(method, seed)
        trials = pd.read_csv(OUT / f'{name}-trials.csv')
        reports = pd.read_csv(OUT / f'{name}-reports.csv')
        n, best = len(trials), reports['validation_error'].min()
        rows.append(dict(
            method=method, seed=seed, real_trials=n,
            simulated_same_seed=int(counts[seed]),
            simulated_median=float(counts.median()),
            simulated_10=float(counts.quantile(0.1)),
            simulated_90=float(counts.quantile(0.9)),
            fewer_trials=float((counts < n).mean()),
            real_best=best, worse_best=float((bests > best).mean())))
    return pd.DataFrame(rows)


def result_rows(table):
    """Rows for ``benchmarks/results.md``: one per real run, one summary
    per method."""
    rows = []
    for _, r in table.iterrows():
        rows.append(('calibration', f'{r.method}, seed {r.seed}: trials '
                     'real (simulated, same seed); simulated runs with '
                     'fewer trials; with a worse best error',
                     f'{r.real_trials} ({r.simulated_same_seed}); '
                     f'{100 * r.fewer_trials:.0f}%; '
                     f'{100 * r.worse_best:.0f}%'))
    for method, t in table.groupby('method', sort=False):
        rows.append(('calibration', f'{method}: median trials real, '
                     f'simulated [10%, 90%] of {N_SIMULATED} seeds',
                     f'{t.real_trials.median():g}, '
                     f'{t.simulated_median.iloc[0]:g} '
                     f'[{t.simulated_10.iloc[0]:g}, '
                     f'{t.simulated_90.iloc[0]:g}]'))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, default=5)
    parser.add_argument('--write', action='store_true',
                        help='write the comparison to results.md')
    args = parser.parse_args(argv)
    setup = hpo_utils.choose_setup('full', n_gpus=0)
    curves = hpo_sim.load_curves(hpo_sim.CURVES)
    seeds = range(args.seeds)
    make_runs(seeds, curves, setup)
    table = pd.concat([placement(m, seeds, curves, setup)
                       for m in METHODS], ignore_index=True)
    print(table.round(4).to_string(index=False))
    if args.write:
        results_block.write(
            'calibration', 'Calibration of the simulator',
            f'Made by `python -m benchmarks.calibration --seeds '
            f'{args.seeds} --write` on {datetime.date.today()}: real runs '
            'of the CPU set-up (kept in benchmarks/calibration/) among '
            f'{N_SIMULATED} simulated runs of the same set-up and budget.',
            result_rows(table))


if __name__ == '__main__':
    main()
