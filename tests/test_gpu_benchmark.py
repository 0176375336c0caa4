"""``benchmarks/gpu.py`` on a machine without a GPU: fast, and honest.

Without a usable GPU it writes exactly one row, "not measured: no GPU", as
its block of the results, and keeps the other blocks; ``--cpu-check`` runs
its measuring code on the CPU (LeNet, tiny sizes), so that the code a GPU
machine runs has run somewhere.
"""
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

from test_benchmarks import copy_results, sections
from test_gpu_setup import write_fake_nvidia_smi

CUDA = torch.cuda.is_available()
ROW = re.compile(r'^\|.*\|$', re.M)


def run_module(module, *args, env=None, timeout=600):
    """Run ``python -m module`` in a session of its own; kill it after.

    Everything it starts (training scripts) is in its process group, which
    is killed by id however the run ends.
    """
    proc = subprocess.Popen([sys.executable, '-m', module, *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return proc.returncode, out, err


@pytest.mark.skipif(CUDA, reason='a GPU is usable here: it gets measured')
@pytest.mark.parametrize('fake', [None, 4])
def test_without_a_gpu_one_row_says_not_measured(tmp_path, fake):
    results = copy_results(tmp_path)
    original = sections(results.read_text())
    env = dict(os.environ)
    env.pop('CUDA_VISIBLE_DEVICES', None)
    if fake:  # nvidia-smi lists GPUs, but PyTorch cannot use them
        bin_dir = write_fake_nvidia_smi(tmp_path / 'bin', fake)
        env['PATH'] = f'{bin_dir}{os.pathsep}{env["PATH"]}'
    for _ in range(2):  # the second run replaces the block
        rc, out, err = run_module('benchmarks.gpu', '--results',
                                  str(results), env=env, timeout=300)
        assert rc == 0, err
        assert 'No usable GPU on this machine' in out
        shown = sections(results.read_text())
        gpu = shown.pop('GPU set-up')
        assert ROW.findall(gpu)[2:] == ['| gpu | not measured: no GPU | - |']
        assert shown == {k: v for k, v in original.items()
                         if k != 'GPU set-up'}
    if fake:
        assert 'nvidia-smi lists GPUs; PyTorch:' in gpu


def test_cpu_check_runs_the_measuring_code(tmp_path):
    results = copy_results(tmp_path)
    before = results.read_text()
    rc, out, err = run_module('benchmarks.gpu', '--cpu-check', '--results',
                              str(results), timeout=900)
    assert rc == 0, err[-3000:]
    rows = [r for r in ROW.findall(out) if 'CPU check' in r]
    # the bare rate, each script's two rows, 1 and 2 trials at once
    assert len(rows) == 1 + 2 * 2 + 2, out
    assert len([r for r in ROW.findall(out) if 'projection' in r]) == 2
    assert 'not measured' in out  # the projections say what they are
    assert results.read_text() == before
