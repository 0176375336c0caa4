"""Ray Tune on a real local Ray cluster of two nodes (shrunk trials).

Real raylets, a real GCS, real worker processes, real Fashion-MNIST and
Ray's own ASHAScheduler; only the trials are small. Whatever happens,
the module's finalizer kills every process the cluster started (found
by the tag in their environment), so a failing test leaves nothing
running.
"""
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

import hpo_ray
import hpo_sim
import hpo_utils

MAX_EPOCHS, ETA = 4, 2
LEVELS = [1, 2]
SMALL = dict(max_epochs=MAX_EPOCHS, model='lenet', image_size=28,
             n_train=1000)
N_TRIALS = 12
# the first trials: two that run at once, one on each node, then one
# that the training's argument checks reject, so that the trial raises
FIRST = [{'learning_rate': 0.1, 'momentum': 0.5, 'batch_size': 64},
         {'learning_rate': 0.01, 'momentum': 0.9, 'batch_size': 128},
         {'learning_rate': -1.0, 'momentum': 0.5, 'batch_size': 64}]


@pytest.fixture(scope='module')
def cluster():
    c = hpo_ray.RayCluster(n_nodes=2, cpus_per_node=1)
    try:
        yield c.start()
    finally:
        c.shutdown()
        hpo_ray.kill_tagged(c.tag)  # in case shutdown itself failed


@pytest.fixture(scope='module')
def experiment(cluster, tmp_path_factory):
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator
    tmp = tmp_path_factory.mktemp('ray')
    events = tmp / 'events.jsonl'
    scheduler = hpo_ray.RecordingASHA(
        str(events), time_attr='epoch', metric='validation_error',
        mode='min', max_t=MAX_EPOCHS, grace_period=1, reduction_factor=ETA)
    space = hpo_ray.ray_search_space(dict(hpo_utils.search_space(),
                                          **SMALL))
    tuner = tune.Tuner(
        tune.with_resources(hpo_ray.train_fn, {'cpu': 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=N_TRIALS,
            reuse_actors=True, search_alg=BasicVariantGenerator(
                random_state=0, max_concurrent=2,
                points_to_evaluate=FIRST)),
        run_config=tune.RunConfig(
            name='test', storage_path=str(tmp), verbose=0,
            log_to_file=True,
            failure_config=tune.FailureConfig(max_failures=0)))
    grid = tuner.fit()
    trials = hpo_ray.trial_table(grid, events, cluster.nodes())
    return grid, trials, events


def test_no_cluster_at_ray_address_is_a_clear_error():
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    started = time.time()
    with pytest.raises(hpo_ray.NoClusterError) as info:
        hpo_ray.RayCluster(address=f'127.0.0.1:{port}').start()
    message = str(info.value)
    assert f"RAY_ADDRESS='127.0.0.1:{port}'" in message
    assert 'ray start --head' in message
    assert time.time() - started < 10


def test_search_space_is_the_same_as_syne_tunes():
    from ray.tune.search.sample import Float, Integer
    st = hpo_utils.search_space()
    ray_space = hpo_ray.ray_search_space(dict(st, max_epochs=3))
    assert ray_space['max_epochs'] == 3
    for name in ('learning_rate', 'momentum'):
        assert isinstance(ray_space[name], Float)
        assert (ray_space[name].lower, ray_space[name].upper) == \
            (st[name].lower, st[name].upper)
    assert type(ray_space['learning_rate'].get_sampler()).__name__ == \
        '_LogUniform'
    batch = ray_space['batch_size']
    assert isinstance(batch, Integer)
    samples = batch.sample(size=5000, random_state=np.random.default_rng(0))
    # Syne Tune's randint includes its upper bound, Ray's does not
    assert min(samples) == st['batch_size'].lower
    assert max(samples) == st['batch_size'].upper


def test_recomputed_rule_matches_rays_scheduler():
    """Many trials, several rungs, arriving in random order, with ties."""
    from ray.tune.schedulers import ASHAScheduler
    rng = np.random.default_rng(1)
    max_t, eta = 27, 3
    scheduler = ASHAScheduler(time_attr='epoch', metric='error',
                              mode='min', max_t=max_t, grace_period=1,
                              reduction_factor=eta)
    # errors on a coarse grid so that equal values occur
    curves = {i: np.round(rng.uniform(0.1, 0.9) - 0.01 * np.arange(max_t),
                          2) for i in range(150)}
    progress = {i: 0 for i in curves}
    rows = []
    trials = {}
    while progress:
        i = int(rng.choice(list(progress)))
        if i not in trials:
            trials[i] = hpo_ray._ToyTrial(str(i))
            scheduler.on_trial_add(None, trials[i])
        progress[i] += 1
        epoch = progress[i]
        value = float(curves[i][epoch - 1])
        decision = scheduler.on_trial_result(
            None, trials[i], {'epoch': epoch, 'error': value})
        rows.append(dict(trial_id=str(i), epoch=epoch, value=value,
                         decision=decision))
        if decision == 'STOP':
            del progress[i]
    results = pd.DataFrame(rows)
    expected = hpo_ray.ray_asha_decisions(
        results, hpo_sim.rung_levels_formula(1, eta, max_t), max_t, eta)
    results['expected'] = expected
    decided = results[results.expected != 'TIE']
    assert (decided['decision'] == decided['expected']).all()
    assert len(decided) > 0.95 * len(results)
    early = results[(results.decision == 'STOP') & (results.epoch < max_t)]
    assert set(early.epoch) == {1, 3, 9}


def test_trials_ran_on_both_nodes_in_reused_processes(experiment, cluster):
    _, trials, _ = experiment
    ran = trials.dropna(subset=['node'])
    assert set(ran['node']) == set(cluster.nodes().index) == \
        {'head', 'worker 1'}
    # Ray Tune handed finished trials' actors to new trials
    assert ran['pid'].nunique() < len(ran)
    assert (ran['overhead'] > 0).all()
    assert (ran['end'] >= ran['start']).all()


def test_asha_stops_only_at_rung_levels(experiment):
    _, trials, _ = experiment
    stopped = trials[trials['status'] == 'stopped']
    assert len(stopped) >= 1, trials
    assert set(stopped['epochs']) <= set(LEVELS)
    assert hpo_sim.rung_levels_formula(1, ETA, MAX_EPOCHS) == LEVELS


def test_every_decision_matches_the_recomputation(experiment):
    _, trials, events = experiment
    check = hpo_ray.decision_check(events, MAX_EPOCHS, 1, ETA)
    assert check['agrees'].all(), check
    assert (check['decision'] == 'STOP').any()
    # every report of every trial that reported was seen by the scheduler
    assert len(check) == int(trials['epochs'].sum())


def test_failing_trial_is_reported_and_the_experiment_goes_on(
        experiment, capsys):
    grid, trials, _ = experiment
    failed = trials[trials['status'] == 'failed']
    assert len(failed) == 1
    assert failed['learning_rate'].iloc[0] == -1.0
    hpo_ray.failed_trials(trials)
    out = capsys.readouterr().out
    assert f'trial {failed.index[0]} failed; its log is' in out
    assert 'argument --learning_rate: must be a number > 0' in out
    others = trials[trials['status'] != 'failed']
    assert len(others) == len(trials) - 1 >= N_TRIALS - 1
    assert (others['start'] > failed['end'].iloc[0]).any()
    assert set(others['status']) <= {'completed', 'stopped', 'diverged'}


def test_trial_cut_off_before_its_first_report_keeps_its_row(
        experiment, cluster, tmp_path):
    """When the time is up while a new actor is starting, Ray has neither
    results nor a config for the trial (seen in benchmarks/ray_vs_local.py
    with reuse_actors=False); the table takes the config the scheduler
    recorded when it chose the trial, and calls the trial cut off."""
    grid, trials, events = experiment
    recorded = hpo_ray.read_events(events)
    assert recorded[recorded.event == 'chosen']['config'].map(
        lambda c: c['learning_rate']).notna().all()
    config = dict(FIRST[0], **SMALL)
    late = types.SimpleNamespace(
        path=str(tmp_path / 'train_fn_abcde_00099_99_lr=0.1'), config=None,
        metrics_dataframe=None, error=None)
    extra = tmp_path / 'events.jsonl'
    extra.write_text(Path(events).read_text() + json.dumps(dict(
        event='chosen', trial_id='abcde_00099', config=config,
        time=float(recorded['time'].max()) + 1)) + '\n')
    table = hpo_ray.trial_table([*grid, late], extra, cluster.nodes())
    assert len(table) == len(trials) + 1
    row = table.loc['abcde_00099']
    assert row['status'] == 'cut off' and row['epochs'] == 0
    assert row['learning_rate'] == 0.1 and row['max_epochs'] == MAX_EPOCHS


def test_interrupted_run_leaves_no_ray_process(tmp_path):
    """Ctrl+C while a cluster is up: everything it started goes away."""
    code = textwrap.dedent(f'''
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, {str(ROOT / 'chapter_hpo')!r})
        import hpo_ray
        with hpo_ray.RayCluster(n_nodes=2) as cluster:
            print(cluster.tag, flush=True)
            time.sleep(600)
    ''')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            stdout=subprocess.PIPE, text=True)
    tag = None
    try:
        tag = proc.stdout.readline().strip()
        assert tag.startswith('hpo-ray-'), 'the cluster did not start'
        assert len(hpo_ray.tagged_processes(tag)) >= 4  # 2 raylets, GCS...
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        assert hpo_ray.tagged_processes(tag) == []
    finally:
        proc.kill()
        if tag:
            hpo_ray.kill_tagged(tag)


def test_shutdown_leaves_no_ray_process(cluster):
    """Runs last: the module's cluster goes, with everything it started."""
    assert len(cluster.leftovers()) >= 4
    cluster.shutdown()
    assert cluster.leftovers() == []
