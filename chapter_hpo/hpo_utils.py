"""Helpers for the chapter's notebooks: set-up, logs, tables and plots.

The notebooks show the tuning code itself; this module holds the
bookkeeping around it: the experiment's size on this machine, a compact
tuner log, per-trial tables from Syne Tune's results and the trials' files,
and the plots.
"""
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the training scripts' shared module
    sys.path.insert(0, str(ROOT))

BUDGET_VARIABLE = 'HPO_BUDGET'
SETUP_VARIABLE = 'HPO_SETUP'

# Syne Tune 0.16's ASHA warns about an argument it sets itself
# ("points_to_evaluate is passed in searcher_kwargs ..."); the warning says
# nothing about our code, so we do not show it.
logging.getLogger('syne_tune.optimizer.schedulers.searchers.'
                  'last_value_multi_fidelity_searcher').setLevel(
                      logging.ERROR)


@dataclass(frozen=True)
class Hardware:
    """The CPU cores and GPUs that this process may give to trials."""
    cores: int
    gpus: tuple = ()     # indices as LocalBackend and Ray set them
    problem: str = None  # why PyTorch cannot use the GPUs listed


def _gpu_indices(text):
    """Integer GPU indices in a ``CUDA_VISIBLE_DEVICES`` value, or None.

    None means "not a plain list of indices" (for example GPU UUIDs),
    which Syne Tune's GPU rotation cannot express.
    """
    parts = [p.strip() for p in text.split(',') if p.strip()]
    if not all(p.isdigit() for p in parts):
        return None
    return list(dict.fromkeys(int(p) for p in parts))  # each GPU once


def listed_gpus(timeout=10):
    """How many GPUs ``nvidia-smi --list-gpus`` lists (one line each).

    This is how Syne Tune 0.16's ``LocalBackend`` counts the GPUs it
    hands out. No ``nvidia-smi``, a failing one or one that hangs means
    no GPU.
    """
    try:
        proc = subprocess.run(['nvidia-smi', '--list-gpus'],
                              capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return len(proc.stdout.splitlines()) if proc.returncode == 0 else 0


def _torch_problem(n_gpus):
    """Why PyTorch cannot use ``n_gpus`` GPUs here, or None if it can."""
    from train_common import cuda_problem
    problem = cuda_problem()
    if problem is None:
        import torch
        if torch.cuda.device_count() < n_gpus:
            problem = (f'PyTorch sees only {torch.cuda.device_count()} '
                       'of them')
    return problem


def detect_hardware(mode=None):
    """The GPUs and cores for trials: the one GPU count of the chapter.

    GPUs are those ``nvidia-smi`` lists, as Syne Tune's ``LocalBackend``
    counts them, limited to ``CUDA_VISIBLE_DEVICES`` when that holds
    indices (as ``d2lbook build`` sets it when it evaluates notebooks in
    parallel). ``mode`` (default: ``$HPO_SETUP``, else ``'auto'``):

    * ``'auto'``: GPUs that PyTorch cannot use (no driver, a CPU-only
      build) are dropped, and ``problem`` says why;
    * ``'gpu'``: the GPUs are kept even then (the tests use this with a
      fake ``nvidia-smi``; the trials then say so and train on the CPU);
    * ``'cpu'``: no GPU is used.
    """
    mode = mode or os.environ.get(SETUP_VARIABLE) or 'auto'
    if mode not in ('auto', 'gpu', 'cpu'):
        raise ValueError(f'{SETUP_VARIABLE} must be "auto", "gpu" or '
                         f'"cpu", got {mode!r}')
    cores = os.cpu_count() or 1
    n_listed = listed_gpus() if mode != 'cpu' else 0
    gpus = tuple(range(n_listed))
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    indices = None if visible is None else _gpu_indices(visible)
    if n_listed and indices is not None:
        gpus = tuple(i for i in indices if i < n_listed)
    problem = _torch_problem(len(gpus)) if gpus else None
    if problem and mode == 'auto':
        gpus = ()
    return Hardware(cores, gpus, problem)


@dataclass
class Setup:
    """What one section's experiment runs with on this machine."""
    name: str
    n_workers: int
    max_wallclock_time: float  # seconds of tuning
    threads_per_trial: int     # CPU threads of each trial process
    constants: dict            # fixed script arguments
    sleep_time: float = 0.5    # how often the tuner polls, in seconds
    n_seeds: int = 50          # repetitions of each simulated experiment
    gpus: tuple = ()           # the GPUs the trials use (nvidia-smi's ids)
    trials_per_gpu: int = 0    # trials that share one GPU at a time

    @property
    def n_gpus(self):
        return len(self.gpus)

    @property
    def gpus_per_trial(self):
        """For ``LocalBackend(num_gpus_per_trial=...)``: 1 or 0."""
        return 1 if self.gpus else 0

    @property
    def gpu_share(self):
        """The fraction of a GPU each trial asks Ray for (0 without)."""
        return 1 / self.trials_per_gpu if self.gpus else 0

    @property
    def gpus_to_use(self):
        """For ``LocalBackend(gpus_to_use=...)`` (None: no GPU)."""
        return list(self.gpus) or None

    def __str__(self):
        args = ', '.join(f'{k}={v}' for k, v in self.constants.items())
        per_trial = f'{self.threads_per_trial} CPU thread(s) per trial'
        if self.gpus:
            per_trial += (f', {self.trials_per_gpu} trial(s) per GPU '
                          f'({TRIALS_PER_GPU_BASIS}) on GPU(s) '
                          + ','.join(map(str, self.gpus)))
        return (f'set-up "{self.name}": {self.n_workers} workers, '
                f'{self.max_wallclock_time:g} s of tuning, polling every '
                f'{self.sleep_time:g} s, {per_trial}; fixed arguments: '
                f'{args}')


# The set-ups, one row per kind of machine. Both train on 8,000 images
# for up to 27 epochs, so that ASHA with eta = 3 has its rungs at 1, 3
# and 9 epochs on every machine; the GPU set-up uses the network the d2l
# chapters use on GPUs. The GPU rows are a design choice that has not been
# measured on a GPU yet: ``benchmarks/gpu.py`` measures them where one is.
CPU_CONSTANTS = dict(max_epochs=27, model='lenet', image_size=28,
                     n_train=8000)
GPU_CONSTANTS = dict(CPU_CONSTANTS, model='alexnet', image_size=224)
SETUPS = {
    'CPU': dict(constants=CPU_CONSTANTS, max_wallclock_time=480),
    'GPU': dict(constants=GPU_CONSTANTS, max_wallclock_time=480),
    # HPO_BUDGET=test: the same workers, tiny trials (the test suite)
    'test': dict(constants=dict(max_epochs=9, model='lenet', image_size=28,
                                n_train=1000),
                 max_wallclock_time=45, n_seeds=20),
}
MAX_WORKERS = 4
# Trials sharing one GPU, by the number of GPUs (default: one per GPU).
# On one GPU, two trials share it, so that the experiments stay parallel
# on a common kind of machine; two is a choice, not a measurement.
TRIALS_PER_GPU = {1: 2}
TRIALS_PER_GPU_BASIS = 'a choice, not measured on a GPU'


def workers_for(hardware):
    """``(workers, trials per GPU, GPUs used)`` on ``hardware``."""
    if not hardware.gpus:
        return min(MAX_WORKERS, max(2, hardware.cores // 2)), 0, ()
    per_gpu = TRIALS_PER_GPU.get(len(hardware.gpus), 1)
    n_used = min(len(hardware.gpus), max(1, MAX_WORKERS // per_gpu))
    return per_gpu * n_used, per_gpu, hardware.gpus[:n_used]


def choose_setup(budget=None, n_gpus=None, cores=None):
    """The experiment's size on this machine, from ``SETUPS``.

    ``budget`` (default ``$HPO_BUDGET``, else ``'full'``): ``'test'``
    keeps the workers but shrinks the trials. ``n_gpus`` and ``cores``
    replace what ``detect_hardware`` finds (``n_gpus=0``: the CPU set-up
    on any machine). Prints one line if GPUs were found that PyTorch
    cannot use.
    """
    budget = budget or os.environ.get(BUDGET_VARIABLE, 'full')
    if budget not in ('full', 'test'):
        raise ValueError(f'{BUDGET_VARIABLE} must be "full" or "test", '
                         f'got {budget!r}')
    hardware = (detect_hardware() if n_gpus is None
                else Hardware(os.cpu_count() or 1, tuple(range(n_gpus))))
    if cores is not None:
        hardware = replace(hardware, cores=cores)
    if hardware.problem:
        print(f'nvidia-smi lists GPUs, but PyTorch cannot use them '
              f'({hardware.problem}); '
              + ('using them anyway, as HPO_SETUP=gpu asks: the trials '
                 'will train on the CPU' if hardware.gpus else
                 'using the CPU set-up (HPO_SETUP=gpu would use them)'))
    n_workers, per_gpu, gpus = workers_for(hardware)
    kind = 'GPU' if gpus else 'CPU'
    name = f'{len(gpus)} GPU(s)' if gpus else 'CPU'
    row = SETUPS['test' if budget == 'test' else kind]
    return Setup(name if budget == 'full' else f'test ({name})',
                 n_workers=n_workers, gpus=gpus, trials_per_gpu=per_gpu,
                 threads_per_trial=max(1, hardware.cores // n_workers),
                 **dict(row, constants=dict(row['constants'])))


def run_experiment(scheduler, script, seconds, setup, folder=None):
    """One tuning experiment as the sections run it; returns it, loaded.

    For benchmarks, which must measure what the sections do:
    ``LocalBackend`` on ``script`` (a training script in the repository's
    root) with the set-up's GPUs, workers, CPU threads and polling, the
    sections' ``max_failures``, stopped after ``seconds``. Experiments go
    to ``folder`` (default: Syne Tune's). SIGTERM stops the trials too
    (:func:`tuning`).
    """
    from unittest import mock
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.experiments import load_experiment
    env = {'OMP_NUM_THREADS': str(setup.threads_per_trial)}
    if folder is not None:
        env['SYNETUNE_FOLDER'] = str(folder)
    with mock.patch.dict(os.environ, env):
        tuner = Tuner(
            trial_backend=LocalBackend(
                entry_point=str(ROOT / script),
                num_gpus_per_trial=setup.gpus_per_trial,
                gpus_to_use=setup.gpus_to_use),
            scheduler=scheduler,
            stop_criterion=StoppingCriterion(max_wallclock_time=seconds),
            n_workers=setup.n_workers, sleep_time=setup.sleep_time,
            max_failures=3, print_update_interval=10 ** 6,
            output_logger=plain_logger())
        with tuning():
            tuner.run()
        return load_experiment(tuner.name, local_path=(
            None if folder is None else str(folder)))


def search_space():
    """The three hyperparameters both sections tune, as ``rs-async.md``
    shows them (``tests/test_shown_code.py`` checks that they agree)."""
    from syne_tune.config_space import loguniform, randint, uniform
    return {'learning_rate': loguniform(1e-3, 1.0),
            'momentum': uniform(0.0, 0.99),
            'batch_size': randint(16, 256)}


def plain_logger():
    """Syne Tune's ``TunerLogger`` cut to a few lines, without colour and
    emoji.

    Compared with ``TunerLogger(use_colors=False, use_emojis=False)``:

    * the header is two lines: the experiment's name (no paths), and the
      scheduler, workers and backend;
    * no line for each trial that starts or completes (the trial table
      that the sections print afterwards holds them; a failed trial is
      still reported);
    * the periodic status is one line instead of a table of all trials;
    * the last line names the experiment's folder relative to Syne Tune's
      experiments folder (``$SYNETUNE_FOLDER`` or ``~/syne-tune``), and
      has none of the two emoji that Syne Tune 0.16 prints regardless of
      ``use_emojis``.

    The summary at the end is Syne Tune's table unless the tuner runs
    inside :func:`tuning`, which makes it one line.
    """
    from syne_tune.tuner_logger import TunerLogger

    class PlainTunerLogger(TunerLogger):
        def print_experiment_header(self, name, backend_name, n_workers,
                                    scheduler_name, **_):
            print(f'experiment {name}\n{scheduler_name} with {n_workers} '
                  f'workers ({backend_name})')

        def print_trial_started(self, trial_id, config):
            pass

        def print_trial_completed(self, trial_id):
            pass

        def print_tuning_status(self, tuning_status):
            print(_status_line(tuning_status))

        def print_tuning_complete(self):
            pass  # the summary line that follows says it

        def print_tuning_finished(self, results_path):
            print(f'Tuning finished; results in {Path(results_path).name}/')

    return PlainTunerLogger(use_colors=False, use_emojis=False)


def _status_line(tuning_status):
    """'2 trials running, 5 finished (3 until the end), 61.2s ...'."""
    return str(tuning_status).strip().splitlines()[-1]


@contextlib.contextmanager
def tuning():
    """Around ``tuner.run()``: SIGTERM stops the trials, as Ctrl+C does,
    and the summary at the end is one line instead of a table.

    Syne Tune's ``Tuner.run`` stops its trials when an exception leaves
    it, such as the ``KeyboardInterrupt`` of Ctrl+C; SIGTERM (``kill``, a
    cancelled batch job) would end the process and leave the trials
    running. Inside the block (in the main thread, unless SIGTERM is
    ignored) the first SIGTERM raises ``KeyboardInterrupt`` and further
    ones are ignored while the trials are stopped; once the block is
    left, SIGTERM is sent again, to do what it did before. Syne Tune 0.16
    prints its summary through ``syne_tune.tuner.print_best_metric_found``,
    which the block replaces by a one-line version. Both are undone when
    the block ends.
    """
    from syne_tune import tuner
    library_version = tuner.print_best_metric_found
    terminated = []

    def one_line(tuning_status, metric_names, mode=None):
        with contextlib.redirect_stdout(io.StringIO()):
            best = library_version(tuning_status, metric_names, mode)
        if best is not None:
            print(f'{_status_line(tuning_status)}; best {metric_names[0]} '
                  f'{best[1]:.4f} (trial {best[0]})')
        return best

    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough
        terminated.append(signum)
        raise KeyboardInterrupt('SIGTERM')

    previous = signal.getsignal(signal.SIGTERM)
    handle = (threading.current_thread() is threading.main_thread()
              and previous != signal.SIG_IGN)
    try:
        tuner.print_best_metric_found = one_line
        if handle:
            signal.signal(signal.SIGTERM, interrupt)
        yield
    finally:
        tuner.print_best_metric_found = library_version
        if handle:
            signal.signal(signal.SIGTERM,
                          signal.SIG_DFL if previous is None else previous)
        if terminated:  # the trials are stopped: now end as asked
            os.kill(os.getpid(), signal.SIGTERM)


def _mtime(path):
    return path.stat().st_mtime if path.exists() else None


def trial_table(exp):
    """One row per trial of a finished experiment, on true wall-clock time.

    Times are seconds since the tuner started. They come from the worker
    side, not from the tuner's polling: a trial *starts* when LocalBackend
    launched its process (the moment it wrote the trial's ``config.json``)
    and *ends* at its last report if it ran to the end, or when the tuner
    killed it (the ``stop`` file LocalBackend writes). Columns: ``start``,
    ``end``, ``epochs`` (the last epoch reported), ``validation_error`` and
    ``test_error`` (of the last report), ``best_error`` (over its reports)
    and ``status``, one of

    * ``completed``: trained for ``max_epochs`` epochs;
    * ``stopped``: stopped early by the scheduler (at a rung level);
    * ``diverged``: the script stopped itself after a non-finite loss;
    * ``cut off``: still running when the experiment's time was up;
    * ``failed``: the process ended without finishing (see its std.err).
    """
    t0 = exp.metadata['st_tuner_start_timestamp']
    trial_dirs = [p for p in Path(exp.path).iterdir() if p.name.isdigit()]
    df = exp.results  # None if no trial has reported yet
    if df is None:
        df = pd.DataFrame({'trial_id': []})
    rows = [_trial_row(trial_dir, t0, df[df.trial_id == int(trial_dir.name)])
            for trial_dir in sorted(trial_dirs, key=lambda p: int(p.name))]
    return pd.DataFrame(rows).set_index('trial_id')


def _trial_row(trial_dir, t0, reports):
    """``trial_table``'s row for one trial, from its folder and reports."""
    start = _mtime(trial_dir / 'config.json') - t0
    row = dict(trial_id=int(trial_dir.name), start=start, epochs=0,
               validation_error=np.nan, test_error=np.nan,
               best_error=np.nan, log=trial_dir / 'std.err')
    row.update(json.loads((trial_dir / 'config.json').read_text()))
    last_report = None
    if len(reports):
        last = reports.iloc[-1]
        last_report = last['st_worker_timestamp'] - t0
        row.update(epochs=int(last['epoch']),
                   validation_error=last['validation_error'],
                   test_error=last.get('test_error', np.nan),
                   best_error=reports['validation_error'].min())
    killed = _mtime(trial_dir / 'stop')
    if row['epochs'] >= row['max_epochs']:  # from the trial's config
        status, end = 'completed', last_report
    elif killed is not None:
        decided = len(reports) and reports.iloc[-1]['st_decision'] == 'STOP'
        status, end = ('stopped' if decided else 'cut off'), killed - t0
    elif len(reports) and pd.notna(row['test_error']):
        status, end = 'diverged', last_report
    else:
        status = 'failed'
        ended = trial_dir / 'end'  # LocalBackend's time stamp, polled
        end = (float(ended.read_text()) - t0 if ended.exists()
               else last_report or start)
    row.update(status=status, end=end)
    return row


def report_times(exp):
    """Reports with ``time``: seconds since the tuner started (worker side),
    and ``final``: the report of a trial that ran all its epochs."""
    df = exp.results.copy()
    df['time'] = (df['st_worker_timestamp']
                  - exp.metadata['st_tuner_start_timestamp'])
    df['final'] = df['epoch'] == df['config_max_epochs']
    return df


def assign_workers(trials, n_workers):
    """Give each trial a worker: the one that has been free the longest.

    LocalBackend does not record which worker ran a trial when there are no
    GPUs, but at most ``n_workers`` trials run at once, so handing each new
    trial to a worker that is free at its start reconstructs a valid
    assignment.
    """
    free_at = [0.0] * n_workers
    workers = {}
    for trial_id, row in trials.sort_values('start').iterrows():
        w = int(np.argmin(free_at))
        workers[trial_id] = w
        free_at[w] = row['end']
    return pd.Series(workers).reindex(trials.index)


def busy_fraction(trials, n_workers, horizon=None):
    """Share of the workers' time (0 to ``horizon``) occupied by trials."""
    horizon = horizon or trials['end'].max()
    busy = (trials['end'].clip(upper=horizon)
            - trials['start'].clip(lower=0)).clip(lower=0).sum()
    return busy / (n_workers * horizon)


def idle_gaps(trials, workers):
    """Seconds from a trial's end to the next start on the same worker."""
    gaps = []
    for _, group in trials.assign(worker=workers).groupby('worker'):
        group = group.sort_values('start')
        gaps += list(group['start'].values[1:] - group['end'].values[:-1])
    return np.array(gaps)


STATUS_COLORS = {'completed': 'C0', 'stopped': 'C1', 'diverged': 'C3',
                 'cut off': 'C7', 'failed': 'k'}


def plot_best_so_far(exp):
    """Best validation error reported so far, over true wall-clock time."""
    from d2l import torch as d2l
    df = report_times(exp).sort_values('time')
    d2l.set_figsize()
    ax = d2l.plt.gca()
    ax.step(df['time'], df['validation_error'].cummin(), where='post')
    ax.set_xlabel('wall-clock time (s)')
    ax.set_ylabel('best validation error')
    ax.grid(alpha=0.3)
    return ax


def plot_learning_curves(exp, trials):
    """Validation error of every trial over true wall-clock time.

    Each curve is one trial; the marker at its end says how it ended.
    """
    from d2l import torch as d2l
    df = report_times(exp)
    d2l.set_figsize((6, 3))
    ax = d2l.plt.gca()
    for trial_id in trials.index:
        t = df[df.trial_id == trial_id]
        if not len(t):
            continue
        status = trials.loc[trial_id, 'status']
        color = STATUS_COLORS[status]
        ax.plot(t['time'], t['validation_error'], '-', color=color,
                lw=0.8, alpha=0.7)
        ax.plot(t['time'].iloc[-1:], t['validation_error'].iloc[-1:],
                'x' if status == 'stopped' else 'o', color=color, ms=4)
    for status, color in STATUS_COLORS.items():
        if (trials['status'] == status).any():
            ax.plot([], [], 'x' if status == 'stopped' else 'o',
                    color=color, label=status)
    ax.set_xlabel('wall-clock time (s)')
    ax.set_ylabel('validation error')
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.0, 1.0),
              frameon=False)
    ax.grid(alpha=0.3)
    return ax


def _gantt(ax, starts, ends, workers, colors, labels=None):
    for i, (s, e, w, c) in enumerate(zip(starts, ends, workers, colors)):
        ax.barh(w, e - s, left=s, height=0.8, color=c, edgecolor='white',
                linewidth=0.5)
        if labels is not None and e - s > 0:
            ax.text((s + e) / 2, w, str(labels[i]), ha='center',
                    va='center', fontsize=6, color='white')
    n = int(max(workers)) + 1
    ax.set_yticks(range(n))
    ax.set_yticklabels([f'worker {w}' for w in range(n)])
    ax.invert_yaxis()


def plot_timeline(trials, n_workers, label_trials=True):
    """Gantt chart: which worker ran which trial, and when."""
    from d2l import torch as d2l
    workers = assign_workers(trials, n_workers)
    d2l.set_figsize((6, 0.45 * n_workers + 1.0))
    ax = d2l.plt.gca()
    _gantt(ax, trials['start'], trials['end'], workers,
           [STATUS_COLORS[s] for s in trials['status']],
           list(trials.index) if label_trials else None)
    for status, color in STATUS_COLORS.items():
        if (trials['status'] == status).any():
            ax.barh([0], [0], color=color, label=status)
    ax.set_xlabel('wall-clock time (s)')
    ax.legend(fontsize='small', ncol=5, loc='lower center',
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    return workers


def plot_schedules(schedules):
    """Gantt charts of trials scheduled in different ways, one above the
    other; ``schedules`` maps a name to ``(starts, ends, workers)``."""
    from d2l import torch as d2l
    n_workers = max(int(w.max()) for _, _, w in schedules.values()) + 1
    fig, axes = d2l.plt.subplots(
        len(schedules), 1, sharex=True,
        figsize=(6, 0.35 * len(schedules) * n_workers + 1.6))
    for ax, (name, (starts, ends, workers)) in zip(axes, schedules.items()):
        colors = ['C0' if i % 2 == 0 else 'C9' for i in range(len(starts))]
        _gantt(ax, starts, ends, workers, colors)
        ax.set_title(name, fontsize='small')
    axes[-1].set_xlabel('wall-clock time (s)')
    fig.tight_layout()


def failed_trials(trials, n_lines=5):
    """Print where the log of every failed trial is, and its last lines.

    The log's path is shown relative to the experiments folder.
    """
    failed = trials[trials['status'] == 'failed']
    if not len(failed):
        print('no trial failed')
    for trial_id, row in failed.iterrows():
        log = Path(row['log'])
        lines = log.read_text().strip().splitlines()
        shown = log.relative_to(log.parents[2])  # experiment/trial/std.err
        print(f'trial {trial_id} failed; its log is {shown}:')
        print('\n'.join('    ' + line for line in lines[-n_lines:]))
    return failed


def scheduler_rung_levels(scheduler):
    """The rung levels of an ``ASHA`` scheduler's first bracket, ascending.

    Read from the scheduler itself. Syne Tune also keeps a rung at
    ``max_t``; a trial reaching ``max_t`` is stopped because it is done,
    so that one is left out.
    """
    return sorted(r for r, _ in scheduler.brackets[0].rungs
                  if r < scheduler.max_t)


def rung_occupancy(trials, levels, max_epochs):
    """How many trials reached each rung level, and the full budget."""
    return pd.Series({r: int((trials['epochs'] >= r).sum())
                      for r in list(levels) + [max_epochs]},
                     name='trials')


def epochs_after_stop(exp, trials):
    """Epochs each stopped trial reported after the report that stopped it.

    The epochs reported come from the trial's own standard output, the
    report at which the scheduler said STOP from the results table.
    """
    from syne_tune.report import retrieve
    df = exp.results
    extra = {}
    for trial_id in trials.index[trials['status'] == 'stopped']:
        stops = df[(df.trial_id == trial_id) & (df.st_decision == 'STOP')]
        decided_at = int(stops['epoch'].iloc[0])
        out = (Path(exp.path) / str(trial_id) / 'std.out').read_text()
        reported = [m['epoch'] for m in retrieve(out.splitlines())]
        extra[trial_id] = max(reported) - decided_at
    return pd.Series(extra, dtype=int, name='extra epochs')


def plot_rung_occupancy(occupancy):
    """Bar chart: trials that reached each rung level."""
    from d2l import torch as d2l
    d2l.set_figsize((3.5, 2.5))
    ax = d2l.plt.gca()
    labels = [str(r) for r in occupancy.index]
    ax.bar(labels, occupancy.values, color='C0')
    for i, n in enumerate(occupancy.values):
        ax.text(i, n, str(n), ha='center', va='bottom', fontsize='small')
    ax.set_xlabel('epochs (rung level)')
    ax.set_ylabel('trials reaching it')
    return ax


def startup_times(exp):
    """Each trial's start-up in seconds, by phase, from its own output.

    The training scripts print one line with the tag
    ``train_common.STARTUP_TAG`` before training; columns:
    ``python_and_torch``, ``syne_tune``, ``data``, ``model``, ``total``.
    """
    from train_common import STARTUP_TAG
    rows = {}
    for trial_dir in Path(exp.path).iterdir():
        out = trial_dir / 'std.out'
        if not (trial_dir.name.isdigit() and out.exists()):
            continue
        for line in out.read_text().splitlines():
            if line.startswith(STARTUP_TAG):
                rows[int(trial_dir.name)] = json.loads(
                    line[len(STARTUP_TAG):])
    table = pd.DataFrame.from_dict(rows, orient='index').sort_index()
    return table[['python_and_torch', 'syne_tune', 'data', 'model',
                  'total']]
