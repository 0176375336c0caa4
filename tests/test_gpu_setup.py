"""The GPU set-up, exercised on machines without a GPU.

A fake ``nvidia-smi`` on the ``PATH`` answers ``--list-gpus`` like a machine
with 1, 2 or 4 GPUs. That is how Syne Tune's ``LocalBackend`` finds GPUs,
and how ``hpo.setups.choose_setup`` counts them, so everything above the
driver runs as on a GPU machine: the set-up the notebooks choose, the GPUs
the backend hands out to concurrent trials through ``CUDA_VISIBLE_DEVICES``,
and the trials themselves, which find that CUDA is not usable, say so, and
train on the CPU. On a machine with a real GPU the same tests run; trials
that get a real GPU train on it.

Tests that start trials run them in real processes; ``conftest`` kills
every process a test started when it ends, also when it fails.
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import ROOT, run_script

import hpo.setups
import hpo.trials

SCRIPTS = ['train_script.py', 'train_script_report_eachepoch.py']
TINY = ['--max_epochs', '1', '--n_train', '500', '--batch_size', '64']
CUDA = torch.cuda.is_available()  # a real GPU where the tests run
FALLBACK = re.compile(r"^warning: (.*), but PyTorch cannot use CUDA "
                      r"\((.+)\); training on the CPU instead$", re.M)
DEVICE = re.compile(r'device: (\S+) \(.*CUDA_VISIBLE_DEVICES(=(\S*)| unset)'
                    r'.*\)')


def write_fake_nvidia_smi(directory, n_gpus, returncode=0):
    """An ``nvidia-smi`` that lists ``n_gpus`` GPUs (and ignores options)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ''.join(f'echo "GPU {i}: Fake GPU {i} (UUID: GPU-fake-{i})"\n'
                    for i in range(n_gpus))
    path = directory / 'nvidia-smi'
    path.write_text(f'#!/bin/sh\n{lines}exit {returncode}\n')
    path.chmod(0o755)
    return directory


@pytest.fixture
def fake_gpus(tmp_path, monkeypatch):
    """Call with a number of GPUs: puts a fake ``nvidia-smi`` on ``PATH``.

    Also forgets the GPU count Syne Tune caches per process, clears
    ``CUDA_VISIBLE_DEVICES``, asks for the GPU set-up even though PyTorch
    cannot use the fake GPUs (``HPO_SETUP=gpu``) and works in ``tmp_path``
    (Syne Tune writes ``nvidia-smi``'s output to ``./std.out``). Returns
    the ``PATH``.
    """
    import syne_tune.num_gpu
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    monkeypatch.setenv('HPO_SETUP', 'gpu')  # also where CUDA is unusable

    def install(n_gpus, returncode=0):
        bin_dir = write_fake_nvidia_smi(tmp_path / f'bin{n_gpus}', n_gpus,
                                        returncode)
        path = f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'
        monkeypatch.setenv('PATH', path)
        monkeypatch.setattr(syne_tune.num_gpu, '_num_gpus', None)
        return path
    return install


# ---------------------------------------------------------------------------
# the set-up the notebooks choose


@pytest.mark.parametrize('n_gpus,workers', [(1, 2), (2, 2), (4, 4), (8, 4)])
def test_setup_follows_the_gpus_nvidia_smi_lists(fake_gpus, capsys, n_gpus,
                                                 workers):
    fake_gpus(n_gpus)
    setup = hpo.setups.choose_setup('full')  # nothing but the machine
    per_gpu = hpo.setups.TRIALS_PER_GPU.get(n_gpus, 1)
    assert (setup.n_workers, setup.trials_per_gpu) == (workers, per_gpu)
    assert setup.gpus == tuple(range(workers // per_gpu))
    assert setup.gpus_to_use == list(setup.gpus)
    assert setup.constants == hpo.setups.SETUPS['GPU']['constants']
    assert f'set-up "{len(setup.gpus)} GPU(s)"' in str(setup)
    said = capsys.readouterr().out
    if not CUDA:  # forced onto fake GPUs: the set-up says what follows
        assert 'nvidia-smi lists GPUs, but PyTorch cannot use them' in said
        assert 'using them anyway' in said


@pytest.mark.skipif(CUDA, reason='a real GPU: CUDA is usable here')
def test_gpus_pytorch_cannot_use_mean_the_cpu_set_up(
        fake_gpus, capsys, monkeypatch):
    fake_gpus(2)
    monkeypatch.setenv('HPO_SETUP', 'auto')  # what a reader gets
    hardware = hpo.setups.detect_hardware()
    assert hardware.gpus == () and hardware.problem
    setup = hpo.setups.choose_setup('full', cores=2)
    assert setup.name == 'CPU' and setup.gpus_per_trial == 0
    assert setup.constants == hpo.setups.SETUPS['CPU']['constants']
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and 'using the CPU set-up' in said[0]
    assert hardware.problem in said[0]


@pytest.mark.parametrize('n_gpus', [1, 2, 4])
def test_test_budget_keeps_tiny_lenet_trials_on_gpus(fake_gpus, n_gpus):
    fake_gpus(n_gpus)
    setup = hpo.setups.choose_setup('test')
    assert setup.name == f'test ({n_gpus} GPU(s))'
    assert setup.n_workers == max(2, n_gpus) and setup.gpus_per_trial == 1
    assert setup.constants == hpo.setups.SETUPS['test']['constants']


def test_failing_nvidia_smi_means_no_gpu(fake_gpus):
    fake_gpus(4, returncode=9)  # e.g. a driver/library version mismatch
    setup = hpo.setups.choose_setup('full', cores=2)
    assert setup.gpus == () and setup.gpus_per_trial == 0
    assert setup.name == 'CPU'
    assert setup.constants == hpo.setups.SETUPS['CPU']['constants']


def test_cuda_visible_devices_limits_the_gpus(fake_gpus, monkeypatch):
    fake_gpus(4)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3,1')
    setup = hpo.setups.choose_setup('test')
    assert setup.n_workers == 2 and setup.gpus_to_use == [3, 1]
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3')  # one: shared
    setup = hpo.setups.choose_setup('test')
    assert setup.n_workers == 2 and setup.gpus_to_use == [3]
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')  # all hidden
    setup = hpo.setups.choose_setup('test', cores=2)
    assert setup.gpus == () and setup.n_workers == 2
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', 'GPU-fake-0')  # a UUID
    setup = hpo.setups.choose_setup('test')
    assert setup.n_workers == 4 and setup.gpus_to_use == [0, 1, 2, 3]


# ---------------------------------------------------------------------------
# the training scripts on a GPU that is not there


@pytest.mark.skipif(CUDA, reason='a real GPU: CUDA is usable here')
@pytest.mark.parametrize('script', SCRIPTS)
def test_script_says_cuda_is_unusable_and_trains_anyway(fake_gpus, script):
    path = fake_gpus(4)
    proc, metrics = run_script(script, *TINY, env=dict(
        PATH=path, CUDA_VISIBLE_DEVICES='2'))
    assert proc.returncode == 0, proc.stderr
    warnings = FALLBACK.findall(proc.stdout)
    assert len(warnings) == 1, proc.stdout  # one line, said once
    assert warnings[0][0] == 'CUDA_VISIBLE_DEVICES=2'
    assert DEVICE.search(proc.stdout).group(1, 3) == ('cpu', '2')
    assert metrics and 0 <= metrics[-1]['validation_error'] <= 1


@pytest.mark.skipif(CUDA, reason='a real GPU: CUDA is usable here')
def test_one_gpu_is_recognised_by_nvidia_smi_alone(fake_gpus):
    # with one GPU, LocalBackend sets no CUDA_VISIBLE_DEVICES
    path = fake_gpus(1)
    env = dict(os.environ, PATH=path)
    env.pop('CUDA_VISIBLE_DEVICES', None)
    proc = subprocess.run(
        [sys.executable, '-c', 'import hpo.training as t; '
         'd, w = t.choose_device(); print(d); print(w)'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    device, warning = proc.stdout.splitlines()
    assert device == 'cpu'
    assert FALLBACK.match(warning).group(1) == 'nvidia-smi is on the PATH'


def test_hidden_gpus_are_no_warning(fake_gpus):
    path = fake_gpus(4)
    proc, metrics = run_script('train_script.py', *TINY, env=dict(
        PATH=path, CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 0, proc.stderr
    assert not FALLBACK.search(proc.stdout)
    assert DEVICE.search(proc.stdout).group(1, 3) == ('cpu', '')


@pytest.mark.skipif(not CUDA, reason='needs a GPU')
@pytest.mark.parametrize('options', [[], ['--channels_last', '--bf16']])
def test_script_trains_on_a_real_gpu(options):
    proc, metrics = run_script('train_script_report_eachepoch.py', *TINY,
                               *options)
    assert proc.returncode == 0, proc.stderr
    assert 'device: cuda:0' in proc.stdout
    assert not FALLBACK.search(proc.stdout)
    assert 0 <= metrics[-1]['validation_error'] <= 1


# ---------------------------------------------------------------------------
# LocalBackend hands out the fake GPUs to concurrent trials

TUNER = textwrap.dedent('''
    import numpy as np
    import hpo.setups
    import hpo.tuner
    from syne_tune.optimizer.baselines import RandomSearch
    setup = hpo.setups.choose_setup()  # from the (fake) nvidia-smi
    print('workers', setup.n_workers, flush=True)
    np.random.seed(0)
    space = dict(hpo.tuner.search_space(), **setup.constants)
    space.update(max_epochs=1, n_train=500)  # shrunk further
    exp = hpo.tuner.run_experiment(
        RandomSearch(space, metrics=['validation_error'], do_minimize=True,
                     random_seed=0),
        'train_script_report_eachepoch.py', 300, setup,
        max_num_trials_finished={finished})
    print('tuner', exp.name, flush=True)
''')


def trial_devices(exp):
    """Per trial: CUDA_VISIBLE_DEVICES it printed, device, fallback line.

    Trials that printed nothing yet (killed at the end while starting up)
    are left out.
    """
    devices = {}
    for trial_dir in exp.path.iterdir():
        if trial_dir.name.isdigit():
            out = (trial_dir / 'std.out').read_text()
            m = DEVICE.search(out)
            if m:
                visible = m.group(3) if m.group(2) != ' unset' else None
                devices[int(trial_dir.name)] = (visible, m.group(1),
                                                bool(FALLBACK.search(out)))
    return devices


def gpu_of(visible):
    """The GPU a trial used: the one in ``CUDA_VISIBLE_DEVICES``, or with
    the variable unset (one GPU: LocalBackend sets nothing) GPU 0."""
    return '0' if visible is None else visible


def check_gpus_of_concurrent_trials(exp, gpus, per_gpu):
    """Each trial said which GPU it had; trials running at once shared a
    GPU only where ``per_gpu`` (trials per GPU) allows it.

    ``gpus``: the GPU indices the trials may get. Returns the number of
    pairs of trials that overlapped in time, and of those that shared a
    GPU while they did, and the trial table.
    """
    trials = hpo.trials.trial_table(exp)
    devices = trial_devices(exp)
    silent = trials.loc[sorted(set(trials.index) - set(devices))]
    assert (silent['status'] == 'cut off').all(), silent
    trials = trials.loc[sorted(devices)]
    for trial_id, (visible, device, warned) in devices.items():
        if len(gpus) == 1:  # nothing to rotate over: nothing is set
            assert visible is None
        assert gpu_of(visible) in {str(i) for i in gpus}
        # a GPU PyTorch can use, or one line saying it cannot
        assert device == 'cuda:0' or (device == 'cpu' and warned)
    overlaps = shared = 0
    ids = list(trials.index)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if (trials.loc[a, 'start'] < trials.loc[b, 'end']
                    and trials.loc[b, 'start'] < trials.loc[a, 'end']):
                overlaps += 1
                same = gpu_of(devices[a][0]) == gpu_of(devices[b][0])
                assert per_gpu > 1 or not same, (a, b, devices)
                shared += same
    return overlaps, shared, trials


@pytest.mark.parametrize('n_gpus,visible', [(1, None), (2, None), (4, None),
                                            (4, '1,3')])
def test_local_backend_gives_concurrent_trials_their_gpus(
        fake_gpus, monkeypatch, tmp_path, n_gpus, visible):
    """Also with CUDA_VISIBLE_DEVICES limiting the tuner to some GPUs
    (as ``d2lbook build`` does), passed on as ``setup.gpus_to_use``."""
    from syne_tune.experiments import load_experiment
    fake_gpus(n_gpus)
    gpus = (list(range(n_gpus)) if visible is None
            else [int(i) for i in visible.split(',')])
    if visible is not None:
        monkeypatch.setenv('CUDA_VISIBLE_DEVICES', visible)
    folder = tmp_path / 'experiments'
    code = TUNER.format(finished=len(gpus) + 2)
    env = dict(os.environ, HPO_BUDGET='test', SYNETUNE_FOLDER=str(folder))
    proc = subprocess.run([sys.executable, '-c', code], cwd=tmp_path,
                          env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    setup = hpo.setups.choose_setup('test')  # as the tuner saw it
    assert f'workers {setup.n_workers}' in proc.stdout
    assert setup.gpus == tuple(gpus)
    name = re.search(r'^tuner (\S+)$', proc.stdout, re.M).group(1)
    exp = load_experiment(name, local_path=str(folder))
    overlaps, shared, trials = check_gpus_of_concurrent_trials(
        exp, gpus, setup.trials_per_gpu)
    assert len(trials) >= len(gpus) + 2
    assert not (trials['status'] == 'failed').any(), trials
    assert overlaps > 0, trials  # else nothing ran at the same time
    if setup.trials_per_gpu > 1:
        assert shared > 0  # two trials on one GPU at the same time
    else:  # more trials than GPUs: a GPU was handed out again once free
        used = {gpu_of(d[0]) for d in trial_devices(exp).values()}
        assert used == {str(i) for i in gpus}


@pytest.mark.parametrize('n_gpus,visible', [(1, None), (2, None), (4, None),
                                            (4, '1,3')])
def test_ray_nodes_offer_the_gpus_of_the_set_up(fake_gpus, monkeypatch,
                                                n_gpus, visible):
    """The Ray section's nodes hold the GPUs that LocalBackend uses, and
    trials asking for ``setup.gpu_share`` run as many to a GPU as the
    set-up says, on those GPUs."""
    import ray
    import hpo.ray_cluster
    import hpo.setups
    fake_gpus(n_gpus)
    if visible is not None:
        monkeypatch.setenv('CUDA_VISIBLE_DEVICES', visible)
    setup = hpo.setups.choose_setup('test')

    @ray.remote(num_cpus=setup.threads_per_trial, num_gpus=setup.gpu_share)
    def trial():
        import time
        time.sleep(2)  # so that all of them run at the same time
        return (ray.get_runtime_context().get_node_id(),
                os.environ['CUDA_VISIBLE_DEVICES'])

    with hpo.ray_cluster.RayCluster.for_setup(setup) as cluster:
        nodes = cluster.nodes()
        assert len(nodes) == len(setup.gpus)  # one node per GPU
        assert (nodes['GPUs'] == 1).all()
        seen = ray.get([trial.remote() for _ in range(setup.n_workers)])
    assert not cluster.leftovers()
    gpus_of_node = {}
    for node, gpu in seen:
        gpus_of_node.setdefault(node, set()).add(gpu)
    assert all(len(gpus) == 1 for gpus in gpus_of_node.values())
    used = sorted(int(gpu) for gpu, in gpus_of_node.values())
    assert used == sorted(setup.gpus)  # every GPU, each on one node
    assert len(seen) == setup.trials_per_gpu * len(setup.gpus)


# ---------------------------------------------------------------------------
# the three sections, as notebooks, with one fake GPU and the test budget

NOTEBOOK = textwrap.dedent('''
    import sys
    import nbclient, nbformat
    nb = nbformat.read(sys.argv[1], 4)
    try:
        nbclient.NotebookClient(
            nb, timeout=900, kernel_name='python3',
            resources={'metadata': {'path': sys.argv[2]}}).execute()
    finally:
        nbformat.write(nb, sys.argv[1])
''')


def run_section(section, book, env):
    """Evaluate ``section`` in a copy of the book's resources (those
    ``config.ini`` lists for d2lbook); its output.

    A copy, since the notebook writes the simulation tables it
    recomputes (``sim_*.csv``) next to itself.
    """
    import configparser
    import nbformat
    config = configparser.ConfigParser()
    config.read(ROOT / 'config.ini')
    for pattern in config['build']['resources'].split():  # as d2lbook
        for path in ROOT.glob(pattern):
            copy = book / path.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
    notebook = book / 'chapter_hpo' / f'{section}.ipynb'
    subprocess.run([str(ROOT / '.venv' / 'bin' / 'notedown'), '--match',
                    'strict', str(ROOT / 'chapter_hpo' / f'{section}.md'),
                    '-o', str(notebook)], check=True, timeout=120)
    proc = subprocess.run(
        [sys.executable, '-c', NOTEBOOK, str(notebook),
         str(book / 'chapter_hpo')], env=env, capture_output=True,
        text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    nb = nbformat.read(notebook, 4)
    return '\n'.join(o.get('text', '') for c in nb.cells
                     if c.cell_type == 'code'
                     for o in c.get('outputs', []))


def ray_trials_shared_gpu_0(results):
    """Ray's trials all had GPU 0, and two of them at the same time."""
    import json
    spans = []
    for path in results.rglob('result.json'):
        reports = [json.loads(line) for line in path.read_text().splitlines()
                   if line.strip()]
        if reports:
            assert {r['gpus'] for r in reports} == {'0'}, path
            spans.append((reports[0]['fn_entered'],
                          reports[-1]['report_time']))
    assert len(spans) >= 2
    return any(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(spans)
               for b0, b1 in spans[i + 1:])


@pytest.mark.parametrize('section', ['rs-async', 'sh-async', 'hpo-ray'])
def test_section_runs_two_trials_on_one_fake_gpu(fake_gpus, tmp_path,
                                                 section):
    from syne_tune.experiments import load_experiment
    import hpo.data
    fake_gpus(1)
    folder = tmp_path / 'experiments'
    env = dict(os.environ, HPO_BUDGET='test', SYNETUNE_FOLDER=str(folder),
               HPO_RAY_RESULTS=str(tmp_path / 'ray_results'),
               HPO_DATA_DIR=str(hpo.data.data_dir()))
    text = run_section(section, tmp_path / 'book', env)
    assert 'set-up "test (1 GPU(s))": 2 workers' in text
    assert '2 trial(s) per GPU' in text
    names = [p.name for p in folder.iterdir() if p.is_dir()]
    assert names, 'the notebook ran no experiment'
    for name in names:
        exp = load_experiment(name, local_path=str(folder))
        _, shared, _ = check_gpus_of_concurrent_trials(exp, [0], 2)
        assert shared > 0  # two trials on GPU 0 at the same time
    if section == 'hpo-ray':  # one node, holding the GPU
        assert '1 Ray nodes started on this machine' in text
        assert ray_trials_shared_gpu_0(tmp_path / 'ray_results')
