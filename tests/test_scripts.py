"""The two training scripts, run as real processes on real Fashion-MNIST."""
import math

import pytest
import torch

import hpo.data
import hpo.training

from conftest import SMALL, run_script

SCRIPTS = ['train_script.py', 'train_script_report_eachepoch.py']


def test_each_epoch_script_reports_every_epoch():
    proc, metrics = run_script('train_script_report_eachepoch.py',
                               '--max_epochs', '3', *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert [m['epoch'] for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert 0 <= m['validation_error'] <= 1
        assert m['elapsed_time'] > 0
    times = [m['elapsed_time'] for m in metrics]
    assert times == sorted(times)
    # the test error is an extra metric of the last report only
    assert [('test_error' in m) for m in metrics] == [False, False, True]
    assert 0 <= metrics[-1]['test_error'] <= 1
    # every run says what it trains, on what input and which device
    assert 'model: lenet' in proc.stdout
    assert 'input: 1x28x28' in proc.stdout
    assert 'device: cpu' in proc.stdout


def test_final_report_script_reports_once():
    proc, metrics = run_script('train_script.py', '--max_epochs', '2',
                               *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert len(metrics) == 1
    assert metrics[0]['epoch'] == 2
    assert 0 <= metrics[0]['validation_error'] <= 1
    assert 0 <= metrics[0]['test_error'] <= 1


def test_sensible_setting_beats_hopeless_one():
    errors = {}
    for lr in ('0.1', '1e-6'):
        proc, metrics = run_script(
            'train_script_report_eachepoch.py', '--learning_rate', lr,
            '--momentum', '0.9', '--max_epochs', '2', '--n_train', '10000',
            '--batch_size', '64')
        assert proc.returncode == 0, proc.stderr
        errors[lr] = metrics[-1]['validation_error']
    # ten classes: guessing gives 0.9; a working setting gets far below
    assert errors['1e-6'] > 0.7
    assert errors['0.1'] < 0.45
    assert errors['0.1'] < errors['1e-6'] - 0.3


def test_same_seed_same_result():
    args = ['--max_epochs', '1', *SMALL]
    runs = [run_script('train_script.py', *args)[1][0] for _ in range(2)]
    assert runs[0]['validation_error'] == runs[1]['validation_error']


@pytest.mark.parametrize('script', SCRIPTS)
def test_lenet_with_another_image_size_is_rejected(script):
    proc, metrics = run_script(script, '--model=lenet', '--image_size=32')
    assert proc.returncode == 2
    assert metrics == []
    assert 'argument --image_size: must be 28 for --model lenet, got 32' \
        in proc.stderr


@pytest.mark.parametrize('script', SCRIPTS)
@pytest.mark.parametrize('arg,value', [
    ('--learning_rate', '0'), ('--learning_rate', '-0.1'),
    ('--learning_rate', 'fast'), ('--learning_rate', 'nan'),
    ('--momentum', '1'), ('--momentum', '-0.5'), ('--momentum', 'x'),
    ('--batch_size', '0'), ('--batch_size', '12.5'),
    ('--batch_size', 'big'), ('--max_epochs', '0'),
    ('--max_epochs', '2.5'), ('--n_train', '60000'),
])
def test_bad_argument_is_rejected_by_name(script, arg, value):
    proc, metrics = run_script(script, arg, value)
    assert proc.returncode == 2
    assert metrics == []
    assert f'argument {arg}: must be' in proc.stderr
    assert repr(value) in proc.stderr


@pytest.mark.parametrize('script', SCRIPTS)
def test_diverging_run_reports_truthful_error(script):
    proc, metrics = run_script(script, '--learning_rate', '1e6',
                               '--momentum', '0.9', '--max_epochs', '3',
                               *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert 'loss became non-finite' in proc.stdout
    last = metrics[-1]
    # a network whose outputs are NaN or infinite classifies nothing
    assert last['validation_error'] == 1.0
    assert math.isfinite(last['test_error'])


def test_checkpoint_dir_argument_is_accepted(tmp_path):
    proc, metrics = run_script('train_script.py', '--max_epochs', '1',
                               '--st_checkpoint_dir', str(tmp_path), *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert len(metrics) == 1


def test_sgd_matches_torch_optim():
    torch.manual_seed(0)
    models = [hpo.training.build_model('lenet', 28, 'cpu') for _ in '12']
    models[1].load_state_dict(models[0].state_dict())
    before = models[0][0].weight.detach().clone()
    ours = hpo.training.SGD(models[0].parameters(), 0.05, 0.9)
    theirs = torch.optim.SGD(models[1].parameters(), lr=0.05, momentum=0.9)
    (x, y), _, _ = hpo.data.load_data(n_train=256)
    for i in range(0, 256, 64):
        for model, opt in zip(models, (ours, theirs)):
            loss = torch.nn.functional.cross_entropy(
                model(x[i:i + 64].float() / 255), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(models[0][0].weight, before)  # it moved


@pytest.mark.parametrize('error,reason', [
    (None, 'CUDA out of memory. Tried to allocate 2.00 GiB'),
    # CUDA itself, e.g. when it creates its context on a full GPU
    (lambda: RuntimeError('CUDA error: out of memory\nCUDA kernel errors '
                          'might be asynchronously reported'),
     'CUDA error: out of memory')])
def test_out_of_gpu_memory_ends_training_with_one_line(monkeypatch, error,
                                                       reason):
    """What a trial does when its GPU runs out of memory, without a GPU:
    the loss of the third minibatch raises the error PyTorch raises then.
    ``train`` ends with one line saying why and holds on to nothing, so
    that the memory PyTorch cached can be given back at once.
    """
    import weakref
    from conftest import failing_cross_entropy
    monkeypatch.setattr(torch.nn.functional, 'cross_entropy',
                        failing_cross_entropy(3, error))
    models, build = [], hpo.training.build_model

    def build_and_watch(*args):
        model = build(*args)
        models.append(weakref.ref(model))
        return model
    monkeypatch.setattr(hpo.training, 'build_model', build_and_watch)
    args = hpo.training.make_parser('test').parse_args(
        ['--batch_size', '64', '--max_epochs', '2', *SMALL[:2]])
    epochs = []
    with pytest.raises(SystemExit) as stop:
        for epoch, _ in hpo.training.train(args):
            epochs.append(epoch)
    message = stop.value.code
    assert epochs == []  # it ran out of memory in the first epoch
    assert message.splitlines() == [message]
    assert message.startswith(
        f'error: out of GPU memory with batch size 64 ({reason}); smaller '
        'batch sizes or fewer trials per GPU')
    assert len(models) == 1 and models[0]() is None  # nothing holds it


def test_other_errors_in_training_are_not_called_out_of_memory(
        monkeypatch):
    from conftest import failing_cross_entropy
    bug = failing_cross_entropy(2, lambda: RuntimeError('a bug'))
    monkeypatch.setattr(torch.nn.functional, 'cross_entropy', bug)
    args = hpo.training.make_parser('test').parse_args(SMALL[:2])
    with pytest.raises(RuntimeError, match='^a bug$'):
        list(hpo.training.train(args))
