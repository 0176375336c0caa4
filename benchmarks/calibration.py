"""The simulator's runs against real runs of the chapter (calibration).

    .venv/bin/python -m benchmarks.calibration [--seeds 5]
        [--methods ASHA ...] [--write]

Makes real runs of the recorded table's set-up (2 one-thread trials at a
time; about 65 minutes for 5 seeds): random search for 480 s as
``rs-async``, ASHA for 240 s (enough to compare trial counts), each
trying the table's configurations in the order the simulator draws them
for its seed, and keeps them in ``benchmarks/calibration/``. Each is
placed among 50 simulated runs on two clocks: its own speed factor, as
the sections measure theirs, and the median factor of the *other* kept
runs, so that its own durations do not set its simulated ones: trial
counts, and the shares of simulated runs with fewer trials or a worse
delivered error.
"""
import argparse
import dataclasses
import datetime
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import common

import hpo.setups
import hpo.sim
import hpo.stats
import hpo.trials
import hpo.tuner
from hpo.tuner import HYPERPARAMETERS

OUT = Path(__file__).resolve().parent / 'calibration'
METHODS = {'random search': ('train_script.py', 480),
           'ASHA': ('train_script_report_eachepoch.py', 240)}
PLACEMENT = OUT / 'placement.csv'  # what sh-async.md cites
N_POINTS = 400  # far more configurations than a run can try
N_SIMULATED = 50
CLOCKS = ('own', 'others')  # its own speed factor, the others' median


def slug(method, seed):
    return f"{method.replace(' ', '-').lower()}-seed{seed}"


def table_points(curves, seed):
    """The table's configurations in the simulator's order for ``seed``:
    ``(config_ids, points)``, points as the training scripts take them."""
    configs = curves.groupby('config_id')[HYPERPARAMETERS].first()
    ids = [p['config_id']
           for p in hpo.sim.sampled_configs(seed, len(configs))[:N_POINTS]]
    return ids, configs.loc[ids].to_dict('records')


def scheduler_for(method, setup, points, seed):
    """The section's scheduler for ``method``, trying ``points`` first."""
    np.random.seed(seed)  # as the sections seed theirs
    space = dict(hpo.tuner.search_space(), **setup.constants)
    return hpo.sim.make_scheduler(method, space, seed,
                                  setup.constants['max_epochs'], points)


def real_run(method, seed, curves, setup):
    """Make one real run; return its trials and its reports."""
    script, seconds = METHODS[method]
    ids, points = table_points(curves, seed)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        exp = hpo.tuner.run_experiment(
            scheduler_for(method, setup, points, seed), script, seconds,
            setup, folder)
        trials = hpo.trials.trial_table(exp).drop(columns='log')
        reports = hpo.trials.report_times(exp)
    if trials[HYPERPARAMETERS].to_dict('records') != points[:len(trials)]:
        raise RuntimeError(f'{method}, seed {seed}: the trials did not try '
                           'the table\'s configurations in order')
    trials['config_id'] = ids[:len(trials)]
    trials = trials.assign(method=method, seed=seed, seconds=seconds,
                           load_before=load, load_after=os.getloadavg()[0],
                           machine=hpo.setups.machine(),
                           made=datetime.datetime.now().isoformat(
                               timespec='minutes'))
    keep = ['trial_id', 'epoch', 'validation_error', 'test_error', 'time',
            'elapsed_time', 'cpu_time', 'st_decision']
    return trials, reports[[c for c in keep if c in reports.columns]]


def make_runs(seeds, curves, setup, methods=tuple(METHODS)):
    """Every real run not made yet, saved as soon as it ends."""
    OUT.mkdir(exist_ok=True)
    for seed in seeds:
        for method in methods:
            name = slug(method, seed)
            kept = OUT / f'{name}-trials.csv'
            if kept.exists():
                budgets = set(pd.read_csv(kept)['seconds'])
                if budgets != {METHODS[method][1]}:
                    raise RuntimeError(f'{kept} was made with {budgets} s; '
                                       'delete it to make it again')
                continue
            print(f'[calibration] {name}: {METHODS[method][1]} s',
                  flush=True)
            trials, reports = real_run(method, seed, curves, setup)
            reports.to_csv(OUT / f'{name}-reports.csv', index=False)
            trials.to_csv(OUT / f'{name}-trials.csv')  # last: complete


def kept_run(method, seed):
    """A kept real run: its trials (by ``trial_id``) and its reports."""
    name = slug(method, seed)
    trials = pd.read_csv(OUT / f'{name}-trials.csv', index_col='trial_id')
    reports = pd.read_csv(OUT / f'{name}-reports.csv')
    return trials, reports.assign(
        final=reports['epoch'] == trials['max_epochs'].iloc[0])


def kept_seeds(method):
    prefix = slug(method, '')
    return sorted(int(p.name[len(prefix):-len('-trials.csv')])
                  for p in OUT.glob(f'{prefix}*-trials.csv'))


def measured_factors(curves):
    """The speed factor each kept real run measures on itself."""
    runs = {(m, s): kept_run(m, s) for m in METHODS for s in kept_seeds(m)}
    return {run: hpo.sim.speed_factor(reports, trials, curves)
            for run, (trials, reports) in runs.items()}


def placement(method, curves, setup, factors):
    """Each kept real run of ``method`` among simulated runs on each of
    ``CLOCKS``: one row per run and clock."""
    seconds = METHODS[method][1]
    rows = []
    for seed in kept_seeds(method):
        trials, reports = kept_run(method, seed)
        others = np.median([f for run, f in factors.items()
                            if run != (method, seed)])
        for clock, factor in zip(CLOCKS, (factors[method, seed], others)):
            sims = hpo.sim.run_many(
                [method], range(N_SIMULATED), hpo.sim.scaled(curves, factor),
                n_workers=setup.n_workers, max_wallclock_time=seconds)
            place = hpo.stats.place_run(reports, len(trials), sims, seconds)
            same = sims[sims['seed'] == seed]['n_trials'].iloc[0]
            rows.append(dict(method=method, seed=seed, seconds=seconds,
                             clock=clock, factor=float(factor),
                             simulated_same_seed=int(same), **place))
    return pd.DataFrame(rows)


def result_rows(table):
    """Rows for ``benchmarks/results.md``: one per real run and clock, one
    summary per method and clock."""
    rows = [('calibration', f'{r.method}, seed {r.seed}, {r.clock} clock: '
             'speed factor; trials real (simulated, same seed), simulated '
             f'median [10%, 90%] of {N_SIMULATED}; simulated runs with '
             'fewer trials; with a worse delivered error',
             f'{r.factor:.3f}; {r.trials} ({r.simulated_same_seed}), '
             f'{r.trials_median:g} [{r.trials_10:g}, {r.trials_90:g}]; '
             f'{100 * r.fewer:.0f}%; {100 * r.worse:.0f}%')
            for r in table.itertuples()]
    for (method, clock), t in table.groupby(['method', 'clock'],
                                            sort=False):
        inside = t.trials.between(t.trials_10, t.trials_90)
        gap = t.trials.median() / t.trials_median.median() - 1
        per_run = (t.trials / t.trials_median).median() - 1
        paired = (t.trials / t.simulated_same_seed).median() - 1
        rows.append((
            'calibration', f'{method}, {clock} clock: median trials real, '
            'simulated (median of the runs\' medians); median over the '
            'runs of real / its simulated median; of real / simulated '
            'with the same seed; real runs inside their simulated 10-90% '
            'range; shares of simulated runs with fewer trials, lowest to '
            'highest (median)',
            f'{t.trials.median():g}, {t.trials_median.median():g} '
            f'({100 * gap:+.1f}%); {100 * per_run:+.1f}%; '
            f'{100 * paired:+.1f}%; {inside.sum()} of {len(t)}; '
            f'{t.fewer.min():.2f} to {t.fewer.max():.2f} '
            f'({t.fewer.median():.2f})'))
    return rows


def error_rows(curves):
    """How far the kept runs' validation errors are from the table's for
    the same configuration and epoch."""
    table = curves.set_index(['config_id', 'epoch'])['validation_error']
    rows = []
    for method in METHODS:
        diffs = []
        for seed in kept_seeds(method):
            trials, reports = kept_run(method, seed)
            keys = zip(trials.loc[reports['trial_id'], 'config_id'],
                       reports['epoch'])
            diffs += list(reports['validation_error'].to_numpy()
                          - table.loc[list(keys)].to_numpy())
        diffs = np.abs(diffs)
        rows.append(('calibration', f'{method}: |real - recorded| '
                     'validation error, same configuration and epoch (the '
                     'training does not replicate the table exactly), '
                     f'over {len(diffs)} reports: median, 90%, max',
                     f'{np.median(diffs):.4f}, '
                     f'{np.quantile(diffs, 0.9):.4f}, {diffs.max():.4f}'))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, default=5,
                        help='make the runs of seeds 0 to SEEDS - 1')
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=list(METHODS), metavar='METHOD',
                        help=f'of {list(METHODS)} (default: both)')
    parser.add_argument('--write', action='store_true',
                        help='write the comparison to results.md')
    args = parser.parse_args(argv)
    if not 1 <= args.seeds <= N_SIMULATED:
        parser.error(f'--seeds must be between 1 and {N_SIMULATED}')
    recorded = hpo.sim.table_setup(hpo.sim.CURVES)
    setup = dataclasses.replace(
        hpo.setups.choose_setup('full', n_gpus=0), n_workers=2,
        threads_per_trial=int(recorded['threads_per_trial']))
    curves = hpo.sim.load_curves(hpo.sim.CURVES)
    make_runs(range(args.seeds), curves, setup, args.methods)
    factors = measured_factors(curves)
    table = pd.concat([placement(m, curves, setup, factors)
                       for m in METHODS], ignore_index=True)
    print(table.round(4).to_string(index=False))
    rows = result_rows(table) + error_rows(curves)
    for row in rows:
        print(' | '.join(row[1:]))
    if args.write:
        table.to_csv(PLACEMENT, index=False, float_format='%.6g')
        common.write(
            'calibration', 'Calibration of the simulator',
            f'Made by `python -m benchmarks.calibration --write` on '
            f'{datetime.date.today()} ({hpo.setups.machine()}; the '
            'simulations are the same on any machine) from the real runs '
            'kept in benchmarks/calibration/ (made there by `--seeds N '
            '[--methods ...]`; on the machines their `machine` column '
            'names, where they have one): runs of the '
            f'recorded set-up ({setup.n_workers} workers of '
            f'{setup.threads_per_trial} thread, {setup.constants}; random '
            f'search for {METHODS["random search"][1]} s, ASHA for '
            f'{METHODS["ASHA"][1]} s) among {N_SIMULATED} simulated runs '
            'of the same set-up and budget, whose recorded times are '
            'scaled by the speed factor the run measured on itself (own '
            'clock, as the sections do) or by the median factor of the '
            'other kept runs (others\' clock, a prediction).', rows)


if __name__ == '__main__':
    main()
