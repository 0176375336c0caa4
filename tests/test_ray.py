"""Ray Tune on a real local Ray cluster of two nodes (shrunk trials).

Real raylets, a real GCS, real worker processes, real Fashion-MNIST and
Ray's own ASHAScheduler; only the trials are small. Whatever happens,
the module's finalizer kills every process the cluster started (found
by the tag in their environment), so a failing test leaves nothing
running.
"""
import ast
import dataclasses
import json
import re
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

import hpo.asha_rules
import hpo.plots
import hpo.ray_cluster
import hpo.ray_tuning
import hpo.setups
import hpo.sim
import hpo.trials
import hpo.tuner
from conftest import ROOT

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
# then configurations drawn as the section draws them
CONFIGS = [dict(c, **SMALL) for c in FIRST]
CONFIGS += hpo.ray_tuning.draw_configurations(
    dict(hpo.tuner.search_space(), **SMALL), N_TRIALS - len(FIRST), 0)


@pytest.fixture(scope='module')
def cluster():
    c = hpo.ray_cluster.RayCluster(n_nodes=2, cpus_per_node=1)
    try:
        yield c.start()
    finally:
        c.shutdown()
        hpo.ray_cluster.kill_tagged(c.tag)  # in case shutdown itself failed


@pytest.fixture(scope='module')
def experiment(cluster, tmp_path_factory):
    """The section's Ray Tune run (``ray_experiment``) on the 2 nodes,
    each trial with one CPU, until the list is done."""
    tmp = tmp_path_factory.mktemp('ray')
    events = tmp / 'events.jsonl'
    scheduler = hpo.ray_tuning.RecordingASHA(
        events, time_attr='epoch', metric='validation_error',
        mode='min', max_t=MAX_EPOCHS, grace_period=1, reduction_factor=ETA)
    setup = dataclasses.replace(hpo.setups.choose_setup('test', n_gpus=0),
                                n_workers=2, threads_per_trial=1)
    grid, trials = hpo.ray_tuning.ray_experiment(
        scheduler, dict(hpo.tuner.search_space(), **SMALL), CONFIGS, None,
        setup, cluster.nodes(), tmp)
    return grid, trials, events


def test_no_cluster_at_ray_address_is_a_clear_error():
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    started = time.time()
    with pytest.raises(hpo.ray_cluster.NoClusterError) as info:
        hpo.ray_cluster.RayCluster(address=f'127.0.0.1:{port}').start()
    message = str(info.value)
    assert f"RAY_ADDRESS='127.0.0.1:{port}'" in message
    assert 'ray start --head' in message
    assert time.time() - started < 10


def test_search_space_is_the_same_as_syne_tunes():
    from ray.tune.search.sample import Float, Integer
    st = hpo.tuner.search_space()
    ray_space = hpo.ray_tuning.ray_search_space(dict(st, max_epochs=3))
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


def ray_scheduler(max_t, eta):
    from ray.tune.schedulers import ASHAScheduler
    scheduler = ASHAScheduler(time_attr='epoch', metric='error',
                              mode='min', max_t=max_t, grace_period=1,
                              reduction_factor=eta)

    def report(trial_id, epoch, error, new):
        trial = types.SimpleNamespace(trial_id=str(trial_id))
        if new:
            scheduler.on_trial_add(None, trial)
        return scheduler.on_trial_result(
            None, trial, {'epoch': epoch, 'error': error})
    return report


def syne_tune_scheduler(max_t, eta):
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import uniform
    from syne_tune.optimizer.baselines import ASHA
    scheduler = ASHA({'x': uniform(0, 1)}, metric='error',
                     time_attr='epoch', max_t=max_t, grace_period=1,
                     reduction_factor=eta, do_minimize=True, random_seed=0)
    trials = {}

    def report(trial_id, epoch, error, new):
        if new:
            trials[trial_id] = Trial(trial_id, config={'x': 0.5},
                                     creation_time=datetime.now())
            scheduler.on_trial_add(trials[trial_id])
        return str(scheduler.on_trial_result(
            trials[trial_id], {'epoch': epoch, 'error': error}))
    return report


def random_run(report, max_t, n_trials=150, seed=1):
    """Trials report in random order to ``report``, each every epoch (or
    every other epoch, so that reports also jump past rungs) until it is
    stopped; errors on a coarse grid, so that equal values occur.
    Returns the reports with the scheduler's decisions."""
    rng = np.random.default_rng(seed)
    curves = {i: np.round(rng.uniform(0.1, 0.9) - 0.01 * np.arange(max_t),
                          2) for i in range(n_trials)}
    steps = {i: int(rng.choice([1, 1, 2])) for i in curves}
    progress = {i: 0 for i in curves}
    rows = []
    while progress:
        i = int(rng.choice(list(progress)))
        new = progress[i] == 0
        progress[i] = min(max_t, progress[i] + steps[i])
        epoch = progress[i]
        error = float(curves[i][epoch - 1])
        decision = report(i, epoch, error, new)
        rows.append(dict(trial_id=i, epoch=epoch, error=error,
                         decision=decision))
        if decision == 'STOP':
            del progress[i]
    return pd.DataFrame(rows)


@pytest.mark.parametrize('library,make', [('Ray Tune', ray_scheduler),
                                          ('Syne Tune', syne_tune_scheduler)])
def test_recomputed_rule_matches_the_librarys_scheduler(library, make):
    """Many trials, several rungs, random order, ties, reports that jump
    past a rung: each rule's recomputation decides as its library."""
    max_t, eta = 27, 3
    results = random_run(make(max_t, eta), max_t)
    results['expected'] = hpo.asha_rules.decisions(
        results, hpo.sim.rung_levels_formula(1, eta, max_t), max_t, eta,
        hpo.asha_rules.RULES[library])
    decided = results[results.expected != 'TIE']
    assert (decided['decision'] == decided['expected']).all()
    assert len(decided) > 0.95 * len(results)
    early = results[(results.decision == 'STOP') & (results.epoch < max_t)]
    assert set(early.epoch) <= {1, 2, 3, 4, 9, 10}
    assert {1, 3, 9} <= set(early.epoch)


@pytest.mark.parametrize('eta', [2, 3])
def test_syne_tunes_rule_is_never_stricter_than_rays_for_small_eta(eta):
    """The exercise's claim, on many random runs of both rules."""
    counts = []
    for seed in range(20):
        reports = random_run(ray_scheduler(27, eta), 27, seed=seed)
        table = hpo.asha_rules.both_rules(
            reports, hpo.sim.rung_levels_formula(1, eta, 27), 27, eta)
        counts.append(hpo.asha_rules.disagreements(table, 27))
    counts = pd.DataFrame(counts)
    assert (counts['stopped by Syne Tune, continued by Ray Tune'] == 0).all()
    assert counts['stopped by Ray Tune, continued by Syne Tune'].sum() > 0


def test_with_eta_4_syne_tune_can_stop_what_ray_continues():
    """The exercise's counterexample, with both libraries' schedulers."""
    errors = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.22]
    table = hpo.ray_tuning.toy_decisions(errors, reduction_factor=4)
    last = table.iloc[-1]
    assert (last['Ray Tune'], last['Syne Tune']) == ('CONTINUE', 'STOP')
    for name in hpo.asha_rules.RULES:
        assert (table[name] == table[f'{name}, recomputed']).all()


def test_both_libraries_run_the_drawn_list_without_repeats():
    """The section's list: distinct configurations, the same for a seed;
    Syne Tune's ASHA suggests exactly the list, also after five results
    (when it would otherwise start sampling from a new stream and, seeded
    as NumPy's generator, repeat an earlier configuration)."""
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.baselines import ASHA
    space = dict(hpo.tuner.search_space(), **SMALL)
    configs = hpo.ray_tuning.draw_configurations(space, 200, 0)
    keys = {tuple(sorted(c.items())) for c in configs}
    assert len(keys) == len(configs) == 200
    assert configs == hpo.ray_tuning.draw_configurations(space, 200, 0)
    assert configs != hpo.ray_tuning.draw_configurations(space, 200, 1)
    np.random.seed(0)
    scheduler = ASHA(space, metric='validation_error', time_attr='epoch',
                     max_t=MAX_EPOCHS, grace_period=1, reduction_factor=3,
                     do_minimize=True, random_seed=0,
                     points_to_evaluate=configs)
    suggested = []
    for trial_id in range(30):
        config = scheduler.suggest().config
        suggested.append(config)
        trial = Trial(trial_id, config=config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        scheduler.on_trial_result(
            trial, {'epoch': 1, 'validation_error': 0.9 - 0.01 * trial_id})
    assert suggested == configs[:30]


def test_ray_ran_the_list_in_order(experiment):
    _, trials, _ = experiment
    assert hpo.ray_tuning.configurations_run(trials, CONFIGS) == len(trials)
    assert len(trials) == N_TRIALS


def test_list_check_skips_a_trial_cut_off_before_it_reported():
    """A trial Ray started at the very end has no configuration on record
    (seen in a benchmark run); it must not count as running another one,
    while a trial that ran another configuration still does."""
    configs = [dict(learning_rate=0.1 * (i + 1), batch_size=16 + i)
               for i in range(3)]
    trials = pd.DataFrame(configs[:2],
                          index=['ab_00000', 'ab_00001'])
    trials.loc['ab_00002'] = np.nan  # cut off: nothing recorded
    assert hpo.ray_tuning.configurations_run(trials, configs) == 3
    trials.loc['ab_00001', 'batch_size'] = 99
    with pytest.raises(ValueError, match='position 1'):
        hpo.ray_tuning.configurations_run(trials, configs)


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
    assert hpo.sim.rung_levels_formula(1, ETA, MAX_EPOCHS) == LEVELS


def test_every_decision_matches_the_recomputation(experiment):
    _, trials, events = experiment
    check = hpo.ray_tuning.decision_check(events, MAX_EPOCHS, 1, ETA)
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
    hpo.trials.failed_trials(trials)
    out = capsys.readouterr().out
    assert f'trial {failed.index[0]} failed; its log is' in out
    assert 'argument --learning_rate: must be a number > 0' in out
    others = trials[trials['status'] != 'failed']
    assert len(others) == len(trials) - 1 >= N_TRIALS - 1
    assert (others['start'] > failed['end'].iloc[0]).any()
    assert set(others['status']) <= {'completed', 'stopped', 'diverged'}


def test_timeline_draws_each_trial_on_its_node(experiment, cluster):
    """The section's figure: one row per node (head first), one bar per
    trial that ran, from its start to its end, in its status's colour."""
    import matplotlib
    from matplotlib.colors import to_rgba
    matplotlib.use('Agg')
    _, trials, _ = experiment
    ran = trials.dropna(subset=['node'])
    ax = hpo.plots.plot_nodes(trials)
    try:
        assert [t.get_text() for t in ax.get_yticklabels()] == \
            list(cluster.nodes().index) == ['head', 'worker 1']
        assert ax.get_xlabel() == 'wall-clock time (s)'
        shown = [s for s in hpo.trials.STATUSES if s in set(ran['status'])]
        # a bar per trial, then one per status drawn, for the legend
        assert len(ax.patches) == len(ran) + len(shown)
        row = {'head': 0, 'worker 1': 1}
        drawn = sorted((round(b.get_y() + b.get_height() / 2),
                        round(b.get_x(), 6), round(b.get_width(), 6),
                        b.get_facecolor()) for b in ax.patches[:len(ran)])
        expected = sorted(
            (row[r.node], round(r.start, 6), round(r.end - r.start, 6),
             to_rgba(hpo.plots.STATUS_COLORS[r.status]))
            for r in ran.itertuples())
        assert drawn == expected
        assert {r for r, *_ in drawn} == {0, 1}  # trials on both nodes
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == shown
    finally:
        matplotlib.pyplot.close(ax.figure)


def test_summary_counts_what_the_table_holds(experiment):
    """The side-by-side numbers of the section, on the real trials."""
    _, trials, _ = experiment
    runs = {'a': (trials, trials['pid'].nunique()), 'b': (trials, None)}
    side = hpo.ray_tuning.summarize(runs, 2, LEVELS)
    assert set(side.index) <= set(hpo.ray_tuning.LABELS)
    a = side['a']
    assert a['trials'] == len(trials) == N_TRIALS
    assert a['epochs'] == trials['epochs'].sum()
    assert a['failed'] == 1 and a['stopped'] >= 1
    assert sum(a[s] for s in hpo.trials.STATUSES if s in a) == len(trials)
    assert a['only_at_rungs'] and set(a['stopped_at']) <= set(LEVELS)
    assert a['processes'] < side['b']['processes'] == len(trials)
    done = trials[trials['status'] == 'completed']
    assert a['best_error'] == round(done['validation_error'].min(), 4)
    sentence = hpo.ray_tuning.compare_sentence(side)
    assert (f'a started {len(trials)} trials that trained {a["epochs"]} '
            f'epochs in {a["processes"]} worker processes') in sentence


def test_section_builds_its_tuner_as_ray_experiment():
    """The section's visible Ray Tune tuner and ``ray_experiment`` (the
    tests', the benchmark's) pass the same arguments to the same calls."""
    import inspect

    def calls(source):
        found = {}
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(
                    node.func, ast.Attribute) and node.func.attr in (
                        'Tuner', 'TuneConfig', 'RunConfig', 'FailureConfig',
                        'BasicVariantGenerator', 'with_resources'):
                found[node.func.attr] = sorted(k.arg for k in node.keywords)
            elif isinstance(node, ast.Call) and getattr(
                    node.func, 'id', None) == 'BasicVariantGenerator':
                found['BasicVariantGenerator'] = sorted(
                    k.arg for k in node.keywords)
        return found

    text = (ROOT / 'chapter_hpo' / 'hpo-ray.md').read_text()
    cell = next(c for c in re.findall(
        r'^```\{\.python \.input\}\n(.*?)^```$', text, re.S | re.M)
        if 'tune.Tuner(' in c)
    library = calls(inspect.getsource(hpo.ray_tuning.ray_experiment))
    assert calls(cell) == library
    assert len(library) == 6
    assert "max_failures=0" in cell and 'verbose=0' in cell


def test_failed_trials_node_is_not_used_again(experiment):
    """The section's caveat (Ray Tune 2.60, reused actors): the trial that
    fails ran in the process of a trial that had ended; no trial started
    after the failure ran on that process's node."""
    grid, trials, _ = experiment
    failed = trials[trials['status'] == 'failed']
    error = str(next(r.error for r in grid if r.error is not None))
    pid = int(re.search(r'pid=(\d+)', error).group(1))
    earlier = trials[trials['end'] <= failed['start'].iloc[0] + 1e-6]
    assert pid in set(earlier['pid'])
    node = earlier.loc[earlier['pid'] == pid, 'node'].iloc[0]
    later = trials[trials['start'] > failed['end'].iloc[0]]
    assert len(later) >= 3
    assert node not in set(later['node'])


def test_trial_cut_off_before_its_first_report_keeps_its_row(
        experiment, cluster, tmp_path):
    """When the time is up while a new actor is starting, Ray has neither
    results nor a config for the trial (seen in benchmarks/ray_vs_local.py
    with reuse_actors=False); the table takes the config the scheduler
    recorded when it chose the trial, and calls the trial cut off."""
    grid, trials, events = experiment
    recorded = hpo.ray_tuning.read_events(events)
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
    table = hpo.ray_tuning.trial_table([*grid, late], extra, cluster.nodes())
    assert len(table) == len(trials) + 1
    row = table.loc['abcde_00099']
    assert row['status'] == 'cut off' and row['epochs'] == 0
    assert row['learning_rate'] == 0.1 and row['max_epochs'] == MAX_EPOCHS


def test_interrupted_run_leaves_no_ray_process(tmp_path):
    """Ctrl+C while a cluster is up: everything it started goes away."""
    code = textwrap.dedent('''
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import hpo.ray_cluster
        with hpo.ray_cluster.RayCluster(n_nodes=2) as cluster:
            print(cluster.tag, flush=True)
            time.sleep(600)
    ''')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            stdout=subprocess.PIPE, text=True)
    tag = None
    try:
        tag = proc.stdout.readline().strip()
        assert tag.startswith('hpo-ray-'), 'the cluster did not start'
        # 2 raylets, GCS, ...
        assert len(hpo.ray_cluster.tagged_processes(tag)) >= 4
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        assert hpo.ray_cluster.tagged_processes(tag) == []
    finally:
        proc.kill()
        if tag:
            hpo.ray_cluster.kill_tagged(tag)


def test_shutdown_leaves_no_ray_process(cluster):
    """Runs last: the module's cluster goes, with everything it started."""
    assert len(cluster.leftovers()) >= 4
    cluster.shutdown()
    assert cluster.leftovers() == []


def test_trial_args_reject_lenet_at_another_image_size():
    """A Ray trial gets the scripts' check of arguments that do not fit
    together, as a ValueError that names the argument."""
    with pytest.raises(ValueError, match=r'train_fn: error: argument '
                       r'--image_size: must be 28 for --model lenet'):
        hpo.ray_tuning.trial_args({'model': 'lenet', 'image_size': 32})
    assert hpo.ray_tuning.trial_args(
        {'model': 'alexnet', 'image_size': 32}).image_size == 32
