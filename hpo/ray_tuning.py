"""Ray Tune next to Syne Tune: the trainable, ASHA on record, the trials'
table, the same configurations for both, and what compares them."""
import argparse
import contextlib
import io
import json
import os
import re
import sys
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from ray.tune.schedulers import ASHAScheduler

import hpo.asha_rules
import hpo.trials
from hpo.training import (args_problem, make_parser, read_startup,
                          release_gpu_memory, train)


def time_stamp():
    return time.strftime('%Y%m%d-%H%M%S')


def storage_dir():
    """``$HPO_RAY_RESULTS``, else ``ray_results/`` beside Syne Tune's
    experiments (not inside a built book)."""
    from syne_tune.util import experiment_path
    default = experiment_path() / 'ray_results'
    return str(Path(os.environ.get('HPO_RAY_RESULTS', default)).resolve())


def ray_search_space(space):
    """Syne Tune's search space with Ray Tune's distributions (Syne Tune's
    ``randint`` includes its upper bound, Ray Tune's does not)."""
    from ray import tune
    from syne_tune.config_space import Float, Integer, is_log_space
    converted = dict(space)  # constants stay
    for name, domain in space.items():
        if isinstance(domain, Float):
            make = tune.loguniform if is_log_space(domain) else tune.uniform
            converted[name] = make(domain.lower, domain.upper)
        elif isinstance(domain, Integer):
            converted[name] = tune.randint(domain.lower, domain.upper + 1)
    return converted


def trial_args(config):
    """The training arguments of a trial, checked as on the command line."""
    parser = make_parser('a Ray Tune trial')
    parser.exit_on_error = False  # raise what it would print, and exit
    known = {a.dest for a in parser._actions}
    try:
        args = parser.parse_args(
            [f'--{k}={v}' for k, v in config.items() if k in known])
    except argparse.ArgumentError as e:
        raise ValueError(f'train_fn: error: {e}') from None
    if problem := args_problem(args):
        raise ValueError(f'train_fn: error: {problem}')
    return args


class StartupCatcher(io.TextIOBase):
    """Passes output on to ``stream``; ``startup`` holds the start-up
    breakdown ``train`` prints (``hpo.training.read_startup``)."""

    def __init__(self, stream):
        self.stream, self.text, self.startup = stream, '', None

    def write(self, text):
        if self.startup is None:
            self.text += text
            self.startup = read_startup(self.text.rpartition('\n')[0])
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def train_fn(config):
    """One Ray Tune trial: train as ``config`` says, report every epoch.

    The training is ``hpo.training.train``, as in the Syne Tune scripts.
    Each report adds ``epoch``, the node, process and GPUs that run the
    trial, and, to measure the start-up overhead, when this function was
    entered and how long ``train`` took to load the data and build the
    model (from the start-up line it prints).
    """
    import ray
    import torch
    from ray import tune
    fn_entered = time.time()
    threads = ray.get_runtime_context().get_assigned_resources().get('CPU')
    torch.set_num_threads(max(1, int(threads or 1)))
    node = ray.get_runtime_context().get_node_id()
    out = StartupCatcher(sys.stdout)
    try:
        with contextlib.redirect_stdout(out):
            for epoch, metrics in train(trial_args(config)):
                tune.report(dict(
                    metrics, epoch=epoch, node_id=node, pid=os.getpid(),
                    fn_entered=fn_entered,
                    gpus=os.environ.get('CUDA_VISIBLE_DEVICES'),
                    startup_data=out.startup['data'],
                    startup_model=out.startup['model'],
                    report_time=time.time()))
    finally:  # however the trial ended: a reused process starts the
        release_gpu_memory()  # next one without this one's GPU memory


class RecordingASHA(ASHAScheduler):
    """Ray Tune's ``ASHAScheduler``, unchanged, writing one JSON line to
    ``events_path`` for each trial first chosen to run (with its config),
    result (with Ray's decision), and end (complete, error, remove)."""

    def __init__(self, events_path, **kwargs):
        super().__init__(**kwargs)
        self.events_path, self.chosen = str(events_path), set()

    def record(self, **event):
        with open(self.events_path, 'a') as f:
            f.write(json.dumps(dict(event, time=time.time())) + '\n')

    def choose_trial_to_run(self, tune_controller):
        # asked again and again while a chosen trial waits for resources
        trial = super().choose_trial_to_run(tune_controller)
        if trial is not None and trial.trial_id not in self.chosen:
            self.chosen.add(trial.trial_id)
            self.record(event='chosen', trial_id=trial.trial_id,
                        config=trial.config)
        return trial

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        self.record(event='result', trial_id=trial.trial_id,
                    epoch=result.get(self._time_attr),
                    value=result.get(self._metric), decision=decision)
        return decision

    def on_trial_complete(self, tune_controller, trial, result):
        self.record(event='complete', trial_id=trial.trial_id)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial):
        self.record(event='error', trial_id=trial.trial_id)
        super().on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial):
        self.record(event='remove', trial_id=trial.trial_id)
        super().on_trial_remove(tune_controller, trial)


def read_events(path):
    with open(path) as f:
        return pd.DataFrame([json.loads(line) for line in f])


def ray_experiment(scheduler, space, configs, seconds, setup, nodes,
                   folder=None, reuse=True):
    """Ray Tune's tuner as the section runs it, on ``configs`` in order
    for ``seconds`` (None: all); ``scheduler``: a ``RecordingASHA``, whose
    events file names the results in ``folder`` (default
    ``storage_dir()``). Ray's results, and their ``trial_table``."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator
    resources = {'cpu': setup.threads_per_trial, 'gpu': setup.gpu_share}
    tuner = tune.Tuner(
        tune.with_resources(train_fn, resources),
        param_space=ray_search_space(space),
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=len(configs),
            time_budget_s=seconds, reuse_actors=reuse,
            search_alg=BasicVariantGenerator(
                points_to_evaluate=configs, max_concurrent=setup.n_workers)),
        run_config=tune.RunConfig(
            name=Path(scheduler.events_path).stem,
            storage_path=str(folder or storage_dir()), verbose=0,
            progress_reporter=tune.CLIReporter(),  # text, not HTML
            log_to_file=True,
            failure_config=tune.FailureConfig(max_failures=0)))
    grid = tuner.fit()
    return grid, trial_table(grid, scheduler.events_path, nodes)


# a trial's folder is named TRAINABLE_TRIALID_..., as train_fn_bb8f1_00000
TRIAL_ID = re.compile(r'_([0-9a-f]{5}_\d{5})_')


def trial_table(result_grid, events_path, nodes):
    """One row per Ray Tune trial, as ``hpo.trials.trial_table``, plus
    ``node`` (named as in ``nodes``), ``pid``, ``overhead`` (from the
    scheduler choosing it to its first training step) and ``log``, where
    Ray Tune wrote why it failed."""
    events = read_events(events_path)
    names = dict(zip(nodes['node_id'], nodes.index))
    rows = [_trial_row(result, events, names) for result in result_grid]
    table = pd.DataFrame([row for row in rows if row is not None])
    table[['start', 'end']] -= events.loc[events.event == 'chosen',
                                          'time'].min()
    return table.set_index('trial_id').sort_values('start')


def _trial_row(result, events, names):
    """``trial_table``'s row for one trial; None if it never started."""
    trial_id = TRIAL_ID.search(Path(result.path).name).group(1)
    mine = events[events.trial_id == trial_id]
    if not len(mine):
        return None  # the time was up
    chosen = mine[mine.event == 'chosen']
    start = (chosen if len(chosen) else mine)['time'].min()
    row = dict(trial_id=trial_id, node=None, pid=None, epochs=0,
               validation_error=np.nan, test_error=np.nan,
               best_error=np.nan, overhead=np.nan,
               log=Path(result.path) / 'error.txt')  # if it failed
    df = result.metrics_dataframe
    reported = df is not None and len(df)
    # A trial cut off before it reported: Ray's result may have no config
    # or, as seen once in a test build, an earlier trial's; the
    # scheduler's choice is on record.
    row.update((result.config if reported else None)
               or (chosen['config'].iloc[0] if len(chosen) else {}))
    if reported:
        first, last = df.iloc[0], df.iloc[-1]
        # a reused actor can enter the function before the scheduler
        # logs its choice; a trial has started by then at the latest
        start = min(start, first['fn_entered'])
        row.update(node=names.get(last['node_id'][:8], last['node_id'][:8]),
                   pid=int(last['pid']), epochs=int(last['epoch']),
                   validation_error=last['validation_error'],
                   test_error=last.get('test_error', np.nan),
                   best_error=df['validation_error'].min(),
                   overhead=first['fn_entered'] + first['startup_data']
                   + first['startup_model'] - start)
    status = hpo.trials.ended_as(
        row['epochs'], row.get('max_epochs', np.inf),
        stopped='STOP' in set(mine.get('decision', ())),
        diverged=pd.notna(row['test_error']), failed=result.error is not None)
    end = mine.loc[mine.event.isin(['complete', 'error', 'remove']), 'time']
    if len(end):
        end = end.min()
    elif status == 'cut off':
        end = events['time'].max()  # running when the time was up
    else:
        end = df['report_time'].iloc[-1] if row['epochs'] else start
    return dict(row, status=status, start=start, end=end)


def decision_check(events_path, max_t, grace_period, eta):
    """Ray's recorded reports and ``decision``s next to both rules'
    (``hpo.asha_rules.both_rules``); ``agrees``: Ray's is its rule's."""
    from hpo.sim import rung_levels_formula
    events = read_events(events_path)
    results = events[events.event == 'result'].reindex(columns=[
        'trial_id', 'epoch', 'value', 'decision']).reset_index(drop=True)
    levels = rung_levels_formula(grace_period, eta, max_t)
    table = hpo.asha_rules.both_rules(
        results.rename(columns={'value': 'error'}), levels, max_t, eta)
    table['decision'] = results['decision']
    table['agrees'] = ((table['decision'] == table['Ray Tune'])
                       | (table['Ray Tune'] == 'TIE'))
    return table


def draw_configurations(space, n, seed):
    """``n`` different configurations of ``space``, drawn with ``seed``
    (a generator of their own), for both libraries' ``points_to_evaluate``.
    Constants stay constants; a configuration drawn again is left out."""
    from syne_tune.config_space import Domain
    rng = np.random.RandomState(seed)
    configs = []
    while len(configs) < n:
        config = {k: d.sample(random_state=rng) if isinstance(d, Domain)
                  else d for k, d in space.items()}
        if config not in configs:
            configs.append(config)
    return configs


def configurations_run(trials, configs):
    """How many ``trials`` ran, each the configuration of ``configs`` at
    its position (by trial id); an error if any ran another one. A trial
    cut off before it reported has no configuration on record."""
    def number(trial_id):  # Ray Tune's ids end in a counter: 'ab12c_00007'
        return int(str(trial_id).rsplit('_', 1)[-1])

    def same(row, config):
        if any(k not in row or pd.isna(row[k]) for k in config):
            return True  # nothing on record to compare
        return all(np.isclose(row[k], v, rtol=1e-12) if isinstance(v, float)
                   else row[k] == v for k, v in config.items())

    for position, trial_id in enumerate(sorted(trials.index, key=number)):
        row, config = trials.loc[trial_id], configs[position]
        if number(trial_id) != position or not same(row, config):
            ran = {k: row.get(k) for k in config}
            raise ValueError(f'trial {trial_id} did not run the '
                             f'configuration at position {position}, '
                             f'{config}, but {ran}')
    return len(trials)


def local_overheads(exp, trials):
    """Seconds from LocalBackend starting each trial to its first step:
    its process start (first report's time less its ``elapsed_time``)
    plus its start-up (``hpo.trials.startup_times``)."""
    first = exp.results.groupby('trial_id').first()
    started = (first['st_worker_timestamp'] - first['elapsed_time']
               - exp.metadata['st_tuner_start_timestamp'])
    total = hpo.trials.startup_times(exp)['total']
    return ((started + total).reindex(trials.index)
            - trials['start']).rename('overhead')


# summarize's names, as the section's table shows them
LABELS = {'trials': 'trials started',
          **{status: f'  {status}' for status in hpo.trials.STATUSES},
          'epochs': 'epochs trained', 'stopped_at': 'stopped at epochs',
          'only_at_rungs': 'stops only at rungs',
          'best_error': 'best validation error',
          'its_test_error': 'its test error', 'busy': 'busy fraction',
          'overhead_median': 'overhead per trial, median (s)',
          'overhead_max': 'overhead per trial, max (s)',
          'processes': 'worker processes'}


def summarize(runs, n_workers, levels):
    """The numbers the section compares (names in ``LABELS``), a column
    for each run of ``{name: (trials, worker processes or None)}``."""
    columns = {}
    for name, (trials, processes) in runs.items():
        counts = trials['status'].value_counts()
        done = trials[trials['status'] == 'completed']
        best = done.sort_values('validation_error').iloc[:1]
        stopped = trials[trials['status'] == 'stopped']
        columns[name] = pd.Series({
            'trials': len(trials),
            **{status: int(counts.get(status, 0))  # stopped, completed always
               for status in hpo.trials.STATUSES
               if status in counts or status in ('stopped', 'completed')},
            'epochs': int(trials['epochs'].sum()),
            'stopped_at': sorted({int(e) for e in stopped['epochs']}),
            'only_at_rungs': set(stopped['epochs']) <= set(levels),
            'best_error': best['validation_error'].round(4).max(),
            'its_test_error': best['test_error'].round(4).max(),
            'busy': round(hpo.trials.busy_fraction(trials, n_workers), 3),
            'overhead_median': round(trials['overhead'].median(), 2),
            'overhead_max': round(trials['overhead'].max(), 2),
            'processes': len(trials) if processes is None else processes})
    return pd.DataFrame(columns)


def compare_sentence(side):
    """The comparison of the two runs of ``summarize``, in words."""
    (a, ra), (b, rb) = list(side.items())
    return (f'In the same time, {a} started {ra["trials"]} trials that '
            f'trained {ra["epochs"]} epochs in {ra["processes"]} worker '
            f'processes, and {b} {rb["trials"]} trials with {rb["epochs"]} '
            f'epochs in {rb["processes"]} processes. The median time from '
            'starting a trial to its first training step was '
            f'{ra["overhead_median"]:.2f} s with {a} and '
            f'{rb["overhead_median"]:.2f} s with {b}.')


def _toy_trial(trial_id):
    """What both libraries' ASHA read of a trial."""
    return SimpleNamespace(trial_id=trial_id, config={'x': 0.5})


def _schedulers(max_t, eta, brackets=1):
    """Both libraries' ASHA on ``error`` at ``epoch``, grace period 1, each
    as ``(scheduler, add(trial), report(trial, result))``."""
    from syne_tune.config_space import uniform
    from syne_tune.optimizer.baselines import ASHA
    st = ASHA({'x': uniform(0, 1), 'max_epochs': max_t}, metric='error',
              time_attr='epoch', max_t=max_t, grace_period=1,
              reduction_factor=eta, brackets=brackets, do_minimize=True,
              random_seed=0)
    ray = ASHAScheduler(time_attr='epoch', metric='error', mode='min',
                        max_t=max_t, grace_period=1, reduction_factor=eta,
                        brackets=brackets)
    return {'Syne Tune': (st, st.on_trial_add, st.on_trial_result),
            'Ray Tune': (ray, partial(ray.on_trial_add, None),
                         partial(ray.on_trial_result, None))}


def toy_decisions(errors, reduction_factor):
    """Both libraries' ASHA (``max_t`` 8) on results at epoch 1, each
    error a new trial's, next to both rules of ``hpo.asha_rules``."""
    from hpo.sim import rung_levels_formula
    schedulers = _schedulers(8, reduction_factor)
    rows = []
    for i, error in enumerate(errors):
        row, trial = {'error': error}, _toy_trial(i)
        for name, (_, add, report) in schedulers.items():
            add(trial)
            row[name] = str(report(trial, {'epoch': 1, 'error': error}))
        rows.append(row)
    table = pd.DataFrame(rows)
    recomputed = hpo.asha_rules.both_rules(
        table.assign(trial_id=table.index, epoch=1),
        rung_levels_formula(1, reduction_factor, 8), 8, reduction_factor)
    return table.join(recomputed[list(hpo.asha_rules.RULES)].add_suffix(
        ', recomputed'))


def _inside(scheduler):
    """The brackets of either library's ASHA, the rungs of each (level,
    errors recorded there by trial), and the bracket of each trial."""
    if isinstance(scheduler, ASHAScheduler):  # Ray's, private attributes
        brackets = scheduler._brackets
        return brackets, [b._rungs for b in brackets], scheduler._trial_info
    brackets = scheduler.brackets
    return brackets, [b.rungs for b in brackets], scheduler.trial_info


def compare_structure(max_t, reduction_factor, brackets, n_trials=3000):
    """Per bracket, each library's rungs and share of ``n_trials`` toy
    trials (NumPy's global generator seeded with 0), next to e^-s
    normalized; per library, the rungs that record a first report at
    epoch 5, in a one-bracket scheduler."""
    weights = np.exp(-np.arange(brackets))
    table = pd.DataFrame(index=pd.RangeIndex(brackets, name='bracket'))
    late = {}
    for name in ('Syne Tune', 'Ray Tune'):
        scheduler, add, _ = _schedulers(max_t, reduction_factor,
                                        brackets)[name]
        np.random.seed(0)
        for i in range(n_trials):
            add(_toy_trial(i))
        all_brackets, rungs, info = _inside(scheduler)
        counts = np.bincount([all_brackets.index(b) for b in info.values()],
                             minlength=brackets)
        levels = [sorted(int(r) for r, _ in bracket) for bracket in rungs]
        table[name, 'rungs'] = [' '.join(map(str, ls)) for ls in levels]
        table[name, 'share'] = np.round(counts / n_trials, 3)
        one, add, report = _schedulers(max_t, reduction_factor)[name]
        trial = _toy_trial(0)
        add(trial)
        report(trial, {'epoch': 5, 'error': 0.5})
        late[name] = [int(r) for r, recorded in _inside(one)[1][0]
                      if trial.trial_id in recorded]
    table['e^-s', 'normalized'] = np.round(weights / weights.sum(), 3)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table, late
