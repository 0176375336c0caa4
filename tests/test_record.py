"""record_curves.py as a real program: it records, resumes, refuses to mix
set-ups, and an interrupted recording loses no finished curve and leaves
no trial running. Tiny trials (the test budget: 1,000 images, 9 epochs).
"""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

import hpo.record_curves
import hpo.sim
from conftest import ROOT

RECORDER = ['-m', 'hpo.record_curves']


def record(output, *args, timeout=600):
    return subprocess.run(
        [sys.executable, *RECORDER, '--budget', 'test', '--output',
         str(output), *args], capture_output=True, text=True, cwd=ROOT,
        timeout=timeout)


def test_records_and_resumes(tmp_path):
    out = tmp_path / 'curves.csv'
    first = record(out, '--n_configs', '2')
    assert first.returncode == 0, first.stderr
    assert 'recording 2 configurations' in first.stdout
    again = record(out, '--n_configs', '3')
    assert again.returncode == 0, again.stderr
    assert 'recording 1 configurations' in again.stdout
    done = record(out, '--n_configs', '3')
    assert 'all 3 configurations are in' in done.stdout
    curves = hpo.sim.load_curves(out)  # every epoch of every curve
    assert sorted(curves['config_id'].unique()) == [0, 1, 2]
    assert curves['epoch'].max() == 9
    header = [line for line in out.read_text().splitlines()
              if line.startswith('#')]
    assert header[1] == ('# set-up: max_epochs=9 model=lenet image_size=28 '
                         'n_train=1000 threads_per_trial=1 n_workers=2')
    assert any(line.startswith('# resumed with 2 done') for line in header)
    # configuration i does not depend on how many are recorded
    configs = hpo.record_curves.sample_configs(3, seed=1)
    recorded = curves.groupby('config_id')[
        ['learning_rate', 'momentum', 'batch_size']].first()
    for i, config in enumerate(configs):
        assert recorded.loc[i, 'batch_size'] == config['batch_size']
        assert recorded.loc[i, 'learning_rate'] == pytest.approx(
            config['learning_rate'], rel=1e-5)


def test_refuses_to_mix_seeds(tmp_path):
    out = tmp_path / 'curves.csv'
    assert record(out, '--n_configs', '1').returncode == 0
    before = out.read_text()
    other = record(out, '--n_configs', '2', '--seed', '2')
    assert other.returncode != 0
    assert 'recorded with another set-up or seed' in other.stderr
    assert 'Traceback' not in other.stderr
    assert out.read_text() == before


def running_trials(proc):
    try:
        return [p for p in psutil.Process(proc.pid).children(recursive=True)
                if p.is_running()]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_interrupt_keeps_finished_curves_and_kills_trials(tmp_path, sig):
    out = tmp_path / 'curves.csv'
    # the recorder's own handlers decide; a job that ignores SIGINT would
    # pass that on, so give the child the default disposition
    proc = subprocess.Popen(
        [sys.executable, *RECORDER, '--budget', 'test', '--output',
         str(out), '--n_configs', '4'], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    trials = []
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (
                out.exists() and 'config_id' in out.read_text()):
            time.sleep(0.2)
        assert out.exists(), 'no curve was recorded within 300 s'
        trials = running_trials(proc)
        assert trials, 'nothing was running when interrupted'
        proc.send_signal(sig)
        proc.wait(timeout=60)
        err = proc.stderr.read()
        assert 'interrupted; the finished curves are in' in err
        assert 'Traceback' not in err
        gone, alive = psutil.wait_procs(trials, timeout=10)
        assert not alive, f'trials left running: {alive}'
    finally:
        for p in running_trials(proc) + trials:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    curves = hpo.sim.load_curves(out)
    n = curves['config_id'].nunique()
    assert 1 <= n < 4
    raw = pd.read_csv(out, comment='#')
    assert (raw.groupby('config_id').size() <= 9).all()
    resumed = record(out, '--n_configs', '4')
    assert resumed.returncode == 0, resumed.stderr
    assert f'recording {4 - n} configurations' in resumed.stdout
    assert hpo.sim.load_curves(out)['config_id'].nunique() == 4
