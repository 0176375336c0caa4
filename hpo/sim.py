"""Replay recorded learning curves: the chapter's runs, many times over.

:func:`simulate` runs a real Syne Tune scheduler on a table made by
``hpo.record_curves`` (per configuration and epoch: validation error,
CPU seconds used): a trial "trains" by looking up its next row, and the
clock jumps to when that row was reported. Runs draw the recorded
configurations with replacement, so they vary by their draws only.
"""
import contextlib
import hashlib
import io
import itertools
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

import hpo.stats
from hpo.trials import ended_as
from hpo.tuner import HYPERPARAMETERS

CHAPTER = Path(__file__).resolve().parents[1] / 'chapter_hpo'
CURVES = CHAPTER / 'curves_lenet.csv'
TEST_CURVES = CHAPTER / 'curves_test.csv'
# the simulator's clock is cpu_time; final_error is the validation error
# of a trial that ran all its epochs (1.0 before), what a tuner delivers
OBJECTIVES = ['validation_error', 'cpu_time', 'final_error']
COLUMNS = ['config_id', *HYPERPARAMETERS, 'epoch', 'validation_error',
           'elapsed_time', 'cpu_time', 'startup_time', 'startup_cpu_time',
           'test_error']
METHODS = ('random search', 'ASHA', 'Hyperband', 'synchronous SH')
# Part of the key of every cached simulation: raise it when a change of
# this module or of hpo.stats changes what a cached table holds.
SIM_VERSION = 3


def table_setup(path):
    """The set-up a table was recorded with, from its ``# set-up:`` line."""
    with open(path) as f:
        for line in f:
            if line.startswith('# set-up:'):
                pairs = (item.split('=', 1) for item in line[9:].split())
                return {k: int(v) if v.isdigit() else v for k, v in pairs}
    raise ValueError(f'{path}: no "# set-up:" line')


def curves_for(setup):
    """The recorded table of ``setup`` (same fixed arguments, threads per
    trial and workers, no GPU), or ``None``."""
    wanted = dict(setup.constants, threads_per_trial=setup.threads_per_trial,
                  n_workers=setup.n_workers)
    return next((path for path in (CURVES, TEST_CURVES) if path.exists()
                 and table_setup(path) == wanted
                 and setup.gpus_per_trial == 0), None)


def check_curve(curve, where, max_epochs):
    """Raise ``ValueError`` unless one configuration's rows (the table's
    columns) form a whole curve: epochs 1 to ``max_epochs``, or fewer
    ending in a divergence (error 1.0 with a test error)."""
    for name in HYPERPARAMETERS:
        if curve[name].nunique() > 1:
            raise ValueError(f'{where}: {name} changes between epochs')
    epochs = curve['epoch'].tolist()
    if not epochs or epochs != list(range(1, len(epochs) + 1)):
        raise ValueError(f'{where}: epochs {epochs} are not 1, 2, ... '
                         '(each once)')
    if (np.diff(curve['cpu_time']) < 0).any():
        raise ValueError(f'{where}: cpu_time decreases; it must be cumulative')
    final = curve.iloc[-1]
    diverged = final['validation_error'] == 1.0 and pd.notna(
        final['test_error'])
    if epochs[-1] < max_epochs and not diverged:
        raise ValueError(f'{where}: epochs stop at {epochs[-1]} < '
                         f'{max_epochs}, and not a divergence')


def load_curves(path=CURVES):
    """The checked table of learning curves at ``path``, one row per
    configuration and epoch, with ``diverged`` and ``padded``: a diverged curve
    goes on to the last epoch at error 1.0 and at no cost (the real script
    stopped at the divergence). ``ValueError`` names what is malformed."""
    df = pd.read_csv(path, comment='#')
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f'{path}: missing column(s) {missing}')
    required = [c for c in COLUMNS if c != 'test_error']
    for bad, problem in [
            (df.empty or df[required].isna().any(axis=None),
             'no rows, or empty values in required columns'),
            (((df['epoch'] % 1 != 0) | (df['epoch'] < 1)).any(),
             'epochs must be whole numbers >= 1'),
            (not df['validation_error'].between(0, 1).all(),
             'validation_error must lie in [0, 1]'),
            ((df[['elapsed_time', 'cpu_time']] <= 0).any(axis=None),
             'elapsed_time and cpu_time must be positive')]:
        if bad:
            raise ValueError(f'{path}: {problem}')
    df = df.astype({'epoch': int}).sort_values(['config_id', 'epoch'])
    max_epochs = int(df['epoch'].max())
    for config_id, curve in df.groupby('config_id'):
        check_curve(curve, f'{path}: configuration {config_id}', max_epochs)
    last = df.groupby('config_id').tail(1)
    pad = last.loc[last.index.repeat(max_epochs - last['epoch'])]
    pad = pad.assign(epoch=pad['epoch'] + pad.groupby(level=0).cumcount() + 1,
                     validation_error=1.0, test_error=np.nan)
    df = df.assign(diverged=df['config_id'].isin(pad['config_id']))
    curves = pd.concat([df.assign(padded=False),
                        pad.assign(diverged=True, padded=True)])
    return curves.sort_values(['config_id', 'epoch'], ignore_index=True)


def cut(curves, max_epochs):
    """The curves as if every trial had been trained ``max_epochs``."""
    return curves[curves['epoch'] <= max_epochs].reset_index(drop=True)


def with_startup(curves, seconds):
    """The curves with every trial's start-up set to ``seconds``."""
    shift = seconds - curves['startup_cpu_time']
    return curves.assign(cpu_time=curves['cpu_time'] + shift,
                         startup_cpu_time=float(seconds))


def scaled(curves, factor):
    """The curves with every recorded time multiplied by ``factor``."""
    return curves.assign(**(curves[['cpu_time', 'startup_cpu_time']] * factor))


def speed_factor(reports, trials, curves):
    """How much longer this machine takes than the recording: the
    seconds from each trial's start to its last report in a real run
    (``reports``, ``trials``), summed, over what the recording predicts
    for them (per epoch, a least-squares fit of ``a + b / batch_size``
    over the configurations); :func:`scaled` applies it."""
    last = reports.sort_values('time').groupby('trial_id').last()
    joined = last[['epoch', 'time']].join(trials[['start', 'batch_size']])
    if not len(joined):
        raise ValueError('no reports to measure the speed of this machine')
    real = curves[~curves['padded']]
    coef = np.array([np.linalg.lstsq(
        np.column_stack([np.ones(len(g)), 1 / g['batch_size']]),
        g['cpu_time'], rcond=None)[0]
        for _, g in real.groupby('epoch')])  # row e - 1: epoch e
    a, b = coef[joined['epoch'].to_numpy(int) - 1].T
    predicted = a + b / joined['batch_size'].to_numpy(float)
    return float((joined['time'] - joined['start']).sum() / predicted.sum())


def make_blackbox(curves):
    """A Syne Tune ``BlackboxTabular`` of the recorded curves: its one
    hyperparameter is ``config_id`` (only recorded configurations), its
    fidelity ``epoch``. The subclass looks rows up by ``config_id``,
    which ``BlackboxTabular`` fails to do for a single column."""
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
    values = curves.assign(final_error=curves['validation_error'].where(
        curves['epoch'] == n_epochs, 1.0))[OBJECTIVES].to_numpy(float)
    with warnings.catch_warnings():  # Syne Tune 0.16 on pandas 3.1
        warnings.filterwarnings('ignore', message='The inplace keyword')
        return RecordedCurves(
            hyperparameters=pd.DataFrame({'config_id': ids}),
            configuration_space={'config_id': choice(list(ids))},
            fidelity_space={'epoch': randint(1, n_epochs)},
            objectives_evaluations=values.reshape(len(ids), 1, n_epochs, -1),
            objectives_names=list(OBJECTIVES))


def rung_levels_formula(grace_period, reduction_factor, max_t):
    """``grace_period * reduction_factor**k`` for all values below max_t."""
    levels, r = [], grace_period
    while r < max_t:
        levels.append(r)
        r *= reduction_factor
    return levels


def epochs_per_trial(grace_period, reduction_factor, max_t):
    """The mean epochs of a trial if exactly ``1/reduction_factor`` of the
    trials at each rung go on (ASHA's idealised budget)."""
    ends = rung_levels_formula(grace_period, reduction_factor, max_t)
    ends.append(max_t)
    return sum((end - start) / reduction_factor ** k
               for k, (start, end) in enumerate(zip([0, *ends], ends)))


class Simulation(NamedTuple):
    """What :func:`simulate` returns: the reports within the budget in time
    order (``time``, ``final``: a trial's last epoch, ``best``: best final
    error so far), the trials started within it, and synchronous SH's jobs."""
    results: pd.DataFrame
    trials: pd.DataFrame
    jobs: pd.DataFrame = None


def _simulator_classes():
    """Syne Tune's ``UserBlackboxBackend``, noting each trial's config,
    start and end, and ``Tuner``, both deterministic and fast: Syne Tune
    adds the tuner's *real* time to the simulated clock, and sleeps 0 s
    for real at each step (a third of the time); here only simulated
    steps move the clock, and the callbacks still hear of every sleep."""
    from syne_tune import Tuner
    from syne_tune.blackbox_repository import UserBlackboxBackend

    class DeterministicBackend(UserBlackboxBackend):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.trials = {}  # trial_id: its config_id, start and end

        def start_trial(self, config, checkpoint_trial_id=None):
            trial = super().start_trial(config, checkpoint_trial_id)
            self.trials[trial.trial_id] = dict(
                config_id=int(config['config_id']), start=np.inf, end=np.inf)
            return trial

        def _advance_by_outside_time(self):
            pass

        def _process_start_event(self, trial_id, time_event, config=None):
            self.trials[trial_id]['start'] = time_event
            super()._process_start_event(trial_id, time_event, config)

        def _process_complete_event(self, trial_id, time_event, status):
            self.trials[trial_id]['end'] = time_event
            super()._process_complete_event(trial_id, time_event, status)

    class SimulatedTuner(Tuner):
        def _sleep(self):
            for callback in self.callbacks:
                callback.on_tuning_sleep(self.sleep_time)

    return DeterministicBackend, SimulatedTuner


@contextlib.contextmanager
def _quiet_and_seeded(seed):
    """Silence the tuner, send its files to a temporary folder, and seed
    NumPy's global generator (Syne Tune 0.16 draws from it too: async
    Hyperband's brackets); restore the logging and generator after."""
    previous, state = logging.root.manager.disable, np.random.get_state()
    logging.disable(logging.WARNING)
    np.random.seed(seed)
    with tempfile.TemporaryDirectory(prefix='hpo-sim-') as folder, \
            mock.patch.dict(os.environ, SYNETUNE_FOLDER=folder), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            yield
        finally:
            logging.disable(previous)
            np.random.set_state(state)


def sampled_configs(seed, n_configs, length=2000):
    """The configurations a run with ``seed`` tries, in order: the same
    for every method, so that comparisons between methods are paired."""
    rng = np.random.default_rng(seed)
    return [{'config_id': int(i)} for i in rng.integers(n_configs,
                                                        size=length)]


def make_scheduler(method, config_space, seed, max_epochs, points,
                   grace_period=1, reduction_factor=3):
    """The Syne Tune scheduler of an asynchronous method, trying
    ``points`` first; Hyperband has a bracket per rung level and r_max."""
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    both = dict(do_minimize=True, random_seed=seed, points_to_evaluate=points)
    if method == 'random search':
        return RandomSearch(config_space, metrics=['validation_error'], **both)
    if method not in ('ASHA', 'Hyperband'):
        raise ValueError(f'unknown method {method!r}; choose from {METHODS}')
    brackets = (len(rung_levels_formula(grace_period, reduction_factor,
                                        max_epochs + 1))
                if method == 'Hyperband' else 1)
    return ASHA(config_space, metric='validation_error', time_attr='epoch',
                max_t=max_epochs, grace_period=grace_period,
                reduction_factor=reduction_factor, brackets=brackets, **both)


def simulate(method, seed, curves, n_workers=2, max_wallclock_time=480,
             grace_period=1, reduction_factor=3, sleep_time=0.5,
             stop_below=None):
    """One tuning run of ``method`` on ``curves`` for
    ``max_wallclock_time`` simulated seconds, polling every
    ``sleep_time``; with ``stop_below``, it ends once a trial that ran
    all its epochs has an error at or below that value."""
    if method == 'synchronous SH':
        return synchronous_run(seed, curves, n_workers, max_wallclock_time,
                               grace_period, reduction_factor, sleep_time)
    from syne_tune import StoppingCriterion
    from syne_tune.backend.simulator_backend.simulator_callback import (
        SimulatorCallback)
    blackbox = make_blackbox(curves)
    max_epochs = int(curves['epoch'].max())
    config_space = dict(blackbox.configuration_space, max_epochs=max_epochs)
    backend_class, tuner_class = _simulator_classes()
    backend = backend_class(
        blackbox, elapsed_time_attr='cpu_time',
        max_resource_attr='max_epochs', tuner_sleep_time=sleep_time)
    callback = SimulatorCallback()
    # What SimulatorCallback would make of max_wallclock_time (simulated
    # time is reported as st_tuner_time), which would drop min_metric_value
    stop = StoppingCriterion(
        max_metric_value={'st_tuner_time': max_wallclock_time},
        min_metric_value=None if stop_below is None else {  # strict <
            'final_error': np.nextafter(stop_below, np.inf)})
    with _quiet_and_seeded(seed):
        scheduler = make_scheduler(
            method, config_space, seed, max_epochs,
            sampled_configs(seed, len(config_space['config_id'])),
            grace_period, reduction_factor)
        tuner_class(
            trial_backend=backend, scheduler=scheduler,
            stop_criterion=stop, n_workers=n_workers, sleep_time=0,
            callbacks=[callback], save_tuner=False).run()
    reports = callback.dataframe().rename(columns={
        'st_tuner_time': 'time', 'st_decision': 'decision',
        'config_config_id': 'config_id'})
    trials = pd.DataFrame.from_dict(backend.trials, orient='index')
    return _simulation(reports, trials, curves, max_wallclock_time,
                       once=method == 'random search')


def _simulation(reports, trials, curves, horizon, jobs=None, once=False):
    """The :class:`Simulation` of a run's ``reports`` and ``trials``
    (``config_id``, ``start``, ``end`` by id) within ``horizon``; with
    ``once``, only each trial's last real report (as ``train_script.py``
    sends). Padded epochs count as past the divergence."""
    max_epochs = int(curves['epoch'].max())
    configs = curves.groupby('config_id')[HYPERPARAMETERS].first()
    last_real = curves[~curves['padded']].groupby('config_id')['epoch'].max()
    if once:
        last = last_real.reindex(reports['config_id']).to_numpy()
        reports = reports[reports['epoch'].to_numpy() == last]
    results = reports[reports['time'] <= horizon].sort_values(
        'time', kind='stable').reset_index(drop=True)
    results = results.join(configs, on='config_id')
    results['final'] = results['epoch'] == max_epochs  # ran all epochs
    delivered = results['validation_error'].where(results['final'])
    results['best'] = delivered.cummin().ffill()  # best delivered so far
    results = results[['trial_id', 'config_id', *HYPERPARAMETERS, 'epoch',
                       'validation_error', 'cpu_time', 'decision', 'time',
                       'final', 'best']]
    trials = trials[trials['start'] < horizon].assign(
        end=trials['end'].clip(upper=horizon))
    by_trial = results.groupby('trial_id')
    epochs = by_trial['epoch'].max().reindex(trials.index, fill_value=0)
    stopped = (by_trial['decision'].last().reindex(trials.index)
               == 'STOP') & (trials['end'] < horizon)
    at = last_real.reindex(trials['config_id']).to_numpy()
    trials = trials.assign(
        epochs=epochs.astype(int),
        best_error=by_trial['validation_error'].min().astype(float),
        status=[ended_as(min(e, d), max_epochs, stopped=s, diverged=e >= d)
                for e, d, s in zip(epochs, at, stopped)])
    trials = trials.rename_axis('trial_id').join(configs, on='config_id')
    return Simulation(results, trials, jobs)


def synchronous_sh(elapsed, errors, n_workers, eta=3, poll=0.5, clock=0,
                   r_min=1):
    """One bracket of synchronous successive halving, job by job.

    Configuration ``i`` reports its validation error ``errors[i, r]`` at
    epoch ``r``, ``elapsed[i, r]`` seconds after its process started
    (``elapsed[i, 0]``: the start-up). All configurations train to rung
    ``r_min``; at each rung, once *every* job of the rung has ended (the
    barrier), the best ``1/eta`` of them go on to ``eta`` times as many
    epochs, resuming where they stopped (as if from a checkpoint) in a new
    process, which pays the start-up again. A free worker takes the next
    job at the tuner's next poll. Returns the jobs as ``(i, from_epoch,
    to_epoch, worker, start, end)``.
    """
    r_max = errors.shape[1] - 1
    alive, done, rung, jobs = list(range(len(errors))), 0, r_min, []
    while True:
        free_at = np.full(n_workers, float(clock))  # the barrier
        for i in alive:
            w = int(np.argmin(free_at))
            start = poll * np.ceil(free_at[w] / poll)
            end = start + elapsed[i, 0] + elapsed[i, rung] - elapsed[i, done]
            jobs.append((i, done + 1, rung, w, start, end))
            free_at[w] = end
        clock = free_at.max()  # the slowest job of the rung
        if rung == r_max:
            return jobs
        alive = sorted(alive, key=lambda i: errors[i, rung])
        alive = alive[:max(1, len(alive) // eta)]
        done, rung = rung, min(rung * eta, r_max)


def synchronous_run(seed, curves, n_workers=2, max_wallclock_time=480,
                    grace_period=1, reduction_factor=3, sleep_time=0.5):
    """Synchronous SH on ``curves``, one bracket after another, each of
    ``reduction_factor ** k`` configurations (27 for rungs 1, 3, 9, 27)
    drawn as :func:`sampled_configs` draws them. A :class:`Simulation`
    whose ``jobs`` (:func:`synchronous_sh`'s) show the barriers."""
    max_epochs = int(curves['epoch'].max())
    size = reduction_factor ** len(
        rung_levels_formula(grace_period, reduction_factor, max_epochs))
    table = curves.pivot(index='config_id', columns='epoch')
    elapsed = np.column_stack([table['startup_cpu_time'][1],
                               table['cpu_time'].to_numpy()])
    errors = np.column_stack([np.ones(len(table)),
                              table['validation_error'].to_numpy()])
    draws = [c['config_id'] for c in sampled_configs(seed, len(table))]
    jobs, clock, first = [], 0.0, 0
    while clock < max_wallclock_time and first + size <= len(draws):
        ids = np.array(draws[first:first + size])
        bracket = synchronous_sh(elapsed[ids], errors[ids], n_workers,
                                 reduction_factor, sleep_time, clock,
                                 grace_period)
        jobs += [(first + i, ids[i], *rest) for i, *rest in bracket]
        clock, first = max(job[-1] for job in bracket), first + size
    jobs = pd.DataFrame(jobs, columns=['trial_id', 'config_id', 'from_epoch',
                                       'to_epoch', 'worker', 'start', 'end'])
    jobs['last_epoch'] = jobs.groupby('trial_id')['to_epoch'].transform(
        'max')  # where the trial stops, even beyond the budget
    jobs = jobs[jobs['start'] < max_wallclock_time].reset_index(drop=True)
    each = jobs.loc[jobs.index.repeat(jobs['to_epoch'] - jobs['from_epoch']
                                      + 1)]  # a report per epoch of a job
    epoch = (each['from_epoch'] + each.groupby(level=0).cumcount()).to_numpy()
    i, before = each['config_id'].to_numpy(), each['from_epoch'] - 1
    reports = pd.DataFrame(dict(
        trial_id=each['trial_id'].to_numpy(), config_id=i, epoch=epoch,
        time=each['start'].to_numpy() + elapsed[i, 0] + elapsed[i, epoch]
        - elapsed[i, before.to_numpy()],
        validation_error=errors[i, epoch], cpu_time=elapsed[i, epoch],
        decision=np.where((epoch == each['last_epoch'].to_numpy())
                          & (epoch < max_epochs), 'STOP', 'CONTINUE')))
    trials = jobs.groupby('trial_id').agg(config_id=('config_id', 'first'),
                                          start=('start', 'min'),
                                          end=('end', 'max'))
    return _simulation(reports, trials, curves, max_wallclock_time, jobs)


def _one_run(task):
    method, seed, curves, kwargs = task
    sim = simulate(method, seed, curves, **kwargs)
    results = sim.results
    if results.empty:  # keep the run: it delivered nothing
        results = pd.DataFrame({'time': [np.nan], 'final': [False],
                                'validation_error': [np.nan]})
    front = dict(method=method, seed=seed, n_trials=len(sim.trials))
    return pd.DataFrame(front, index=results.index).join(results)


def run_many(methods, seeds, curves, processes=None, **kwargs):
    """Every method with every seed: :func:`simulate`'s ``results`` (its
    ``kwargs``) with ``method``, ``seed`` and ``n_trials`` in front, over
    ``processes`` (default: one per core). The workers are spawned: one
    forked from a Jupyter kernel inherits its threads' locks, and hung."""
    import multiprocessing
    tasks = [(m, s, curves, kwargs) for m in methods for s in seeds]
    processes = min(processes or os.cpu_count() or 1, len(tasks))
    if processes > 1:  # leaving the pool stops its workers, also on Ctrl+C
        with multiprocessing.get_context('spawn').Pool(processes) as pool:
            frames = pool.map(_one_run, tasks, chunksize=1)
    else:
        frames = [_one_run(task) for task in tasks]
    return pd.concat(frames, ignore_index=True)


def heldout(seeds):
    """As many seeds as ``seeds``, none of them: for estimating a target
    that the runs of ``seeds`` are then compared on."""
    seeds = list(seeds)
    return range(max(seeds) + 1, max(seeds) + 1 + len(seeds))


def speedup(curves, n_workers_list=(1, 2, 4, 8, 16, 32), seeds=range(50),
            target=None, max_wallclock_time=4800, **kwargs):
    """How much sooner random search reaches ``target`` with K workers,
    each with a machine of its own: per K, the median time to it
    (censored at ``max_wallclock_time / K``), the share that got there,
    ``speedup`` (median T_1 / T_K, interval) and speed-up / K."""
    target = default_target(curves) if target is None else target
    runs = pd.concat([run_many(['random search'], seeds, curves,
                               n_workers=k, stop_below=target,
                               max_wallclock_time=max_wallclock_time / k,
                               **kwargs).assign(method=k)  # K as method
                      for k in n_workers_list])
    paired = hpo.stats.paired_comparison(
        hpo.stats.times_to_target(runs, target),
        {k: max_wallclock_time / k for k in n_workers_list},
        reference=n_workers_list[0]).rename_axis('n_workers')
    return pd.DataFrame(dict(
        median_time=paired['median_time'], speedup=1 / paired['ratio'],
        low=1 / paired['high'], high=1 / paired['low'],
        reached=paired['reached'],
        efficiency=1 / paired['ratio'] / paired.index * n_workers_list[0]))


def default_target(curves, quantile=0.1):
    """The final error only the best ``quantile`` of configurations deliver."""
    final = curves[curves['epoch'] == curves['epoch'].max()]
    return float(final['validation_error'].quantile(quantile))


def target_and_times(methods, seeds, curves, n_workers=2,
                     max_wallclock_time=480, **kwargs):
    """The target, random search's median delivered error after
    ``max_wallclock_time`` (:func:`heldout` seeds), and each method's
    times to it with ``seeds`` (``hpo.stats.times_to_target``), each run
    ending at twice ``max_wallclock_time`` or at the target."""
    target = hpo.stats.target_error(run_many(
        ['random search'], heldout(seeds), curves, n_workers=n_workers,
        max_wallclock_time=max_wallclock_time, **kwargs), max_wallclock_time)
    runs = run_many(methods, seeds, curves, n_workers=n_workers,
                    max_wallclock_time=2 * max_wallclock_time,
                    stop_below=target, **kwargs)
    return target, hpo.stats.times_to_target(runs, target)


def saving_sweep(curves, startups, epoch_budgets, seeds, n_workers=2,
                 max_wallclock_time=480, **kwargs):
    """ASHA's time to random search's result per number of epochs and
    start-up (:func:`target_and_times`): the target, both median times,
    their paired ratio and interval."""
    rows = []
    for epochs, startup in itertools.product(epoch_budgets, startups):
        target, times = target_and_times(
            ['random search', 'ASHA'], seeds,
            with_startup(cut(curves, epochs), startup), n_workers,
            max_wallclock_time, **kwargs)
        table = hpo.stats.paired_comparison(times, 2 * max_wallclock_time)
        rows.append(dict(
            epochs=epochs, startup=startup, target=target,
            rs_time=table.loc['random search', 'median_time'],
            asha_time=table.loc['ASHA', 'median_time'],
            **table.loc['ASHA', ['ratio', 'low', 'high']]))
    return pd.DataFrame(rows)


def cached(path, compute, **params):
    """``compute(**params)``, stored in ``path`` under a line of the
    function, the parameters (tables hashed) and :data:`SIM_VERSION`;
    recomputed when the line differs; always returned as read."""
    key = {k: (hashlib.sha256(pd.util.hash_pandas_object(v).to_numpy())
               .hexdigest()[:16] if isinstance(v, pd.DataFrame) else
               list(v) if isinstance(v, range) else v)
           for k, v in params.items()}
    line = '# ' + json.dumps(dict(key, function=compute.__name__,
                                  version=SIM_VERSION),
                             sort_keys=True, default=str)
    path = Path(path)
    if not (path.exists() and path.read_text().split('\n', 1)[0] == line):
        table = compute(**params)
        with open(path, 'w') as f:
            f.write(f'{line}\n# index: {table.index.name or ""}\n')
            table.to_csv(f, index=bool(table.index.name), float_format='%.6g')
    index = path.read_text().split('\n', 2)[1][len('# index: '):]
    return pd.read_csv(path, comment='#', index_col=index or None)
