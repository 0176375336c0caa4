"""Shared helpers: run the training scripts as real subprocesses."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUILD = ROOT / '_build'
# the notebooks' experiments in test builds: kept next to the evaluated
# notebooks, which d2lbook caches, so that tests can read both
EXPERIMENTS = BUILD / 'experiments'
BUILD_TIMEOUT = 45 * 60  # a cold build evaluates every notebook

# Shrunk runs: a few thousand training images instead of 50,000.
SMALL = ['--n_train', '3000', '--batch_size', '64']


def run_script(name, *args, env=None, timeout=300):
    """Run ``name`` with ``args``; return the process and its metrics."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run([sys.executable, str(ROOT / name), *args],
                          capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=ROOT)
    metrics = [json.loads(line.split(':', 1)[1])
               for line in proc.stdout.splitlines()
               if line.startswith('[tune-metric]')]
    return proc, metrics


@pytest.fixture(scope='session', autouse=True)
def prepared_data():
    """Prepare Fashion-MNIST once, as the notebooks do before tuning."""
    import train_common
    return train_common.prepare_data()


def run_build(*args):
    """Run the book build with the test budget; return its output."""
    env = dict(os.environ, HPO_BUDGET='test',
               SYNETUNE_FOLDER=str(EXPERIMENTS))
    proc = subprocess.run(
        [sys.executable, '-m', 'tools.build_book', *args], cwd=ROOT,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=BUILD_TIMEOUT)
    BUILD.mkdir(exist_ok=True)
    name = 'test_build_html.log' if args else 'test_build_pdf.log'
    (BUILD / name).write_text(proc.stdout)
    assert proc.returncode == 0, (
        f'book build failed (log: _build/{name}):\n' + proc.stdout[-6000:])
    return proc.stdout


@pytest.fixture(scope='session')
def html_build():
    return run_build('--html-only')


@pytest.fixture(scope='session')
def pdf_build(html_build):
    return run_build()
