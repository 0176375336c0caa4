"""The benchmarks' results, and ``benchmarks/gpu.py`` without a GPU.

``benchmarks/results.md`` is rendered from the data kept beside it; a
benchmark's run replaces its own block and keeps the others. Without a
usable GPU, ``gpu.py`` writes exactly one row, "not measured: no GPU";
``--cpu-check`` runs its measuring code on the CPU (LeNet, tiny sizes),
so that the code a GPU machine runs has run somewhere.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

from benchmarks import common
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


def sections(text):
    """``{heading: text}`` of the ``## `` sections of a results file."""
    return dict(part.split('\n', 1) for part in text.split('\n## ')[1:])


def copy_results(tmp_path):
    """A copy of the committed results (data and Markdown) in tmp_path."""
    shutil.copytree(common.RESULTS.with_suffix(''), tmp_path / 'results')
    shutil.copy(common.RESULTS, tmp_path / 'results.md')
    return tmp_path / 'results.md'


def test_results_md_is_rendered_from_the_data(tmp_path):
    results = copy_results(tmp_path)
    common.render(results)
    assert results.read_text() == common.RESULTS.read_text()
    shown = sections(results.read_text())
    blocks = sorted((tmp_path / 'results').glob('*.json'))
    assert len(shown) == len(blocks) >= 8
    for path in blocks:
        block = json.loads(path.read_text())
        body = shown[block['title']]
        assert block['intro'] in body
        assert ROW.findall(body)[2:] == common.table(block['rows'])[2:]


def test_a_block_is_replaced_and_the_others_kept(tmp_path):
    results = copy_results(tmp_path)
    before = sections(results.read_text())
    common.write('gpu', 'GPU set-up', 'first', [('gpu', 'x', '1')], results)
    common.write('new', 'A new block', 'later', [('a', 'b', 'c')], results)
    common.write('gpu', 'GPU set-up', 'second', [('gpu', 'y', '2')], results)
    after = sections(results.read_text())
    assert list(after) == [*before, 'A new block']  # in ``common.ORDER``
    assert ROW.findall(after['GPU set-up'])[2:] == ['| gpu | y | 2 |']
    assert 'first' not in after['GPU set-up']
    assert common.machine() in after['GPU set-up']
    del before['GPU set-up'], after['GPU set-up'], after['A new block']
    assert after == before


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
