"""The set-up the notebooks choose, and the models it names."""
import pytest
import torch

import hpo_utils
import train_common


@pytest.mark.parametrize('n_gpus,workers', [(1, 1), (2, 2), (4, 4), (8, 4)])
def test_gpu_machines_get_one_worker_per_gpu(n_gpus, workers):
    setup = hpo_utils.choose_setup('full', n_gpus=n_gpus, cores=16)
    assert setup.n_workers == workers and setup.gpus_per_trial == 1
    # the CPU set-up's problem (27 epochs: rungs 1, 3, 9 with eta 3),
    # with AlexNet on 224x224 images
    assert setup.constants == dict(max_epochs=27, model='alexnet',
                                   image_size=224, n_train=8000)
    assert setup.max_wallclock_time == 480


@pytest.mark.parametrize('cores,workers,threads',
                         [(1, 2, 1), (2, 2, 1), (4, 2, 2), (8, 4, 2)])
def test_cpu_machines_share_their_cores(cores, workers, threads):
    setup = hpo_utils.choose_setup('full', n_gpus=0, cores=cores)
    assert (setup.n_workers, setup.threads_per_trial) == (workers, threads)
    assert setup.gpus_per_trial == 0
    assert setup.constants == dict(max_epochs=27, model='lenet',
                                   image_size=28, n_train=8000)
    assert setup.max_wallclock_time == 480


def test_test_budget_is_small_and_named(monkeypatch):
    monkeypatch.setenv('HPO_BUDGET', 'test')
    setup = hpo_utils.choose_setup(n_gpus=0)
    assert setup.name == 'test (CPU)' and setup.max_wallclock_time <= 60
    assert 'set-up "test (CPU)"' in str(setup)
    monkeypatch.setenv('HPO_BUDGET', 'huge')
    with pytest.raises(ValueError, match='HPO_BUDGET'):
        hpo_utils.choose_setup()


@pytest.mark.parametrize('name,size', [('alexnet', 224), ('alexnet', 96),
                                       ('lenet', 28)])
def test_models_classify_into_ten_classes(name, size):
    model = train_common.build_model(name, size, 'cpu')
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)


def test_inputs_are_resized_on_the_fly():
    batch = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    x = train_common.to_input(batch, 224, 'cpu')
    assert x.shape == (3, 1, 224, 224) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
