"""Replay recorded learning curves in Syne Tune's simulator.

A table made by ``record_curves.py`` holds, for every recorded
configuration and epoch, the validation error and the CPU seconds the
trial's process had used (start-up included; for these one-thread trials
that is the time they take on an otherwise idle core). :func:`simulate`
runs a real Syne Tune scheduler against it with ``UserBlackboxBackend``: a
trial "trains" by looking up its next row, and simulated time jumps to the
moment that row was reported.
The other functions repeat runs over seeds and summarise them: quantiles
of the best error over time, times to reach a target with bootstrap
intervals, paired comparisons, speed-ups, and how the saving of ASHA
changes with the number of epochs and with the start-up cost of a trial.

Configurations are drawn from the recorded ones, with replacement.
"""
import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CURVES = HERE / 'curves_lenet.csv'
TEST_CURVES = HERE / 'curves_test.csv'
HYPERPARAMETERS = ['learning_rate', 'momentum', 'batch_size']
OBJECTIVES = ['validation_error', 'cpu_time']  # the simulator's clock
COLUMNS = ['config_id', *HYPERPARAMETERS, 'epoch', 'validation_error',
           'elapsed_time', 'cpu_time', 'startup_time', 'startup_cpu_time',
           'test_error']
METHODS = ('random search', 'ASHA', 'Hyperband', 'ASHA in rounds')


def table_setup(path):
    """The set-up a table was recorded with, from its ``# set-up:`` line."""
    with open(path) as f:
        for line in f:
            if line.startswith('# set-up:'):
                pairs = (item.split('=', 1) for item in line[9:].split())
                return {k: int(v) if v.isdigit() else v for k, v in pairs}
    raise ValueError(f'{path}: no "# set-up:" line')


def curves_for(setup):
    """The recorded table whose set-up is ``setup``'s, or ``None``.

    The CPU set-up has ``curves_lenet.csv``, the test budget
    ``curves_test.csv``; no table was recorded for the GPU set-up.
    """
    for path in (CURVES, TEST_CURVES):
        recorded = table_setup(path) if path.exists() else {}
        if recorded and all(recorded.get(k) == v
                            for k, v in setup.constants.items()) \
                and setup.gpus_per_trial == 0:
            return path
    return None


def _check_table(df, path):
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f'{path}: missing column(s) {missing}; expected '
                         f'{COLUMNS}')
    required = [c for c in COLUMNS if c != 'test_error']
    bad = df[required].isna().any(axis=1)
    if df.empty or bad.any():
        raise ValueError(f'{path}: no rows, or empty values in required '
                         f'columns on {int(bad.sum())} row(s)')
    if (df['epoch'] != df['epoch'].round()).any() or \
            (df['epoch'] < 1).any():
        raise ValueError(f'{path}: epochs must be whole numbers >= 1')
    if not df['validation_error'].between(0, 1).all():
        raise ValueError(f'{path}: validation_error must lie in [0, 1]')
    if (df[['elapsed_time', 'cpu_time']] <= 0).any(axis=None):
        raise ValueError(f'{path}: elapsed_time and cpu_time must be '
                         'positive')


def _check_curve(curve, where, max_epochs):
    """Raise unless one configuration's rows form a whole curve."""
    for name in HYPERPARAMETERS:
        if curve[name].nunique() != 1:
            raise ValueError(f'{where}: {name} changes between epochs')
    epochs = curve['epoch'].tolist()
    if epochs != list(range(1, epochs[-1] + 1)):
        raise ValueError(f'{where}: epochs {epochs} are not 1, 2, ..., '
                         f'{epochs[-1]} (each once)')
    if (np.diff(curve['cpu_time']) < 0).any():
        raise ValueError(f'{where}: cpu_time decreases; it must be '
                         'cumulative')
    final = curve.iloc[-1]
    if epochs[-1] < max_epochs and not (
            final['validation_error'] == 1.0 and pd.notna(
                final['test_error'])):
        raise ValueError(
            f'{where}: epochs stop at {epochs[-1]} < {max_epochs}, but the '
            'last row is not a divergence (validation_error 1.0 with '
            'a test_error); was the recording cut short?')


def _pad(curve, max_epochs):
    """A diverged curve continued to ``max_epochs`` at error 1.0.

    The real script stopped at the divergence, so the times stay at that
    moment: the padded epochs cost nothing.
    """
    last = int(curve['epoch'].iloc[-1])
    pad = curve.iloc[[-1] * (max_epochs - last)].assign(
        epoch=range(last + 1, max_epochs + 1), validation_error=1.0,
        test_error=np.nan, padded=True)
    return pd.concat([curve, pad], ignore_index=True)


def load_curves(path=CURVES):
    """Read a table of learning curves, check it, pad diverged curves.

    Returns one row per configuration and epoch, sorted, with the columns
    of the file plus ``diverged`` and ``padded`` (the row was added by
    :func:`_pad`). Raises ``ValueError`` naming the problem if the table
    is malformed.
    """
    df = pd.read_csv(path, comment='#')
    _check_table(df, path)
    df['epoch'] = df['epoch'].astype(int)
    df = df.sort_values(['config_id', 'epoch']).reset_index(drop=True)
    max_epochs = int(df['epoch'].max())
    pieces = []
    for config_id, curve in df.groupby('config_id'):
        _check_curve(curve, f'{path}: configuration {config_id}',
                     max_epochs)
        diverged = curve['epoch'].iloc[-1] < max_epochs
        curve = curve.assign(diverged=diverged, padded=False)
        pieces.append(_pad(curve, max_epochs) if diverged else curve)
    curves = pd.concat(pieces, ignore_index=True)
    curves['padded'] = curves['padded'].astype(bool)
    curves.attrs['source'] = str(path)
    return curves


def cut(curves, max_epochs):
    """The curves as if every trial had been trained ``max_epochs``."""
    return curves[curves['epoch'] <= max_epochs].reset_index(drop=True)


def with_startup(curves, seconds):
    """The curves with every trial's start-up set to ``seconds``."""
    shift = seconds - curves['startup_cpu_time']
    return curves.assign(cpu_time=curves['cpu_time'] + shift,
                         startup_cpu_time=float(seconds))


def make_blackbox(curves):
    """A Syne Tune ``BlackboxTabular`` holding the recorded curves.

    Its one hyperparameter is ``config_id`` with domain ``choice`` over the
    recorded ids, so every draw is a recorded configuration (sampling the
    three hyperparameters separately would produce unrecorded ones). Its
    fidelity is ``epoch``; its objectives are ``validation_error`` and the
    cumulative ``cpu_time``, the simulator's clock. The subclass looks
    rows up by ``config_id``, since ``BlackboxTabular``'s own lookup fails
    for a single hyperparameter column.
    """
    from syne_tune.blackbox_repository.blackbox_tabular import (
        BlackboxTabular)
    from syne_tune.config_space import choice, randint

    class RecordedCurves(BlackboxTabular):
        def _objective_function(self, configuration, fidelity=None,
                                seed=None):
            config_id = int(configuration['config_id'])
            if not 0 <= config_id < len(self.hyperparameters):
                raise ValueError(f'no recorded configuration with '
                                 f'config_id {config_id}')
            values = super()._objective_function(config_id, None, seed)
            if fidelity is None:  # all epochs, shape (epochs, objectives)
                return values
            row = values[self.fidelity_map[next(iter(fidelity.values()))]]
            return dict(zip(self.objectives_names, row))

    curves = curves.sort_values(['config_id', 'epoch'])
    ids = [int(i) for i in curves['config_id'].unique()]
    if ids != list(range(len(ids))):
        raise ValueError('config_id must be 0, 1, ..., n - 1')
    n_epochs = int(curves['epoch'].max())
    values = curves[OBJECTIVES].to_numpy(dtype=float)
    with warnings.catch_warnings():  # Syne Tune 0.16 on pandas 3.1
        warnings.filterwarnings('ignore', message='The inplace keyword')
        return RecordedCurves(
            hyperparameters=pd.DataFrame({'config_id': ids}),
            configuration_space={'config_id': choice(list(ids))},
            fidelity_space={'epoch': randint(1, n_epochs)},
            objectives_evaluations=values.reshape(len(ids), 1, n_epochs,
                                                  len(OBJECTIVES)),
            fidelity_values=np.arange(1, n_epochs + 1),
            objectives_names=list(OBJECTIVES))


def rung_levels_formula(grace_period, reduction_factor, max_t):
    """``grace_period * reduction_factor**k`` for all values below max_t."""
    levels, r = [], grace_period
    while r < max_t:
        levels.append(r)
        r *= reduction_factor
    return levels


class Simulation(NamedTuple):
    """What :func:`simulate` returns.

    ``results``: one row per report within the budget, in simulated time
    order: ``trial_id``, ``config_id``, the hyperparameters, ``epoch``,
    ``validation_error``, ``cpu_time``, ``decision``, ``time``
    (simulated seconds since tuning started) and ``best`` (so far).
    ``trials``: one row per trial started within the budget, with
    ``start``, ``end`` (cut at the budget), ``epochs``, ``best_error`` and
    ``status`` (completed, stopped, diverged or cut off).
    """
    results: pd.DataFrame
    trials: pd.DataFrame

    @property
    def n_trials(self):
        return len(self.trials)


def _backend_class():
    """``UserBlackboxBackend`` made deterministic, noting start and end.

    Syne Tune's simulator adds the *real* time the tuner spends between
    calls to the simulated clock, so two runs with the same seed could
    differ; here simulated time moves only by the simulator's own steps.
    """
    from syne_tune.blackbox_repository import UserBlackboxBackend

    class DeterministicBackend(UserBlackboxBackend):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.configs, self.started, self.ended = {}, {}, {}

        def start_trial(self, config, checkpoint_trial_id=None):
            trial = super().start_trial(config, checkpoint_trial_id)
            self.configs[trial.trial_id] = dict(config)
            return trial

        def _advance_by_outside_time(self):
            pass

        def _process_start_event(self, trial_id, time_event, config=None):
            self.started[trial_id] = time_event
            super()._process_start_event(trial_id, time_event, config)

        def _process_complete_event(self, trial_id, time_event, status):
            self.ended[trial_id] = time_event
            super()._process_complete_event(trial_id, time_event, status)

    return DeterministicBackend


@contextlib.contextmanager
def _quiet_and_temporary():
    """Silence the tuner; send its files to a folder deleted afterwards."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix='hpo-sim-') as folder, \
            mock.patch.dict(os.environ, SYNETUNE_FOLDER=folder), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            yield
        finally:
            logging.disable(previous)


@contextlib.contextmanager
def _numpy_seeded(seed):
    """Seed NumPy's global generator for a block, then restore it.

    Syne Tune 0.16 draws from it besides its own generators (asynchronous
    Hyperband picks brackets with it), so without this, a seed would not
    fix a run.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def sampled_configs(seed, n_configs, length=2000):
    """The configurations a run with ``seed`` tries, in order.

    Every method gets the same sequence for the same seed (as
    ``points_to_evaluate``), which makes comparisons between methods
    paired: they differ only in how they use the same draws.
    """
    rng = np.random.default_rng(seed)
    return [{'config_id': int(i)} for i in rng.integers(n_configs,
                                                        size=length)]


def make_scheduler(method, config_space, seed, max_epochs, grace_period=1,
                   reduction_factor=3, brackets=None):
    """The Syne Tune scheduler behind each name in :data:`METHODS`.

    Hyperband gets by default one bracket per rung level, ``max_epochs``
    included; ``ASHA in rounds`` is plain ASHA, which :func:`simulate`
    runs with ``Tuner(asynchronous_scheduling=False)``.
    """
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    points = sampled_configs(seed, len(config_space['config_id']))
    if method == 'random search':
        return RandomSearch(config_space, metrics=['validation_error'],
                            do_minimize=True, random_seed=seed,
                            points_to_evaluate=points)
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}; choose from {METHODS}')
    if brackets is None:
        brackets = (len(rung_levels_formula(grace_period, reduction_factor,
                                            max_epochs + 1))
                    if method == 'Hyperband' else 1)
    return ASHA(config_space, metric='validation_error', time_attr='epoch',
                max_t=max_epochs, grace_period=grace_period,
                reduction_factor=reduction_factor, brackets=brackets,
                do_minimize=True, random_seed=seed,
                points_to_evaluate=points)


def _tuner_class():
    """Syne Tune's ``Tuner`` without its real ``time.sleep(0)`` per step.

    With ``sleep_time=0`` (what the simulator requires) each loop of the
    tuner still yields the CPU once; in a simulation of thousands of
    steps that was a third of the run time. The callbacks are still told
    about every sleep, which is how the simulated clock advances.
    """
    from syne_tune import Tuner

    class SimulatedTuner(Tuner):
        def _sleep(self):
            for callback in self.callbacks:
                callback.on_tuning_sleep(self.sleep_time)

    return SimulatedTuner


def simulate(method, seed, curves, n_workers=2, max_wallclock_time=480,
             grace_period=1, reduction_factor=3, brackets=None,
             sleep_time=0.5, stop_below=None):
    """Simulate one tuning run of ``method`` on ``curves``.

    ``curves`` comes from :func:`load_curves` (possibly :func:`cut` or
    :func:`with_startup`); the run lasts ``max_wallclock_time`` simulated
    seconds and polls every ``sleep_time`` seconds, as the real tuner.
    ``ASHA in rounds`` starts trials in rounds of ``n_workers``
    (``Tuner(asynchronous_scheduling=False)``), with ASHA's decisions.
    With ``stop_below``, the run also ends at the first validation error
    at or below that value (for measuring times to reach it, at less cost).
    """
    from syne_tune import StoppingCriterion
    from syne_tune.backend.simulator_backend.simulator_callback import (
        SimulatorCallback)

    blackbox = make_blackbox(curves)
    max_epochs = int(curves['epoch'].max())
    config_space = dict(blackbox.configuration_space, max_epochs=max_epochs)
    backend = _backend_class()(
        blackbox, elapsed_time_attr='cpu_time',
        max_resource_attr='max_epochs', tuner_sleep_time=sleep_time)
    callback = SimulatorCallback()
    # What SimulatorCallback would make of max_wallclock_time (simulated
    # time is reported as st_tuner_time), which would drop min_metric_value
    stop = StoppingCriterion(
        max_metric_value={'st_tuner_time': max_wallclock_time},
        min_metric_value=None if stop_below is None else {  # strict <
            'validation_error': np.nextafter(stop_below, np.inf)})
    with _quiet_and_temporary(), _numpy_seeded(seed):
        scheduler = make_scheduler(method, config_space, seed, max_epochs,
                                   grace_period, reduction_factor, brackets)
        _tuner_class()(
            trial_backend=backend, scheduler=scheduler,
            stop_criterion=stop, n_workers=n_workers, sleep_time=0,
            callbacks=[callback],
            asynchronous_scheduling=(method != 'ASHA in rounds'),
            save_tuner=False).run()
    configs = _configs(curves)
    results = _results(callback.dataframe(), configs, max_wallclock_time)
    return Simulation(results, _trials(results, backend, configs,
                                       max_epochs, max_wallclock_time))


def _configs(curves):
    """Per configuration: hyperparameters, ``diverged``, and
    ``diverged_at`` (its last real epoch)."""
    by_config = curves.groupby('config_id')
    configs = by_config[[*HYPERPARAMETERS, 'diverged']].first()
    configs['diverged_at'] = (~curves['padded']).groupby(
        curves['config_id']).sum()
    return configs


def _results(raw, configs, max_wallclock_time):
    if raw.empty:  # no report within the budget
        raw = pd.DataFrame(columns=['st_tuner_time', 'st_decision',
                                    'config_config_id', 'trial_id', 'epoch',
                                    *OBJECTIVES])
    df = raw.rename(columns={'st_tuner_time': 'time',
                             'st_decision': 'decision',
                             'config_config_id': 'config_id'})
    df = df[df['time'] <= max_wallclock_time]
    df = df.sort_values('time', kind='stable').reset_index(drop=True)
    df = df.join(configs[HYPERPARAMETERS], on='config_id')
    df['best'] = df['validation_error'].cummin()
    return df[['trial_id', 'config_id', *HYPERPARAMETERS, 'epoch',
               'validation_error', 'cpu_time', 'decision', 'time', 'best']]


def _status(info, last, end, max_epochs, max_wallclock_time):
    """How a trial ended, from its config and its last report (or None)."""
    epochs = 0 if last is None else int(last['epoch'])
    if info['diverged'] and epochs >= info['diverged_at']:
        return 'diverged'
    if epochs >= max_epochs:
        return 'completed'
    if last is not None and last['decision'] == 'STOP' \
            and end < max_wallclock_time:
        return 'stopped'
    return 'cut off'


def _trials(results, backend, configs, max_epochs, max_wallclock_time):
    last = results.groupby('trial_id').last()
    best = results.groupby('trial_id')['validation_error'].min()
    rows = []
    for trial_id, config in backend.configs.items():
        start = backend.started.get(trial_id, np.inf)
        if start >= max_wallclock_time:
            continue  # launched at the very end; never ran within budget
        config_id = int(config['config_id'])
        report = last.loc[trial_id] if trial_id in last.index else None
        end = min(backend.ended.get(trial_id, np.inf), max_wallclock_time)
        rows.append(dict(
            trial_id=trial_id, config_id=config_id, start=start, end=end,
            epochs=0 if report is None else int(report['epoch']),
            best_error=best.get(trial_id, np.nan),
            status=_status(configs.loc[config_id], report, end, max_epochs,
                           max_wallclock_time)))
    trials = pd.DataFrame(rows, columns=['trial_id', 'config_id', 'start',
                                         'end', 'epochs', 'best_error',
                                         'status'])
    return trials.join(configs[HYPERPARAMETERS],
                       on='config_id').set_index('trial_id')


def _one_run(task):
    method, seed, curves, kwargs = task
    sim = simulate(method, seed, curves, **kwargs)
    return sim.results.assign(method=method, seed=seed,
                              n_trials=sim.n_trials)


def run_many(methods, seeds, curves, processes=None, **kwargs):
    """Simulate every method with every seed; one long table of reports.

    The ``results`` of :func:`simulate` with ``method``, ``seed`` and
    ``n_trials`` (trials started in that run) in front; ``kwargs`` go to
    :func:`simulate`. The runs are independent and deterministic, so they
    are spread over ``processes`` (default: one per CPU core) worker
    processes; the result does not depend on how many.

    The workers are started fresh ('spawn'), not forked: a process forked
    from a Jupyter kernel inherits its threads' locks, and such a worker
    was seen to hang when the pool ended. The pool is closed and joined,
    so the workers exit on their own and none is left behind.
    """
    import multiprocessing
    tasks = [(m, s, curves, kwargs) for m in methods for s in seeds]
    processes = min(processes or os.cpu_count() or 1, len(tasks))
    if processes > 1:
        pool = multiprocessing.get_context('spawn').Pool(processes)
        try:
            frames = pool.map(_one_run, tasks, chunksize=1)
            pool.close()
        except BaseException:
            pool.terminate()  # an error or Ctrl+C: stop the workers now
            raise
        finally:
            pool.join()
    else:
        frames = [_one_run(task) for task in tasks]
    df = pd.concat(frames, ignore_index=True)
    first = ['method', 'seed', 'n_trials']
    return df[first + [c for c in df.columns if c not in first]]


def best_at(times, errors, grid):
    """Best error so far at each time of ``grid`` (NaN before any)."""
    order = np.argsort(times, kind='stable')
    times = np.asarray(times, dtype=float)[order]
    best = np.minimum.accumulate(np.asarray(errors, dtype=float)[order])
    idx = np.searchsorted(times, grid, side='right') - 1
    return np.where(idx >= 0, best[np.maximum(idx, 0)], np.nan)


def best_so_far_quantiles(runs, grid):
    """Per method and time of ``grid``: ``median``, ``q25``, ``q75`` over
    seeds of the best error so far (NaN until every run has reported)."""
    rows = []
    for method, by_method in runs.groupby('method', sort=False):
        best = np.stack([best_at(r['time'], r['validation_error'], grid)
                         for _, r in by_method.groupby('seed')])
        with warnings.catch_warnings():  # all-NaN columns stay NaN
            warnings.simplefilter('ignore', RuntimeWarning)
            q = np.quantile(best, [0.25, 0.5, 0.75], axis=0)
        q[:, np.isnan(best).any(axis=0)] = np.nan
        rows.append(pd.DataFrame(dict(method=method, time=grid,
                                      q25=q[0], median=q[1], q75=q[2])))
    return pd.concat(rows, ignore_index=True)


def time_to_reach(runs, target):
    """Per ``method`` and ``seed``: first simulated time at which the best
    error was <= ``target`` (``inf`` if never within the budget)."""
    hit = runs[runs['validation_error'] <= target]
    first = hit.groupby(['method', 'seed'], sort=False)['time'].min()
    every = runs.groupby(['method', 'seed'], sort=False).size().index
    return first.reindex(every, fill_value=np.inf).rename('time')


def bootstrap_interval(values, statistic, n_boot=2000, seed=0):
    """95% percentile bootstrap interval of ``statistic`` over seeds.

    ``values`` is an array of shape (seeds, ...); seeds are resampled
    with replacement, keeping each seed's entries together (paired).
    """
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(values), size=(n_boot, len(values)))
    with np.errstate(invalid='ignore'):
        stats = np.array([statistic(values[i]) for i in idx])
    # no interpolation, since statistics may be infinite (never reached);
    # undefined ones (a ratio of two infinite times) are left out
    stats = stats[~np.isnan(stats)]
    if not len(stats):
        return (np.nan, np.nan)
    return tuple(np.quantile(stats, [0.025, 0.975],
                             method='inverted_cdf'))


def _median_ratio(pair):
    with np.errstate(invalid='ignore'):  # inf / inf is undefined: NaN
        return np.median(pair[:, 0]) / np.median(pair[:, 1])


def compare(runs, target, reference='random search'):
    """How fast each method reached ``target``, against ``reference``.

    One row per method: ``median_time`` with its 95% bootstrap interval
    (``low``, ``high``), ``ratio`` of its median time to the reference's
    with interval (seeds resampled in pairs), ``first``: in how many seeds
    it reached the target before the reference did (ties count half),
    ``reached`` (share of runs), ``final_best`` (median) and ``trials``
    (median started). Runs that never reached the target count as
    infinitely slow.
    """
    times = time_to_reach(runs, target).unstack('method')
    ref = times[reference].to_numpy()
    rows = []
    for method in runs['method'].unique():
        t = times[method].to_numpy()
        pair = np.column_stack([t, ref])
        by_seed = runs[runs['method'] == method].groupby('seed')
        rows.append(dict(
            method=method, median_time=np.median(t),
            low=bootstrap_interval(t, np.median)[0],
            high=bootstrap_interval(t, np.median)[1],
            ratio=_median_ratio(pair),
            ratio_low=bootstrap_interval(pair, _median_ratio)[0],
            ratio_high=bootstrap_interval(pair, _median_ratio)[1],
            first=(t < ref).sum() + 0.5 * (t == ref).sum(),
            seeds=len(t), reached=np.isfinite(t).mean(),
            final_best=by_seed['validation_error'].min().median(),
            trials=by_seed['n_trials'].first().median()))
    return pd.DataFrame(rows).set_index('method')


def speedup(curves, n_workers_list=(1, 2, 4, 8, 16, 32), seeds=range(50),
            target=None, max_wallclock_time=4800, **kwargs):
    """How much sooner random search reaches ``target`` with K workers.

    For each K: the median over seeds of the simulated time T_K to reach
    ``target`` (default :func:`default_target`), ``speedup`` T_1 / T_K
    with a 95% bootstrap interval (seeds resampled in pairs; the same seed
    draws the same configurations for every K), and ``efficiency``
    (speed-up / K). K workers get ``max_wallclock_time / K`` seconds.
    """
    target = default_target(curves) if target is None else target
    times = {}
    for k in n_workers_list:
        runs = run_many(['random search'], seeds, curves, n_workers=k,
                        max_wallclock_time=max_wallclock_time / k,
                        stop_below=target, **kwargs)
        times[k] = time_to_reach(runs, target).to_numpy()
    rows = []
    t1 = times[n_workers_list[0]]
    for k, t in times.items():
        pair = np.column_stack([t1, t])
        low, high = bootstrap_interval(pair, _median_ratio)
        rows.append(dict(n_workers=k, median_time=np.median(t),
                         speedup=_median_ratio(pair), low=low, high=high,
                         reached=np.isfinite(t).mean()))
    table = pd.DataFrame(rows).set_index('n_workers')
    table['efficiency'] = table['speedup'] / table.index * n_workers_list[0]
    return table


def default_target(curves, quantile=0.1):
    """An error only the best ``quantile`` of the configurations reach."""
    best = curves.groupby('config_id')['validation_error'].min()
    return float(best.quantile(quantile))


def saving_sweep(curves, startups, epoch_budgets, seeds, n_workers=2,
                 max_wallclock_time=480, **kwargs):
    """ASHA's time to random search's result, as the problem changes.

    For every number of epochs in ``epoch_budgets`` (curves :func:`cut`
    to it) and start-up cost in ``startups`` (:func:`with_startup`): the
    target is random search's median best error after
    ``max_wallclock_time``; both methods run for twice that. One row per
    variant with the target, both median times, ``ratio`` (ASHA / random
    search) and its 95% bootstrap interval.
    """
    rows = []
    for epochs in epoch_budgets:
        for startup in startups:
            variant = with_startup(cut(curves, epochs), startup)
            rs = run_many(['random search'], seeds, variant,
                          n_workers=n_workers,
                          max_wallclock_time=2 * max_wallclock_time,
                          **kwargs)
            target = best_so_far_quantiles(
                rs, [max_wallclock_time])['median'].item()
            asha = run_many(['ASHA'], seeds, variant, n_workers=n_workers,
                            max_wallclock_time=2 * max_wallclock_time,
                            stop_below=target, **kwargs)
            runs = pd.concat([rs, asha], ignore_index=True)
            row = compare(runs, target).loc['ASHA']
            rows.append(dict(epochs=epochs, startup=startup, target=target,
                             rs_time=compare(rs, target)['median_time']
                             .item(), asha_time=row['median_time'],
                             ratio=row['ratio'], low=row['ratio_low'],
                             high=row['ratio_high']))
    return pd.DataFrame(rows)


def cached(path, compute, **params):
    """``compute(**params)``, stored in the CSV file ``path``.

    The file's first line records the function, the parameters and a hash
    of the file of every table among them (``curves`` from
    :func:`load_curves`); a file whose line differs is recomputed and
    overwritten, so deleting it, changing a parameter or re-recording the
    curves all lead to a fresh computation. A named index is kept. The
    table is always returned as read from the file, so a fresh and a
    stored result print alike.
    """
    key = {k: (hashlib.sha256(Path(v.attrs['source']).read_bytes())
               .hexdigest()[:16] if isinstance(v, pd.DataFrame) else
               list(v) if isinstance(v, range) else v)
           for k, v in params.items()}
    key['function'] = compute.__name__
    line = '# ' + json.dumps(key, sort_keys=True, default=str)
    path = Path(path)
    if not (path.exists() and
            path.read_text().split('\n', 1)[0] == line):
        table = compute(**params)
        index = table.index.name
        with open(path, 'w') as f:
            f.write(line + '\n')
            f.write(f'# index: {index or ""}\n')
            (table.reset_index() if index else table).to_csv(
                f, index=False, float_format='%.6g')
    index = path.read_text().split('\n', 2)[1][len('# index: '):]
    table = pd.read_csv(path, comment='#')
    return table.set_index(index) if index else table


def plot_quantiles(quantiles, methods=None, target=None, ylim=None):
    """Median (line) and quartiles (band) of the best error over time."""
    from d2l import torch as d2l
    d2l.set_figsize((6, 3))
    ax = d2l.plt.gca()
    for i, method in enumerate(methods or quantiles['method'].unique()):
        q = quantiles[quantiles['method'] == method]
        ax.step(q['time'], q['median'], where='post', color=f'C{i}',
                label=f'{method} (median, quartiles)')
        ax.fill_between(q['time'], q['q25'], q['q75'], step='post',
                        color=f'C{i}', alpha=0.2, linewidth=0)
    if target is not None:
        ax.axhline(target, color='gray', linestyle=':', linewidth=1)
    ax.set_xlabel('simulated wall-clock time (s)')
    ax.set_ylabel('best validation error')
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    return ax


def where_run_fell(times, errors, runs, horizon):
    """Place a real run among simulated runs of the same method.

    ``times``, ``errors``: the real run's reports (seconds since it
    started, validation errors); ``runs``: :func:`run_many` output of one
    method. Returns the real best error at ``horizon``, the simulated
    quartiles there, the share of simulated runs that were worse, and
    the time of the real run's last improvement.
    """
    real = best_at(times, errors, [horizon])[0]
    simulated = np.array([best_at(r['time'], r['validation_error'],
                                  [horizon])[0]
                          for _, r in runs.groupby('seed')])
    times, errors = np.asarray(times, float), np.asarray(errors, float)
    within = times <= horizon
    improved = times[within][errors[within] == real].min()
    return dict(best=real, q25=np.quantile(simulated, 0.25),
                median=np.median(simulated),
                q75=np.quantile(simulated, 0.75),
                worse=float(np.mean(simulated > real)),
                last_improvement=float(improved), seeds=len(simulated))


def describe_run(place, horizon):
    """One sentence that says where a real run fell, from
    :func:`where_run_fell`."""
    share = place['worse']
    verdict = ('a lucky run' if share >= 0.75 else
               'an unlucky run' if share <= 0.25 else 'a typical run')
    return (f'After {horizon:.0f} s this run\'s best validation error was '
            f'{place["best"]:.4f}, found at {place["last_improvement"]:.0f}'
            f' s; {100 * share:.0f}% of {place["seeds"]} simulated runs '
            f'ended worse (simulated median {place["median"]:.4f}, '
            f'quartiles {place["q25"]:.4f} to {place["q75"]:.4f}): '
            f'{verdict}.')


def plot_run_over_band(times, errors, sims=None, label='this run'):
    """A real run's best error so far, over the median and quartiles of
    simulated runs (:func:`run_many` output of one method) if given.

    The y-axis is zoomed to where the curves are after the first tenth of
    the run.
    """
    from d2l import torch as d2l
    times, errors = np.asarray(times, float), np.asarray(errors, float)
    order = np.argsort(times, kind='stable')
    times, best = times[order], np.minimum.accumulate(errors[order])
    d2l.set_figsize((6, 3))
    ax = d2l.plt.gca()
    horizon = times.max()
    low, high = best.min(), best[times >= horizon / 10][0]
    if sims is not None:
        grid = np.linspace(0, sims['time'].max(), 400)
        q = best_so_far_quantiles(sims, grid)
        method = q['method'].iloc[0]
        ax.fill_between(q['time'], q['q25'], q['q75'], step='post',
                        color='C0', alpha=0.2, linewidth=0,
                        label=f'simulated {method}: quartiles')
        ax.step(q['time'], q['median'], where='post', color='C0',
                label=f'simulated {method}: median')
        horizon = max(horizon, grid[-1])
        after = q[q['time'] >= horizon / 10]
        low = min(low, after['q25'].min())
        high = max(high, after['median'].iloc[0])
    ax.step(times, best, where='post', color='C3', linewidth=2,
            label=label)
    margin = 0.1 * (high - low) + 0.002
    ax.set_ylim(low - margin, min(1.0, high + margin))
    ax.set_xlim(0, horizon)
    ax.set_xlabel('wall-clock time (s)')
    ax.set_ylabel('best validation error')
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    return ax


def plot_saving(saving):
    """ASHA's time to random search's target, relative to random search,
    against the start-up cost; one line per number of epochs, with 95%
    intervals. ``saving`` comes from :func:`saving_sweep`."""
    from d2l import torch as d2l
    d2l.set_figsize((4.5, 3))
    ax = d2l.plt.gca()
    for i, (epochs, rows) in enumerate(saving.groupby('epochs')):
        ax.errorbar(rows['startup'], rows['ratio'],
                    yerr=[rows['ratio'] - rows['low'],
                          rows['high'] - rows['ratio']],
                    marker='o', capsize=3, color=f'C{i}',
                    label=f'r_max = {epochs} epochs')
    ax.axhline(1.0, color='gray', linestyle=':', linewidth=1)
    ax.set_xlabel('start-up cost per trial (s)')
    ax.set_ylabel('ASHA time / random search time')
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    return ax
