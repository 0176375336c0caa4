"""Replay recorded learning curves in Syne Tune's simulator.

Comparing tuning methods fairly takes many repetitions: one run of random
search or ASHA is one random draw, and two single runs can differ more
between seeds than between methods. Real runs of eight minutes each are too
expensive to repeat dozens of times, so this module replays a table of
learning curves recorded once by ``record_curves.py``: every configuration
trained for all epochs, with its validation error and the seconds since its
process started after every epoch. Syne Tune's simulator then runs any
scheduler against the table: a trial "trains" by looking up its next row,
and simulated time jumps to the moment that row would have been reported.
One simulated run of eight minutes with two workers takes a fraction of a
second.

Functions:

* :func:`load_curves` reads and checks the table;
* :func:`make_blackbox` turns it into a Syne Tune ``BlackboxTabular``;
* :func:`simulate` runs one method with one seed;
* :func:`run_many`, :func:`best_so_far_quantiles`, :func:`time_to_reach`,
  :func:`summarize` and :func:`plot_quantiles` repeat and summarise runs;
* :func:`speedup` measures how random search scales with the workers.

What the simulation leaves out: configurations are drawn from the recorded
ones only, with replacement, so a long run sees the same configuration
again (the real search would have drawn a new one); and each
configuration has one recorded curve, so the noise of retraining it is
missing.
"""
import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CURVES = HERE / 'curves_lenet.csv'
HYPERPARAMETERS = ['learning_rate', 'momentum', 'batch_size']
OBJECTIVES = ['validation_error', 'elapsed_time']
COLUMNS = ['trial_id', *HYPERPARAMETERS, 'epoch', *OBJECTIVES, 'test_error']
METHODS = ('random search', 'ASHA', 'Hyperband', 'ASHA in rounds')


def load_curves(path=CURVES):
    """Read a table of learning curves and check it.

    The file is a CSV table (lines starting with ``#`` are comments) with
    one row per configuration and epoch and the columns ``trial_id``,
    ``learning_rate``, ``momentum``, ``batch_size``, ``epoch``,
    ``validation_error``, ``elapsed_time`` (seconds since the trial's
    process started, start-up included) and ``test_error``.

    Every configuration must have the epochs 1, 2, ..., up to the largest
    epoch in the table, with one exception: a configuration whose training
    diverged. The training script then reports a validation error of 1.0
    and its test error, and exits before the last epoch. Such a curve is
    padded to all epochs, truthfully: the validation error stays at 1.0 and
    ``elapsed_time`` stays at the moment of divergence, because the real
    script spent no further time. (The simulator then replays the padded
    epochs 0.01 s apart, so the trial ends right after it diverged, as in a
    real run; a scheduler does see the padded reports of 1.0, which a real
    run would not have sent.)

    Returns the table sorted by configuration and epoch, with two extra
    columns per row: ``config_id`` (0, 1, ... in the order of
    ``trial_id``), ``diverged`` (the configuration diverged) and ``padded``
    (the row was added by the padding). Raises ``ValueError`` naming the
    problem if the table is malformed.
    """
    df = pd.read_csv(path, comment='#')
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f'{path}: missing column(s) {missing}; expected '
                         f'{COLUMNS}')
    if df.empty:
        raise ValueError(f'{path}: the table has no rows')
    required = [c for c in COLUMNS if c != 'test_error']
    bad = df[required].isna().any(axis=1)
    if bad.any():
        raise ValueError(f'{path}: empty values in required columns on '
                         f'{int(bad.sum())} row(s), first: '
                         f'{df[bad].iloc[0].to_dict()}')
    if (df['epoch'] != df['epoch'].round()).any() or \
            (df['epoch'] < 1).any():
        raise ValueError(f'{path}: epochs must be whole numbers >= 1')
    df['epoch'] = df['epoch'].astype(int)
    if not df['validation_error'].between(0, 1).all():
        raise ValueError(f'{path}: validation_error must lie in [0, 1]')
    if (df['elapsed_time'] <= 0).any():
        raise ValueError(f'{path}: elapsed_time must be positive')
    df = df.sort_values(['trial_id', 'epoch']).reset_index(drop=True)
    max_epochs = int(df['epoch'].max())
    pieces = []
    for config_id, (trial_id, curve) in enumerate(df.groupby('trial_id')):
        where = f'{path}: configuration with trial_id {trial_id}'
        for name in HYPERPARAMETERS:
            if curve[name].nunique() != 1:
                raise ValueError(f'{where}: {name} changes between epochs')
        epochs = curve['epoch'].tolist()
        last = epochs[-1]
        if epochs != list(range(1, last + 1)):
            raise ValueError(f'{where}: epochs {epochs} are not 1, 2, ..., '
                             f'{last} (each once)')
        if (np.diff(curve['elapsed_time']) < 0).any():
            raise ValueError(f'{where}: elapsed_time decreases; it must be '
                             'cumulative')
        final = curve.iloc[-1]
        diverged = last < max_epochs
        if diverged and not (final['validation_error'] == 1.0
                             and pd.notna(final['test_error'])):
            raise ValueError(
                f'{where}: epochs stop at {last} < {max_epochs}, but the '
                'last row is not a divergence (validation_error 1.0 with '
                'a test_error); was the recording cut short?')
        curve = curve.assign(config_id=config_id, diverged=diverged,
                             padded=False)
        if diverged:
            pad = curve.iloc[[-1] * (max_epochs - last)].assign(
                epoch=range(last + 1, max_epochs + 1),
                validation_error=1.0, test_error=np.nan, padded=True)
            curve = pd.concat([curve, pad], ignore_index=True)
        pieces.append(curve)
    curves = pd.concat(pieces, ignore_index=True)
    curves['epoch'] = curves['epoch'].astype(int)
    curves['padded'] = curves['padded'].astype(bool)
    return curves


def _as_curves(curves):
    """A checked table: ``curves`` itself, or loaded from a path."""
    if curves is None:
        curves = CURVES
    if isinstance(curves, (str, os.PathLike)):
        return load_curves(curves)
    if 'config_id' not in curves.columns:
        raise ValueError('curves must come from load_curves (it adds '
                         'config_id and pads diverged curves)')
    return curves


def make_blackbox(curves=None):
    """A Syne Tune ``BlackboxTabular`` holding the recorded curves.

    Its only hyperparameter is ``config_id``, the row of a recorded
    configuration, with domain ``choice([0, 1, ..., n - 1])``. Syne Tune's
    random searcher samples each hyperparameter independently, so giving
    it ``learning_rate``, ``momentum`` and ``batch_size`` as three
    ``choice`` domains would mostly produce combinations that were never
    recorded (and ``BlackboxTabular`` cannot look those up). A single
    categorical ``config_id`` makes every draw one recorded configuration,
    each with the same probability 1/n; ``choice`` rather than ``randint``,
    because the numbers are labels with no order. The recorded
    hyperparameters are joined back to the results by :func:`simulate`.

    The fidelity is ``epoch`` (1 to the last epoch) and the objectives are
    ``validation_error`` and the cumulative ``elapsed_time``, which the
    simulator turns into the moments of the reports.

    ``BlackboxTabular``'s own lookup of a configuration fails when there is
    a single hyperparameter column (pandas treats the one-element key as a
    row label), so this subclass looks the row up by ``config_id``
    directly.
    """
    from syne_tune.blackbox_repository.blackbox_tabular import (
        BlackboxTabular)
    from syne_tune.config_space import choice, randint

    class RecordedCurves(BlackboxTabular):
        """``BlackboxTabular`` indexed by ``config_id``."""

        def _objective_function(self, configuration, fidelity=None,
                                seed=None):
            if isinstance(configuration, dict):
                config_id = int(configuration['config_id'])
                if not 0 <= config_id < len(self.hyperparameters):
                    raise ValueError(f'no recorded configuration with '
                                     f'config_id {config_id}')
                configuration = config_id
            values = super()._objective_function(configuration, None, seed)
            if fidelity is None:  # all epochs, shape (epochs, objectives)
                return values
            row = values[self.fidelity_map[next(iter(fidelity.values()))]]
            return dict(zip(self.objectives_names, row))

    curves = _as_curves(curves)
    curves = curves.sort_values(['config_id', 'epoch'])
    n_configs = curves['config_id'].nunique()
    n_epochs = int(curves['epoch'].max())
    if len(curves) != n_configs * n_epochs:
        raise ValueError('every configuration needs all epochs; use '
                         'load_curves to read the table')
    values = curves[OBJECTIVES].to_numpy(dtype=float)
    with warnings.catch_warnings():  # Syne Tune 0.16 on pandas 3.1
        warnings.filterwarnings('ignore', message='The inplace keyword')
        return RecordedCurves(
            hyperparameters=pd.DataFrame({'config_id': range(n_configs)}),
            configuration_space={'config_id': choice(list(range(n_configs)))},
            fidelity_space={'epoch': randint(1, n_epochs)},
            objectives_evaluations=values.reshape(n_configs, 1, n_epochs,
                                                  len(OBJECTIVES)),
            fidelity_values=np.arange(1, n_epochs + 1),
            objectives_names=list(OBJECTIVES))


def rung_levels(grace_period, reduction_factor, max_t):
    """Epochs at which ASHA may stop a trial: ``grace_period * rf**k``.

    Only levels below ``max_t`` count: at ``max_t`` a trial is done anyway.
    """
    levels, r = [], grace_period
    while r < max_t:
        levels.append(r)
        r *= reduction_factor
    return levels


class Simulation(NamedTuple):
    """What :func:`simulate` returns.

    ``results``: one row per report within the time budget, in the order of
    simulated time: ``trial_id``, ``config_id``, the recorded
    hyperparameters, ``epoch``, ``validation_error``, ``elapsed_time`` (the
    trial's own clock), ``decision`` (the scheduler's answer to the
    report), ``time`` (simulated seconds since tuning started, when the
    report reached the tuner's backend: 0.05 s after the epoch ended) and
    ``best`` (the lowest validation error reported so far).

    ``trials``: one row per trial started within the budget, with
    ``start`` and ``end`` in simulated seconds (``end`` is cut at the
    budget), ``epochs`` reported, ``best_error`` and ``status``:
    ``completed``, ``stopped`` (by the scheduler), ``diverged`` or ``cut
    off`` (running when time was up); the columns fit
    ``hpo_utils.plot_timeline``.
    """
    results: pd.DataFrame
    trials: pd.DataFrame

    @property
    def n_trials(self):
        """Number of trials started."""
        return len(self.trials)


def _backend_class():
    """The simulator backend, made deterministic; it also logs trials.

    Syne Tune's ``SimulatorBackend`` advances simulated time by the *real*
    time the tuner and scheduler spend between calls to the backend, so
    two runs with the same seed differ by milliseconds here and there (and
    may then order events differently). Here simulated time moves only by
    the tuner's polling interval and the simulator's fixed delays, which
    makes a run a function of its seed. The backend also notes when each
    trial really starts and ends in simulated time.
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
            pass  # the scheduler's computing time is not simulated

        def _process_start_event(self, trial_id, time_event, config=None):
            self.started[trial_id] = time_event
            super()._process_start_event(trial_id, time_event, config)

        def _process_complete_event(self, trial_id, time_event, status):
            self.ended[trial_id] = time_event
            super()._process_complete_event(trial_id, time_event, status)

    return DeterministicBackend


@contextlib.contextmanager
def _quiet():
    """Silence the tuner: its log messages and its prints."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _experiment_folder():
    """Send Syne Tune's files to a temporary folder, deleted afterwards."""
    previous = os.environ.get('SYNETUNE_FOLDER')
    with tempfile.TemporaryDirectory(prefix='hpo-sim-') as folder:
        os.environ['SYNETUNE_FOLDER'] = folder
        try:
            yield folder
        finally:
            if previous is None:
                del os.environ['SYNETUNE_FOLDER']
            else:
                os.environ['SYNETUNE_FOLDER'] = previous


def make_scheduler(method, config_space, seed, max_epochs, grace_period=1,
                   reduction_factor=2, brackets=None):
    """The Syne Tune scheduler behind each name in :data:`METHODS`.

    * ``random search``: ``RandomSearch``, every trial runs to the end;
    * ``ASHA``: asynchronous successive halving (one bracket);
    * ``Hyperband``: ASHA with several brackets (asynchronous Hyperband),
      by default as many as there are rung levels including ``max_epochs``;
      Syne Tune picks a bracket for each new trial with probability
      proportional to ``e**(number of its rungs)``, so the first bracket
      (the one plain ASHA uses) gets most trials: with rungs at 1, 2, 4, 8
      epochs, the four brackets get 64%, 24%, 9% and 3% of them (the last
      one never stops a trial, like random search);
    * ``ASHA in rounds``: plain ASHA; :func:`simulate` runs it with
      ``Tuner(asynchronous_scheduling=False)``.
    """
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    if method == 'random search':
        return RandomSearch(config_space, metrics=['validation_error'],
                            do_minimize=True, random_seed=seed)
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}; choose from {METHODS}')
    if brackets is None:
        brackets = (len(rung_levels(grace_period, reduction_factor,
                                    max_epochs + 1))
                    if method == 'Hyperband' else 1)
    return ASHA(config_space, metric='validation_error', time_attr='epoch',
                max_t=max_epochs, grace_period=grace_period,
                reduction_factor=reduction_factor, brackets=brackets,
                do_minimize=True, random_seed=seed)


def simulate(method, seed, n_workers=2, max_wallclock_time=480,
             grace_period=1, reduction_factor=2, brackets=None, curves=None,
             sleep_time=0.5):
    """Simulate one tuning run on the recorded curves.

    ``method`` is one of :data:`METHODS` (see :func:`make_scheduler`),
    ``seed`` seeds numpy's global generator (Syne Tune's random searcher
    draws from it) and the scheduler. ``max_wallclock_time`` is the budget
    in simulated seconds, ``sleep_time`` how often the simulated tuner
    polls its workers (0.5 s, as in the chapter's real runs on CPUs).
    ``curves`` is a table from :func:`load_curves` or the path of one
    (default ``curves_lenet.csv``). Returns a :class:`Simulation`.

    ``ASHA in rounds`` is ASHA under ``Tuner(asynchronous_scheduling=
    False)``. That flag does *not* turn ASHA into synchronous successive
    halving: the tuner merely starts new trials in rounds, ``n_workers``
    at a time, once every trial of the previous round has ended (whether
    it completed or was stopped). Decisions at the rungs are still ASHA's,
    made as each result arrives against the results seen so far; a worker
    whose trial was stopped waits, idle, for the rest of its round. Syne
    Tune 0.16 has no synchronous successive halving scheduler (one that
    fills a rung with a fixed number of trials before promoting the best
    of them), so this is the closest it offers: it shows the cost of
    waiting for stragglers, not synchronous successive halving proper.
    With one worker it is the same as ``ASHA``.

    The simulator works on Syne Tune's mechanics: reports reach the tuner
    0.05 s after they happen, the tuner sees them at its next poll, and a
    trial the scheduler stops occupies its worker until the stop
    (0.1 s after that poll); starting a trial takes 0.05 s.
    """
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import (
        SimulatorCallback)

    curves = _as_curves(curves)
    blackbox = make_blackbox(curves)
    max_epochs = int(curves['epoch'].max())
    config_space = dict(blackbox.configuration_space, max_epochs=max_epochs)
    np.random.seed(seed)
    backend = _backend_class()(
        blackbox, elapsed_time_attr='elapsed_time',
        max_resource_attr='max_epochs', tuner_sleep_time=sleep_time)
    callback = SimulatorCallback()
    with _quiet(), _experiment_folder():
        scheduler = make_scheduler(method, config_space, seed, max_epochs,
                                   grace_period, reduction_factor, brackets)
        tuner = Tuner(
            trial_backend=backend, scheduler=scheduler,
            stop_criterion=StoppingCriterion(
                max_wallclock_time=max_wallclock_time),
            n_workers=n_workers, sleep_time=0, callbacks=[callback],
            asynchronous_scheduling=(method != 'ASHA in rounds'),
            save_tuner=False)
        tuner.run()
    return _tidy(callback.dataframe(), backend, curves, max_wallclock_time)


def _tidy(raw, backend, curves, max_wallclock_time):
    """Turn the simulator's records into a :class:`Simulation`."""
    configs = curves.groupby('config_id').agg(
        **{name: (name, 'first') for name in HYPERPARAMETERS},
        diverged_at=('padded', lambda p: (~p).sum()),
        diverged=('diverged', 'first'))
    max_epochs = int(curves['epoch'].max())
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
    results = df[['trial_id', 'config_id', *HYPERPARAMETERS, 'epoch',
                  'validation_error', 'elapsed_time', 'decision', 'time',
                  'best']]
    rows = []
    for trial_id, config in backend.configs.items():
        start = backend.started.get(trial_id, np.inf)
        if start >= max_wallclock_time:
            continue  # launched at the very end; never ran within budget
        config_id = int(config['config_id'])
        reports = results[results['trial_id'] == trial_id]
        end = min(backend.ended.get(trial_id, np.inf), max_wallclock_time)
        epochs = int(reports['epoch'].max()) if len(reports) else 0
        info = configs.loc[config_id]
        if info['diverged'] and epochs >= info['diverged_at']:
            status = 'diverged'
        elif epochs >= max_epochs:
            status = 'completed'
        elif len(reports) and reports['decision'].iloc[-1] == 'STOP' \
                and end < max_wallclock_time:
            status = 'stopped'
        else:
            status = 'cut off'
        rows.append(dict(trial_id=trial_id, config_id=config_id,
                         start=start, end=end, epochs=epochs,
                         best_error=reports['validation_error'].min(),
                         status=status))
    trials = pd.DataFrame(rows, columns=['trial_id', 'config_id', 'start',
                                         'end', 'epochs', 'best_error',
                                         'status'])
    trials = trials.join(configs[HYPERPARAMETERS], on='config_id')
    return Simulation(results, trials.set_index('trial_id'))


def run_many(methods, seeds, curves=None, **kwargs):
    """Simulate every method with every seed; one long table of reports.

    Returns the concatenated ``results`` of :func:`simulate` with the
    columns ``method``, ``seed`` and ``n_trials`` (trials started in that
    run) in front. ``kwargs`` go to :func:`simulate`.
    """
    curves = _as_curves(curves)
    frames = []
    for method in methods:
        for seed in seeds:
            sim = simulate(method, seed, curves=curves, **kwargs)
            frames.append(sim.results.assign(
                method=method, seed=seed, n_trials=sim.n_trials))
    df = pd.concat(frames, ignore_index=True)
    first = ['method', 'seed', 'n_trials']
    return df[first + [c for c in df.columns if c not in first]]


def _best_at(run, grid):
    """Best error of one run at each time of ``grid`` (NaN before any)."""
    run = run.sort_values('time', kind='stable')
    best = run['validation_error'].cummin().to_numpy()
    idx = np.searchsorted(run['time'].to_numpy(), grid, side='right') - 1
    return np.where(idx >= 0, best[np.maximum(idx, 0)], np.nan)


def best_so_far_quantiles(df, grid):
    """Median and quartiles over seeds of the best error so far.

    ``df`` is a table from :func:`run_many`, ``grid`` the times (simulated
    seconds) at which to evaluate. Returns one row per method and time
    with ``median``, ``q25`` and ``q75``; they are NaN at times before
    some run had its first report.
    """
    grid = np.asarray(grid, dtype=float)
    rows = []
    for method, runs in df.groupby('method', sort=False):
        best = np.stack([_best_at(run, grid)
                         for _, run in runs.groupby('seed')])
        complete = ~np.isnan(best).any(axis=0)
        q25, median, q75 = np.full((3, len(grid)), np.nan)
        if complete.any():
            q25[complete], median[complete], q75[complete] = np.quantile(
                best[:, complete], [0.25, 0.5, 0.75], axis=0)
        rows.append(pd.DataFrame(dict(method=method, time=grid,
                                      median=median, q25=q25, q75=q75)))
    return pd.concat(rows, ignore_index=True)


def time_to_reach(df, target):
    """First simulated time at which each run's best error <= ``target``.

    Returns one row per ``method`` and ``seed`` with ``time``; ``inf`` if
    the run never got there within its budget.
    """
    rows = []
    for (method, seed), run in df.groupby(['method', 'seed'], sort=False):
        hit = run.loc[run['validation_error'] <= target, 'time']
        rows.append(dict(method=method, seed=seed,
                         time=hit.min() if len(hit) else np.inf))
    return pd.DataFrame(rows)


def plot_quantiles(data, methods=None, grid=None, ax=None, target=None,
                   ylim=None):
    """Median (line) and quartiles (band) of the best error over time.

    ``data`` is either a table from :func:`best_so_far_quantiles` or the
    runs from :func:`run_many`, whose quantiles are then computed on
    ``grid`` (default: 241 points from 0 to the last report). One line per
    method, in the order of ``methods`` (default: all, in order of
    appearance). ``target``, if given, is drawn as a dotted horizontal
    line.
    """
    from d2l import torch as d2l
    if 'median' not in data.columns:
        if grid is None:
            grid = np.linspace(0, data['time'].max(), 241)
        data = best_so_far_quantiles(data, grid)
    if methods is None:
        methods = data['method'].unique()
    if ax is None:
        d2l.set_figsize((6, 3))
        ax = d2l.plt.gca()
    for i, method in enumerate(methods):
        q = data[data['method'] == method]
        color = f'C{i}'
        ax.step(q['time'], q['median'], where='post', color=color,
                label=method)
        ax.fill_between(q['time'], q['q25'], q['q75'], step='post',
                        color=color, alpha=0.2, linewidth=0)
    if target is not None:
        ax.axhline(target, color='gray', linestyle=':', linewidth=1)
    ax.set_xlabel('simulated wall-clock time (s)')
    ax.set_ylabel('best validation error')
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    return ax


def default_target(curves=None, quantile=0.1):
    """An error only the best ``quantile`` of the configurations reach.

    The ``quantile`` over the recorded configurations of the lowest
    validation error each reaches in any epoch.
    """
    curves = _as_curves(curves)
    best = curves.groupby('config_id')['validation_error'].min()
    return float(best.quantile(quantile))


def summarize(df, target):
    """Per method: how long the runs took to reach ``target``, and more.

    ``df`` is a table from :func:`run_many`. Columns: ``median_time`` and
    the quartiles ``q25_time``, ``q75_time`` of the time to reach the
    target over seeds (``inf`` where more than that share of the runs
    never reached it), ``reached`` (fraction of runs that did),
    ``final_best`` (median best error at the end) and ``trials`` (median
    number of trials started).
    """
    reach = time_to_reach(df, target)
    rows = []
    for method, times in reach.groupby('method', sort=False)['time']:
        runs = df[df['method'] == method].groupby('seed')
        q25, median, q75 = np.quantile(times, [0.25, 0.5, 0.75],
                                       method='higher')
        rows.append(dict(method=method, median_time=median, q25_time=q25,
                         q75_time=q75, reached=np.isfinite(times).mean(),
                         final_best=runs['validation_error'].min().median(),
                         trials=runs['n_trials'].first().median()))
    return pd.DataFrame(rows).set_index('method')


def speedup(n_workers_list=(1, 2, 4, 8), seeds=range(20), target=None,
            max_wallclock_time=2400, curves=None, method='random search',
            **kwargs):
    """How much faster random search gets with more workers.

    For each number of workers K, simulate ``method`` with every seed and
    take the median time T_K until the best validation error reaches
    ``target`` (default: :func:`default_target`, an error only the best
    10% of the recorded configurations reach). With the same seed,
    every K draws the same sequence of configurations. Returns one row per
    K with ``median_time``, ``speedup`` = T_1 / T_K and ``efficiency`` =
    speed-up / K (1 would be a perfect linear speed-up), plus ``reached``,
    the fraction of runs that got to the target within their budget. The
    first entry of ``n_workers_list`` is the reference (normally 1); it
    gets ``max_wallclock_time`` simulated seconds and K workers get
    proportionally less (``max_wallclock_time * K_1 / K``), which keeps
    the cost down; the median is exact as long as ``reached`` > 0.5.
    """
    curves = _as_curves(curves)
    if target is None:
        target = default_target(curves)
    rows = []
    for k in n_workers_list:
        budget = max_wallclock_time * n_workers_list[0] / k
        df = run_many([method], seeds, curves=curves, n_workers=k,
                      max_wallclock_time=budget, **kwargs)
        times = time_to_reach(df, target)['time']
        rows.append(dict(n_workers=k, median_time=float(times.median()),
                         reached=float(np.isfinite(times).mean())))
    table = pd.DataFrame(rows)
    table['speedup'] = table['median_time'].iloc[0] / table['median_time']
    table['efficiency'] = (table['speedup'] * table['n_workers'].iloc[0]
                           / table['n_workers'])
    return table
