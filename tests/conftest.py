"""Shared helpers: run the training scripts as real subprocesses."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
