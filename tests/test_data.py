"""Fashion-MNIST: sources, the fixed split, concurrent preparation."""
import subprocess
import sys

import torch

import hpo.data
from conftest import run_script


def test_split_is_fixed_and_disjoint():
    (xtr, ytr), (xva, yva), (xte, yte) = hpo.data.load_data()
    assert xtr.shape == (50000, 1, 28, 28) and xtr.dtype == torch.uint8
    assert len(yva) == 10000 and len(yte) == 10000
    again = hpo.data.load_data()
    assert torch.equal(again[1][0], xva)  # the same held-out images
    # no validation image is also a training image
    train_rows = {bytes(row) for row in xtr.flatten(1).numpy()}
    overlap = sum(bytes(row) in train_rows for row in xva.flatten(1).numpy())
    assert overlap < 50  # Fashion-MNIST has a few duplicate images
    assert sorted(torch.bincount(yte).tolist()) == [1000] * 10


def test_concurrent_preparation_does_not_race(tmp_path):
    code = ('import hpo.data, torch; p = hpo.data.prepare_data(); '
            'd = torch.load(p); print(len(d["train_y"]), len(d["test_y"]))')
    env = {'HPO_DATA_DIR': str(tmp_path),
           'PATH': '/usr/bin:/bin'}
    procs = [subprocess.Popen([sys.executable, '-c', code], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    assert all(out.splitlines()[-1] == '60000 10000' for out, _ in outs)
    # exactly one of them prepared the file; no temporary file is left
    assert sum('Prepared Fashion-MNIST' in out for out, _ in outs) == 1
    assert sorted(p.name for p in tmp_path.iterdir()
                  if not p.name.startswith('.prepare')) == [
        hpo.data.DATA_FILE]


def offline_without_data(tmp_path):
    """An environment with no prepared file, no Debian package files, and a
    download that fails for real (the proxy is a closed local port)."""
    return {'HPO_DATA_DIR': str(tmp_path / 'data'),
            'FASHION_MNIST_SYSTEM_DIR': str(tmp_path / 'none'),
            'http_proxy': 'http://127.0.0.1:9',
            'https_proxy': 'http://127.0.0.1:9'}


def test_no_data_offline_names_what_to_install(tmp_path):
    env = offline_without_data(tmp_path)
    proc, metrics = run_script('train_script.py', '--max_epochs', '1',
                               env=env)
    assert proc.returncode != 0
    assert metrics == []
    assert 'apt-get install dataset-fashion-mnist' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'data' / hpo.data.DATA_FILE).exists()


def truncated_copy(directory):
    """A real prepared file cut to a third, as an interrupted copy leaves."""
    directory.mkdir(parents=True, exist_ok=True)
    whole = hpo.data.prepare_data().read_bytes()
    broken = directory / hpo.data.DATA_FILE
    broken.write_bytes(whole[:len(whole) // 3])
    return broken


def test_truncated_file_is_prepared_again(tmp_path):
    broken = truncated_copy(tmp_path)
    proc, metrics = run_script('train_script.py', '--max_epochs', '1',
                               '--n_train', '500',
                               env={'HPO_DATA_DIR': str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert len(metrics) == 1
    said = [line for line in proc.stderr.splitlines() if str(broken) in line]
    assert len(said) == 1, proc.stderr
    assert 'cannot be read' in said[0]
    assert 'preparing it again' in said[0]
    assert 'Traceback' not in proc.stderr
    data = torch.load(broken)  # whole again
    assert len(data['train_y']) == 60000 and len(data['test_y']) == 10000


def test_foreign_file_is_prepared_again(tmp_path, monkeypatch, capsys):
    torch.save({'train_x': torch.zeros(3, dtype=torch.uint8)},
               tmp_path / hpo.data.DATA_FILE)
    monkeypatch.setenv('HPO_DATA_DIR', str(tmp_path))
    (xtr, _), (xva, _), _ = hpo.data.load_data(n_train=100)
    assert xtr.shape == (100, 1, 28, 28) and len(xva) == 10000
    err = capsys.readouterr().err
    assert 'does not hold the prepared Fashion-MNIST' in err
    assert len(err.strip().splitlines()) == 1


def test_corrupt_file_and_no_source_says_what_to_do(tmp_path):
    broken = truncated_copy(tmp_path / 'data')
    env = offline_without_data(tmp_path)
    proc, metrics = run_script('train_script.py', '--max_epochs', '1',
                               env=env)
    assert proc.returncode != 0 and metrics == []
    assert f'{broken} cannot be read' in proc.stderr
    assert 'apt-get install dataset-fashion-mnist' in proc.stderr
    assert 'Traceback' not in proc.stderr
