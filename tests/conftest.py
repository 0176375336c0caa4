"""Shared helpers: real subprocesses, and none of them left behind.

The tests import the chapter's code as the notebooks and scripts do: the
package ``hpo``, installed (editable) by ``run.sh``.
"""
import contextlib
import ctypes
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import psutil
import pytest
from syne_tune.report import retrieve

ROOT = Path(__file__).resolve().parents[1]
# The test-budget book is built in a copy of the sources of its own, so
# that no test changes the reader's _build/ (a full-budget build takes
# 25 minutes). Only changed files are copied again, so d2lbook's cache
# (by modification time) re-evaluates only what changed.
TEST_BOOK = ROOT / '_test_book'
BUILD = TEST_BOOK / '_build'
# the notebooks' experiments in test builds: kept next to the evaluated
# notebooks, which d2lbook caches, so that tests can read both
EXPERIMENTS = BUILD / 'experiments'
BUILD_TIMEOUT = 45 * 60  # a cold build evaluates every notebook

# Shrunk runs: a few thousand training images instead of 50,000.
SMALL = ['--n_train', '3000', '--batch_size', '64']

PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


def adopt_orphans():
    """Make this process the reaper of orphaned descendants (Linux).

    A trial whose tuner died, or a Jupyter kernel whose d2lbook died, is
    then re-parented to pytest instead of to init, so that
    ``kill_new_processes`` still finds it. Elsewhere this does nothing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def kill_processes(processes, timeout=10):
    """SIGKILL each process and its descendants; wait until all are gone."""
    victims = set()
    for proc in processes:
        victims.add(proc)
        with contextlib.suppress(psutil.Error):
            victims.update(proc.children(recursive=True))
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _, alive = psutil.wait_procs(victims, timeout=timeout)
    return alive


@contextlib.contextmanager
def kill_new_processes():
    """Kill every process started inside the block, also if it fails."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    try:
        yield
    finally:
        kill_processes([p for p in me.children(recursive=True)
                        if p.pid not in before])


@pytest.fixture(scope='session', autouse=True)
def no_process_outlives_the_session():
    adopt_orphans()
    with kill_new_processes():
        yield


def file_states(directory):
    """Every file below ``directory``: its size and modification time."""
    return {(str(p.relative_to(directory)), p.stat().st_size,
             p.stat().st_mtime_ns)
            for p in directory.rglob('*') if p.is_file()}


@pytest.fixture(scope='session', autouse=True)
def readers_build_is_left_alone():
    """No test changes the reader's ``_build/`` (the book it built)."""
    before = file_states(ROOT / '_build')
    yield
    changed = sorted(before ^ file_states(ROOT / '_build'))
    assert not changed, f"the tests changed _build/: {changed[:5]}"


@pytest.fixture(autouse=True)
def no_process_outlives_a_test():
    """Every test: whatever it started (trials, tuners, browsers) dies."""
    with kill_new_processes():
        yield


def run_script(name, *args, env=None, timeout=300):
    """Run ``name`` with ``args``; return the process and its metrics."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run([sys.executable, str(ROOT / name), *args],
                          capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=ROOT)
    return proc, retrieve(proc.stdout.splitlines())


def busy_by_sampling(starts, ends, n_workers, horizon, n_points=20001):
    """Busy fraction from counting running trials at sampled times."""
    grid = np.linspace(0, horizon, n_points)
    running = sum(((grid >= s) & (grid < e)).astype(int)
                  for s, e in zip(starts, ends))
    assert running.max() <= n_workers
    return running.mean() / n_workers


def epochs_where_asha_stops(scheduler, max_t):
    """Epochs below ``max_t`` at which ``scheduler`` stops a poor trial.

    Three trials report a good error at every epoch; then, for each epoch
    e, a probe trial reports the best error before e and the worst at e.
    ASHA can only stop it at a rung level, and there it must.
    """
    from syne_tune.backend.trial_status import Trial
    config = scheduler.suggest().config

    def add(trial_id):
        trial = Trial(trial_id, config=config, creation_time=datetime.now())
        scheduler.on_trial_add(trial)
        return trial

    for trial_id in range(3):
        trial = add(trial_id)
        for epoch in range(1, max_t):
            scheduler.on_trial_result(
                trial, {'epoch': epoch, 'validation_error': 0.5})
    stops = []
    for epoch in range(1, max_t):
        probe = add(100 + epoch)
        for e in range(1, epoch + 1):
            error = 1.0 if e == epoch else 0.0
            decision = scheduler.on_trial_result(
                probe, {'epoch': e, 'validation_error': error})
            if decision == 'STOP':
                stops.append(e)
                break
    return stops


@pytest.fixture(scope='session', autouse=True)
def prepared_data():
    """Prepare Fashion-MNIST once, as the notebooks do before tuning."""
    import hpo.data
    return hpo.data.prepare_data()


def book_sources():
    """The files of the repository (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ['git', 'ls-files', '-z', '--cached', '--others',
         '--exclude-standard'],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {path for path in listed.split('\0')
            if path and (ROOT / path).is_file()
            and not path.startswith('tests/')}


def sync_test_book():
    """Make ``TEST_BOOK`` a copy of the sources (its ``_build/`` kept).

    A changed file is copied with a new modification time, so that
    d2lbook re-evaluates the notebooks that depend on it.
    """
    import filecmp
    import shutil
    wanted = book_sources()
    for path in wanted:
        source, copy = ROOT / path, TEST_BOOK / path
        if not copy.exists() or not filecmp.cmp(source, copy,
                                                shallow=False):
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
            shutil.copymode(source, copy)
    for copy in TEST_BOOK.rglob('*'):
        path = copy.relative_to(TEST_BOOK).as_posix()
        if (copy.is_file() and path not in wanted
                and not path.startswith('_build/')
                and '__pycache__' not in copy.parts):
            copy.unlink()


def run_build(*args):
    """Build the test book with the test budget; return the build's log."""
    import hpo.data
    sync_test_book()
    env = dict(os.environ, HPO_BUDGET='test',
               SYNETUNE_FOLDER=str(EXPERIMENTS),
               HPO_RAY_RESULTS=str(BUILD / 'ray_results'),
               HPO_DATA_DIR=str(hpo.data.data_dir()))
    with kill_new_processes():
        proc = subprocess.run(
            [sys.executable, '-m', 'tools.build_book', *args],
            cwd=TEST_BOOK, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT)
    BUILD.mkdir(exist_ok=True)
    log = BUILD / ('test_build_html.log' if args else 'test_build_pdf.log')
    log.write_text(proc.stdout)
    assert proc.returncode == 0, (
        f'book build failed (log: {log}):\n' + proc.stdout[-6000:])
    return proc.stdout


@pytest.fixture(scope='session')
def html_build():
    return run_build('--html-only')


@pytest.fixture(scope='session')
def pdf_build(html_build):
    return run_build()


# PyTorch's out-of-memory error, as a GPU raises it (made up numbers)
OUT_OF_MEMORY = ('CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has '
                 'a total capacity of 15.77 GiB of which 1.06 GiB is free.')


def failing_cross_entropy(step, error=None):
    """``F.cross_entropy`` that raises ``error()`` (default: PyTorch's
    out-of-memory error) the ``step``-th time it is called (the loss of
    minibatch ``step``); a new exception, as PyTorch raises one."""
    import torch
    from torch.nn import functional
    real, calls = functional.cross_entropy, [0]

    def cross_entropy(*args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            raise (error() if error else
                   torch.OutOfMemoryError(OUT_OF_MEMORY))
        return real(*args, **kwargs)
    return cross_entropy


def out_of_memory_site(directory, batch_size, step):
    """Put ``directory`` on ``PYTHONPATH``: a training script started with
    ``--batch_size batch_size`` then runs out of GPU memory on minibatch
    ``step``, as on a GPU too small for it; other processes are unchanged.
    """
    import inspect
    patch = inspect.getsource(failing_cross_entropy) + (
        f'torch.nn.functional.cross_entropy = failing_cross_entropy({step})')
    (directory / 'sitecustomize.py').write_text(textwrap.dedent(f'''\
        import sys
        args = sys.orig_argv
        if ('--batch_size' in args and
                args[args.index('--batch_size') + 1] == '{batch_size}'):
            import torch.nn.functional
            OUT_OF_MEMORY = {OUT_OF_MEMORY!r}
        ''') + textwrap.indent(patch, '    ') + '\n')
    return directory
