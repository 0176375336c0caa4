"""Real Syne Tune experiments: Tuner + LocalBackend + the training scripts.

Shrunk to a few thousand training images and a few epochs, but otherwise
real: real processes, real Fashion-MNIST, real schedulers. Every process a
test starts is killed when it ends (``conftest.kill_new_processes``).
"""
import contextlib
import dataclasses
import io
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import psutil
import pytest

import hpo.asha_rules
import hpo.setups
import hpo.trials
import hpo.tuner
from conftest import (ROOT, busy_by_sampling, epochs_where_asha_stops,
                      kill_new_processes)

MAX_EPOCHS = 4
SMALL = dict(max_epochs=MAX_EPOCHS, model='lenet', image_size=28,
             n_train=2000)
# experiments run until enough trials have ended; this only caps them on a
# machine so loaded that they never would (a trial takes seconds on an
# idle one)
MAX_SECONDS = 900


SETUP = dataclasses.replace(hpo.setups.choose_setup('test', n_gpus=0),
                            n_workers=2, threads_per_trial=1)


def run_tuner(scheduler, folder, seconds, script, **stop):
    """``hpo.tuner.run_experiment`` on two workers; the experiment and
    the tuner's log."""
    log = io.StringIO()
    with kill_new_processes(), contextlib.redirect_stdout(log):
        exp = hpo.tuner.run_experiment(scheduler, script, seconds, SETUP,
                                       folder, **stop)
    print(log.getvalue())  # shown if a test fails
    return exp, log.getvalue()


def make_asha(seed, max_t=MAX_EPOCHS, grace_period=1, reduction_factor=2,
              space=None):
    from syne_tune.optimizer.baselines import ASHA
    return ASHA(space or dict(hpo.tuner.search_space(), **SMALL),
                metric='validation_error', time_attr='epoch', max_t=max_t,
                grace_period=grace_period,
                reduction_factor=reduction_factor, do_minimize=True,
                random_seed=seed)


def make_random_search(seed):
    from syne_tune.optimizer.baselines import RandomSearch
    return RandomSearch(dict(hpo.tuner.search_space(), **SMALL),
                        metrics=['validation_error'], do_minimize=True,
                        random_seed=seed)


@pytest.fixture(scope='module')
def rs_experiment(tmp_path_factory):
    np.random.seed(0)
    # until 5 trials have ended (Syne Tune stops at more than 4)
    exp, _ = run_tuner(make_random_search(0), tmp_path_factory.mktemp('rs'),
                       MAX_SECONDS, 'train_script_report_eachepoch.py',
                       max_num_trials_finished=4)
    return exp


@pytest.fixture(scope='module')
def asha_experiment(tmp_path_factory):
    np.random.seed(0)
    scheduler = make_asha(0)
    # until 11 trials have ended (stopped or completed), so that the
    # rungs see enough results whatever the machine's speed
    folder = tmp_path_factory.mktemp('asha')
    exp, log = run_tuner(scheduler, folder, MAX_SECONDS,
                         'train_script_report_eachepoch.py',
                         max_num_trials_finished=10)
    return exp, hpo.trials.scheduler_rung_levels(scheduler), log, folder


def test_random_search_runs_every_trial_to_the_end(rs_experiment):
    df = rs_experiment.results
    trials = hpo.trials.trial_table(rs_experiment)
    finished = trials[trials['status'] != 'cut off']
    assert len(finished) >= 2
    for trial_id, row in finished.iterrows():
        epochs = df[df.trial_id == trial_id]['epoch'].tolist()
        if row['status'] == 'diverged':  # ends itself, never stopped
            assert epochs == list(range(1, len(epochs) + 1))
            continue
        assert row['status'] == 'completed'
        assert epochs == list(range(1, MAX_EPOCHS + 1))
    # random search never stops a trial before max_epochs
    early = df[(df.st_decision == 'STOP') & (df.epoch < MAX_EPOCHS)]
    assert early.empty


def test_tuner_log_is_short_and_names_no_path(asha_experiment):
    exp, _, log, folder = asha_experiment
    lines = log.strip().splitlines()
    n_trials = len(hpo.trials.trial_table(exp))
    assert lines[0] == f'experiment {exp.name}'
    assert lines[-1] == f'Tuning finished; results in {exp.name}/'
    # no line per trial, a status line now and then, a few more, and no
    # table of all trials
    assert n_trials >= 4
    assert not [line for line in lines
                if ' started' in line or 'completed' in line], log
    status = [line for line in lines if 'trials running' in line]
    assert len(lines) - len(status) <= 6, log
    summary = [line for line in lines if 'best validation_error' in line]
    assert len(summary) == 1 and 'finished' in summary[0]
    for path in (str(folder), str(Path.home()), str(ROOT)):
        assert path not in log


def test_trial_table_matches_the_processes(rs_experiment):
    trials = hpo.trials.trial_table(rs_experiment)
    t0 = rs_experiment.metadata['st_tuner_start_timestamp']
    reports = rs_experiment.results
    starts = {}
    for trial_id, row in trials.iterrows():
        mine = reports[reports.trial_id == trial_id]
        assert row['end'] > row['start']
        if len(mine):
            # the process's own clock: its first report's time stamp
            # minus the seconds it says it had been running by then
            first = mine.iloc[0]
            starts[trial_id] = (first['st_worker_timestamp'] - t0
                                - first['elapsed_time'])
            # start: when the backend wrote the trial's config, just
            # before the process started
            assert abs(starts[trial_id] - row['start']) < 1.0
    busy = hpo.trials.busy_fraction(trials, 2)
    assert 0.5 < busy <= 1.0
    sampled = busy_by_sampling(trials['start'], trials['end'], 2,
                               trials['end'].max())
    assert busy == pytest.approx(sampled, abs=0.01)


def test_startup_times_are_the_lines_the_trials_printed(rs_experiment):
    from hpo.training import read_startup
    table = hpo.trials.startup_times(rs_experiment)
    assert list(table.columns) == ['python_and_torch', 'syne_tune', 'data',
                                   'model', 'total']
    for trial_id, row in table.iterrows():
        out = (rs_experiment.path / str(trial_id) / 'std.out').read_text()
        assert row.to_dict() == {k: v for k, v in read_startup(out).items()
                                 if k != 'cpu'}
        assert row['total'] == pytest.approx(row.drop('total').sum(),
                                             abs=0.01)
    assert len(table) >= 2


@pytest.mark.parametrize('max_t,grace_period,eta',
                         [(4, 1, 2), (27, 1, 3), (20, 2, 2)])
def test_rung_levels_are_where_asha_stops(max_t, grace_period, eta):
    space = dict(hpo.tuner.search_space(), max_epochs=max_t)
    scheduler = make_asha(0, max_t, grace_period, eta, space)
    levels = hpo.trials.scheduler_rung_levels(scheduler)
    probed = make_asha(0, max_t, grace_period, eta, space)
    assert levels == epochs_where_asha_stops(probed, max_t)
    assert levels and all(level < max_t for level in levels)


def test_asha_stops_only_at_rung_levels(asha_experiment):
    exp, levels, _, _ = asha_experiment
    trials = hpo.trials.trial_table(exp)
    stopped = trials[trials['status'] == 'stopped']
    assert len(stopped) >= 1, trials
    assert set(stopped['epochs']) <= set(levels)


def test_asha_decisions_agree_with_independent_computation(asha_experiment):
    exp, levels, _, _ = asha_experiment
    df = exp.results
    expected = hpo.asha_rules.decisions(
        df.rename(columns={'validation_error': 'error'}), levels,
        MAX_EPOCHS, 2, hpo.asha_rules.syne_tune_rule)
    assert df['st_decision'].tolist() == expected
    assert 'STOP' in expected[:-1]


def test_same_seed_same_configurations():
    def sample(make, seed):
        np.random.seed(seed)
        scheduler = make(seed)
        return [scheduler.suggest().config for _ in range(5)]

    for make in (make_random_search, make_asha):
        assert sample(make, 3) == sample(make, 3)
        assert sample(make, 3) != sample(make, 4)


def asha_suggestions(seed, n, errors):
    """ASHA's first ``n`` configurations; trial i reports ``errors[i]``
    at epoch 1 before the next configuration is asked for."""
    from syne_tune.backend.trial_status import Trial
    np.random.seed(seed)
    scheduler = make_asha(seed)
    configs = []
    for trial_id in range(n):
        config = scheduler.suggest().config
        configs.append(config)
        trial = Trial(trial_id, config=config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        if errors is not None:
            scheduler.on_trial_result(
                trial, {'epoch': 1, 'validation_error': errors[trial_id]})
    return configs


def test_asha_samples_what_random_search_samples_at_first():
    """Same seed: ASHA's first configurations are random search's.

    ASHA's searcher samples from the same random stream as random search
    until five trials have reported (its ``num_init_random_draws``); then
    it samples from a new stream, so its later configurations differ.
    """
    n = 10
    np.random.seed(0)
    rs = make_random_search(0)
    expected = [rs.suggest().config for _ in range(n)]
    assert asha_suggestions(0, n, errors=None) == expected
    errors = [0.9 - 0.05 * i for i in range(n)]
    with_results = asha_suggestions(0, n, errors)
    assert with_results[:5] == expected[:5]
    assert not any(a == b for a, b in zip(with_results[5:], expected[5:]))


TUNER_CODE = '''
import dataclasses
import signal
import hpo.setups
import hpo.tuner
from syne_tune.optimizer.baselines import RandomSearch
{preamble}
space = dict(hpo.tuner.search_space(), max_epochs=50, n_train=5000)
setup = dataclasses.replace(hpo.setups.choose_setup('test', n_gpus=0),
                            n_workers=2, threads_per_trial=1)
hpo.tuner.run_experiment(RandomSearch(space, metrics=['validation_error']),
                         'train_script.py', 600, setup)
'''


def interrupted_tuner(folder, preamble, sig):
    """Start a tuner process, send it ``sig`` once both trials train.

    Returns the trial processes it had started, and its exit code.
    """
    code = TUNER_CODE.format(preamble=textwrap.dedent(preamble))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('SYNETUNE_FOLDER', str(folder))
        tuner = subprocess.Popen([sys.executable, '-c', code],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    parent = psutil.Process(tuner.pid)
    deadline = time.time() + 120
    trials = []
    while time.time() < deadline and len(trials) < 2:
        time.sleep(0.5)
        trials = [p for p in parent.children(recursive=True)
                  if 'train_script.py' in ' '.join(p.cmdline())]
    assert len(trials) == 2, 'the trials did not start'
    time.sleep(2)  # let them get into training
    tuner.send_signal(sig)
    return trials, tuner.wait(timeout=60)


def test_interrupted_tuner_leaves_no_trial_running(tmp_path):
    """Ctrl+C (SIGINT) in the middle of tuner.run() kills every trial.

    A process started from a job that ignores SIGINT (a background job of
    a shell, some CI runners) inherits that; the tuner process therefore
    sets Python's own handler, as an interactive Python has.
    """
    trials, _ = interrupted_tuner(
        tmp_path, 'signal.signal(signal.SIGINT, signal.default_int_handler)',
        signal.SIGINT)
    _, alive = psutil.wait_procs(trials, timeout=10)
    assert alive == [], f'orphan trial processes: {alive}'


def test_terminated_tuner_leaves_no_trial_running(tmp_path):
    """SIGTERM (``kill``, a cancelled job) stops the trials as Ctrl+C.

    ``hpo.tuner.tuning`` makes it so; SIGINT is ignored here, so that
    only the SIGTERM handler can have stopped the trials.
    """
    trials, code = interrupted_tuner(
        tmp_path, 'signal.signal(signal.SIGINT, signal.SIG_IGN)',
        signal.SIGTERM)
    _, alive = psutil.wait_procs(trials, timeout=10)
    assert alive == [], f'orphan trial processes: {alive}'
    assert code == -signal.SIGTERM  # ended by SIGTERM, once trials ended


def test_sigterm_after_tuning_still_terminates():
    code = ('import time; import hpo.tuner\n'
            'with hpo.tuner.tuning(): pass\n'
            'print("ready", flush=True); time.sleep(60)')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == 'ready\n'
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


def test_trial_out_of_gpu_memory_fails_and_the_tuner_goes_on(
        tmp_path, monkeypatch, capsys):
    """A trial whose (simulated) GPU runs out of memory fails as a trial:
    it exits by itself with one line saying why, and the others run."""
    import os
    from syne_tune.optimizer.baselines import RandomSearch
    from conftest import out_of_memory_site
    site = out_of_memory_site(tmp_path, batch_size=200, step=2)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [str(site), os.environ.get('PYTHONPATH', '')]))
    points = [dict(learning_rate=0.05, momentum=0.5, batch_size=b)
              for b in (64, 200, 128, 100)]
    scheduler = RandomSearch(
        dict(hpo.tuner.search_space(), **dict(SMALL, max_epochs=1)),
        metrics=['validation_error'], do_minimize=True, random_seed=0,
        points_to_evaluate=points)
    exp, _ = run_tuner(scheduler, tmp_path / 'exp', MAX_SECONDS,
                       'train_script.py', max_num_trials_finished=3)
    trials = hpo.trials.trial_table(exp)
    failed = trials[trials['status'] == 'failed']
    assert list(failed['batch_size']) == [200]
    log = Path(failed['log'].iloc[0]).read_text().strip().splitlines()
    assert log[-1].startswith('error: out of GPU memory with batch size '
                              '200 (CUDA out of memory.')
    capsys.readouterr()
    hpo.trials.failed_trials(trials)
    assert log[-1] in capsys.readouterr().out
    # the tuner went on: trials started after the failure completed
    later = trials[trials['start'] > failed['end'].iloc[0]]
    assert (later['status'] == 'completed').sum() >= 2, trials


def test_tuning_block_changes_nothing_after_it(capsys):
    """``hpo.tuner.tuning`` shortens the summary and handles SIGTERM only
    inside its block."""
    from syne_tune import tuner
    from syne_tune.backend.trial_status import Trial
    from syne_tune.tuning_status import TuningStatus
    library_version = tuner.print_best_metric_found
    handler = signal.getsignal(signal.SIGTERM)
    status = TuningStatus(metric_names=['validation_error'])
    trial = Trial(0, config={}, creation_time=datetime.now())
    status.update({0: (trial, 'Completed')},
                  [(0, {'validation_error': 0.25, 'epoch': 1})])
    with hpo.tuner.tuning():
        assert signal.getsignal(signal.SIGTERM) is not handler
        best = tuner.print_best_metric_found(status, ['validation_error'],
                                             'min')
    assert best == (0, 0.25)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].endswith(
        '; best validation_error 0.2500 (trial 0)')
    assert tuner.print_best_metric_found is library_version
    assert signal.getsignal(signal.SIGTERM) is handler
