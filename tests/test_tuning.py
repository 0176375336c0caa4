"""Real Syne Tune experiments: Tuner + LocalBackend + the training scripts.

Shrunk to a few thousand training images and a few epochs, but otherwise
real: real processes, real Fashion-MNIST, real schedulers.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / 'chapter_hpo'))
import hpo_utils  # noqa: E402

MAX_EPOCHS = 4
SMALL = dict(max_epochs=MAX_EPOCHS, model='lenet', image_size=28,
             n_train=2000)


def run_tuner(scheduler, tmp_path, seconds, script, **stop):
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.experiments import load_experiment
    os.environ['SYNETUNE_FOLDER'] = str(tmp_path)
    os.environ['OMP_NUM_THREADS'] = '1'
    tuner = Tuner(
        trial_backend=LocalBackend(entry_point=str(ROOT / script),
                                   num_gpus_per_trial=0),
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=seconds,
                                         **stop),
        n_workers=2, sleep_time=0.5, max_failures=3,
        output_logger=hpo_utils.plain_logger())
    tuner.run()
    return load_experiment(tuner.name)


@pytest.fixture(scope='module')
def rs_experiment(tmp_path_factory):
    from syne_tune.optimizer.baselines import RandomSearch
    np.random.seed(0)
    space = dict(hpo_utils.search_space(), **SMALL)
    scheduler = RandomSearch(space, metrics=['validation_error'],
                             do_minimize=True, random_seed=0)
    return run_tuner(scheduler, tmp_path_factory.mktemp('rs'), 30,
                     'train_script_report_eachepoch.py')


@pytest.fixture(scope='module')
def asha_experiment(tmp_path_factory):
    from syne_tune.optimizer.baselines import ASHA
    np.random.seed(0)
    space = dict(hpo_utils.search_space(), **SMALL)
    scheduler = ASHA(space, metric='validation_error', time_attr='epoch',
                     max_t=MAX_EPOCHS, grace_period=1, reduction_factor=2,
                     do_minimize=True, random_seed=0)
    # until 10 trials have ended (stopped or completed), so that the
    # rungs see enough results whatever the machine's speed
    exp = run_tuner(scheduler, tmp_path_factory.mktemp('asha'), 300,
                    'train_script_report_eachepoch.py',
                    max_num_trials_finished=10)
    return exp, hpo_utils.rung_levels(scheduler)


def test_random_search_runs_every_trial_to_the_end(rs_experiment):
    df = rs_experiment.results
    trials = hpo_utils.trial_table(rs_experiment)
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


def test_trial_table_matches_the_files(rs_experiment):
    trials = hpo_utils.trial_table(rs_experiment)
    t0 = rs_experiment.metadata['st_tuner_start_timestamp']
    for trial_id, row in trials.iterrows():
        # start: when the backend wrote the trial's config; the process
        # start reported by the script itself comes just after
        reports = rs_experiment.results
        reports = reports[reports.trial_id == trial_id]
        if len(reports):
            first = reports.iloc[0]
            process_start = (first['st_worker_timestamp'] - t0
                             - first['elapsed_time'])
            assert abs(process_start - row['start']) < 1.0
        assert row['end'] > row['start']
    busy = hpo_utils.busy_fraction(trials, 2)
    assert 0.5 < busy <= 1.0
    # independent computation: union of busy intervals per worker
    horizon = trials['end'].max()
    grid = np.linspace(0, horizon, 20001)
    running = sum(((grid >= s) & (grid < e)).astype(int)
                  for s, e in zip(trials['start'], trials['end']))
    assert running.max() <= 2
    assert abs(running.mean() / 2 - busy) < 0.01


def asha_decisions(results, levels, max_t, eta):
    """Recompute ASHA's decisions from the recorded results, in order."""
    recorded = {r: {} for r in levels}
    decisions = []
    for _, row in results.iterrows():
        epoch, trial_id = int(row['epoch']), row['trial_id']
        value = row['validation_error']
        if epoch >= max_t:
            decisions.append('STOP')
            continue
        if epoch not in recorded or trial_id in recorded[epoch]:
            decisions.append('CONTINUE')
            continue
        seen = list(recorded[epoch].values()) + [value]
        better = sum(v < value for v in seen)
        decisions.append('CONTINUE' if better / len(seen) <= 1 / eta
                         else 'STOP')
        recorded[epoch][trial_id] = value
    return decisions


def test_asha_stops_only_at_rung_levels(asha_experiment):
    exp, levels = asha_experiment
    assert levels == [1 * 2 ** k for k in range(len(levels))]
    assert levels == [1, 2]
    trials = hpo_utils.trial_table(exp)
    stopped = trials[trials['status'] == 'stopped']
    assert len(stopped) >= 1, trials
    assert set(stopped['epochs']) <= set(levels)


def test_asha_decisions_agree_with_independent_computation(asha_experiment):
    exp, levels = asha_experiment
    df = exp.results
    expected = asha_decisions(df, levels, MAX_EPOCHS, eta=2)
    assert df['st_decision'].tolist() == expected
    assert 'STOP' in expected[:-1]


def test_same_seed_same_configurations():
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    space = dict(hpo_utils.search_space(), **SMALL)

    def sample(make, seed):
        np.random.seed(seed)
        scheduler = make(seed)
        return [scheduler.suggest().config for _ in range(5)]

    def rs(seed):
        return RandomSearch(space, metrics=['validation_error'],
                            do_minimize=True, random_seed=seed)

    def asha(seed):
        return ASHA(space, metric='validation_error', time_attr='epoch',
                    max_t=MAX_EPOCHS, random_seed=seed)

    for make in (rs, asha):
        assert sample(make, 3) == sample(make, 3)
        assert sample(make, 3) != sample(make, 4)


def test_interrupted_tuner_leaves_no_trial_running(tmp_path):
    """Ctrl+C (SIGINT) in the middle of tuner.run() kills every trial."""
    code = textwrap.dedent(f'''
        import os, sys
        sys.path.insert(0, {str(ROOT / 'chapter_hpo')!r})
        os.environ['SYNETUNE_FOLDER'] = {str(tmp_path)!r}
        import hpo_utils
        from syne_tune import StoppingCriterion, Tuner
        from syne_tune.backend import LocalBackend
        from syne_tune.optimizer.baselines import RandomSearch
        space = dict(hpo_utils.search_space(), max_epochs=50,
                     n_train=20000)
        Tuner(trial_backend=LocalBackend(
                  entry_point={str(ROOT / 'train_script.py')!r},
                  num_gpus_per_trial=0),
              scheduler=RandomSearch(space, metrics=['validation_error']),
              stop_criterion=StoppingCriterion(max_wallclock_time=600),
              n_workers=2, sleep_time=0.5).run()
    ''')
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
    tuner.send_signal(signal.SIGINT)
    tuner.wait(timeout=60)
    gone, alive = psutil.wait_procs(trials, timeout=10)
    assert alive == [], f'orphan trial processes: {alive}'
