"""The chapter's tuning runs: the search space, the tuner's log, the
block around ``tuner.run()``, and the experiment the benchmarks run."""
import contextlib
import io
import logging
import os
import signal
import tempfile
import threading
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]  # the training scripts
# the columns of the tuned hyperparameters, in every table of trials
HYPERPARAMETERS = ['learning_rate', 'momentum', 'batch_size']


def hide_asha_warning():
    """Hide the warning Syne Tune 0.16's ASHA gives whenever one is made,
    about an argument it passes itself ("points_to_evaluate is passed in
    searcher_kwargs ..."), which says nothing about our code."""
    searcher = ('syne_tune.optimizer.schedulers.searchers.'
                'last_value_multi_fidelity_searcher')
    logging.getLogger(searcher).setLevel(logging.ERROR)


def run_experiment(scheduler, script, seconds, setup, folder=None, **stop):
    """One experiment as the sections run it (``LocalBackend`` on
    ``script``, the set-up's GPUs, workers, threads and polling), stopped
    after ``seconds`` or as ``stop`` (``StoppingCriterion`` arguments)
    says, in ``folder`` (default: Syne Tune's); returns it, loaded."""
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
            stop_criterion=StoppingCriterion(
                max_wallclock_time=seconds, **stop),
            n_workers=setup.n_workers, sleep_time=setup.sleep_time,
            max_failures=3, print_update_interval=10 ** 6,
            output_logger=plain_logger())
        with tuning():
            tuner.run()
        return load_experiment(tuner.name)  # where SYNETUNE_FOLDER says


def search_space():
    """The three hyperparameters both sections tune, as ``rs-async.md``
    shows them (``tests/test_shown_code.py`` checks that they agree)."""
    from syne_tune.config_space import loguniform, randint, uniform
    return {'learning_rate': loguniform(1e-3, 1.0),
            'momentum': uniform(0.0, 0.99),
            'batch_size': randint(16, 256)}


def plain_logger():
    """Syne Tune's ``TunerLogger`` in a few lines, without colour, emoji
    or paths: no line per started or completed trial (failures are still
    reported), a one-line status; inside :func:`tuning`, one-line summary.
    """
    from syne_tune.tuner_logger import TunerLogger

    class PlainTunerLogger(TunerLogger):
        def print_experiment_header(self, name, backend_name, n_workers,
                                    scheduler_name, **_):
            print(f'experiment {name}\n{scheduler_name} with {n_workers} '
                  f'workers ({backend_name})')

        def print_tuning_status(self, tuning_status):
            print(_status_line(tuning_status))

        def _quiet(self, *args):
            pass  # the trial table, or the summary line, says it

        print_trial_started = print_trial_completed = _quiet
        print_tuning_complete = _quiet

        def print_tuning_finished(self, results_path):
            print(f'Tuning finished; results in {Path(results_path).name}/')

    return PlainTunerLogger(use_colors=False, use_emojis=False)


def _status_line(tuning_status):
    """'2 trials running, 5 finished (3 until the end), 61.2s ...'."""
    return str(tuning_status).strip().splitlines()[-1]


@contextlib.contextmanager
def tuning():
    """Around ``tuner.run()``: SIGTERM stops the trials, as Ctrl+C does
    (the first one raises ``KeyboardInterrupt``, in the main thread, and is
    sent again at the end), and the summary is one line: Syne Tune 0.16
    prints it with ``syne_tune.tuner.print_best_metric_found``, which no
    logger or callback can replace, so the block replaces it until it ends."""
    from syne_tune import num_gpu, tuner
    # Syne Tune counts the GPUs once per process, writing nvidia-smi's
    # output to ./std.out: count them now, elsewhere, so that no std.out
    # is left beside a notebook
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        num_gpu.get_num_gpus()
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
        if handle:
            signal.signal(signal.SIGTERM, interrupt)
        with mock.patch.object(tuner, 'print_best_metric_found', one_line):
            yield
    finally:
        if handle:
            signal.signal(signal.SIGTERM,
                          signal.SIG_DFL if previous is None else previous)
        if terminated:  # the trials are stopped: now end as asked
            os.kill(os.getpid(), signal.SIGTERM)
