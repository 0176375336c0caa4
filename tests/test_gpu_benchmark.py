"""``benchmarks/gpu.py`` on a machine without a GPU: fast, and honest.

Without a usable GPU it must write exactly one row, "not measured: no GPU",
into its block of the results file, keep the rest of the file, and replace
its block when run again. ``--cpu-check`` runs the measuring code itself
on the CPU (LeNet, tiny sizes), so that the code a GPU machine runs has run
somewhere.
"""
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

from benchmarks import results_block
from test_gpu_setup import write_fake_nvidia_smi

CUDA = torch.cuda.is_available()
ROW = re.compile(r'^\|.*\|$', re.M)


def run_benchmark(*args, env=None, timeout=600):
    """Run ``benchmarks/gpu.py`` in a session of its own; kill it after.

    Everything it starts (training scripts) is in its process group, which
    is killed by id however the run ends.
    """
    proc = subprocess.Popen([sys.executable, str(ROOT / 'benchmarks' /
                                                 'gpu.py'), *args],
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


def block_rows(text):
    """The table rows (header and separator excluded) of the GPU block."""
    begin, end = results_block.markers('gpu')
    assert text.count(begin) == 1 and text.count(end) == 1
    inside = text.split(begin, 1)[1].split(end, 1)[0]
    return ROW.findall(inside)[2:]


@pytest.mark.skipif(CUDA, reason='a GPU is usable here: it gets measured')
@pytest.mark.parametrize('fake', [None, 4])
def test_without_a_gpu_one_row_says_not_measured(tmp_path, fake):
    results = tmp_path / 'results.md'
    original = (ROOT / 'benchmarks' / 'results.md').read_text()
    results.write_text(original)
    env = dict(os.environ)
    env.pop('CUDA_VISIBLE_DEVICES', None)
    if fake:  # nvidia-smi lists GPUs, but PyTorch cannot use them
        bin_dir = write_fake_nvidia_smi(tmp_path / 'bin', fake)
        env['PATH'] = f'{bin_dir}{os.pathsep}{env["PATH"]}'
    for _ in range(2):  # the second run replaces the block
        rc, out, err = run_benchmark('--results', str(results), env=env,
                                     timeout=300)
        assert rc == 0, err
        assert 'No usable GPU on this machine' in out
        text = results.read_text()
        assert block_rows(text) == ['| gpu | not measured: no GPU | - |']
        assert (results_block.with_block(text, 'gpu', '')
                == results_block.with_block(original, 'gpu', ''))
    if fake:
        assert 'nvidia-smi lists GPUs; PyTorch:' in text


def test_block_is_replaced_and_the_rest_kept():
    text = '# Benchmark results\n\n| a | b | c |\n'
    once = results_block.with_block(text, 'gpu',
                                    results_block.block('gpu', ['x']))
    other = results_block.with_block(
        once, 'calibration', results_block.block('calibration', ['z']))
    twice = results_block.with_block(other, 'gpu',
                                     results_block.block('gpu', ['y']))
    begin, _ = results_block.markers('gpu')
    assert twice.count(begin) == 1 and 'x' not in twice.split('c |')[1]
    assert twice.startswith(text) and '\ny\n' in twice
    assert '\nz\n' in twice  # another benchmark's block is kept
    assert results_block.with_block(
        results_block.with_block(twice, 'gpu', ''), 'calibration', '') == text


def test_cpu_check_runs_the_measuring_code(tmp_path):
    results = tmp_path / 'results.md'
    results.write_text('untouched\n')
    rc, out, err = run_benchmark('--cpu-check', '--results', str(results),
                                 timeout=900)
    assert rc == 0, err[-3000:]
    rows = [r for r in ROW.findall(out) if 'CPU check' in r]
    # the bare rate, each script's two rows, 1 and 2 trials at once
    assert len(rows) == 1 + 2 * 2 + 2, out
    assert len([r for r in ROW.findall(out) if 'projection' in r]) == 2
    assert 'not measured' in out  # the projections say what they are
    assert results.read_text() == 'untouched\n'
