"""The set-up the notebooks choose, and the models it names."""
import pytest
import torch

import hpo.setups
import hpo.training


@pytest.mark.parametrize('n_gpus', [1, 2, 3, 4, 8])
def test_gpu_machines_run_parallel_trials(n_gpus):
    setup = hpo.setups.choose_setup('full', n_gpus=n_gpus, cores=16)
    row = hpo.setups.SETUPS['GPU']
    assert setup.constants == row['constants']
    assert setup.max_wallclock_time == row['max_wallclock_time']
    # several trials at once on any number of GPUs, at most MAX_WORKERS
    assert 2 <= setup.n_workers <= hpo.setups.MAX_WORKERS
    assert setup.n_workers == setup.trials_per_gpu * len(setup.gpus)
    assert setup.gpus == tuple(range(len(setup.gpus)))
    assert setup.gpus_to_use == list(setup.gpus)
    assert setup.gpus_per_trial == 1
    assert setup.gpu_share == 1 / setup.trials_per_gpu
    said = str(setup)
    assert f'{setup.trials_per_gpu} trial(s) per GPU' in said
    assert hpo.setups.TRIALS_PER_GPU_BASIS in said


def test_one_gpu_is_shared_by_two_trials():
    setup = hpo.setups.choose_setup('full', n_gpus=1, cores=8)
    assert (setup.n_workers, setup.trials_per_gpu) == (2, 2)
    assert setup.gpus == (0,) and setup.threads_per_trial == 4
    assert setup.gpu_share == 0.5


@pytest.mark.parametrize('n_gpus', [2, 3, 4, 8])
def test_several_gpus_get_one_trial_each(n_gpus):
    setup = hpo.setups.choose_setup('full', n_gpus=n_gpus, cores=16)
    assert setup.trials_per_gpu == 1
    assert setup.n_workers == min(n_gpus, hpo.setups.MAX_WORKERS)


@pytest.mark.parametrize('cores,workers,threads',
                         [(1, 2, 1), (2, 2, 1), (4, 2, 2), (8, 4, 2)])
def test_cpu_machines_share_their_cores(cores, workers, threads):
    setup = hpo.setups.choose_setup('full', n_gpus=0, cores=cores)
    assert (setup.n_workers, setup.threads_per_trial) == (workers, threads)
    assert setup.gpus_per_trial == 0 and setup.gpu_share == 0
    assert setup.gpus_to_use is None
    assert setup.constants == hpo.setups.SETUPS['CPU']['constants']
    assert setup.max_wallclock_time == \
        hpo.setups.SETUPS['CPU']['max_wallclock_time']


def test_both_set_ups_have_asha_rungs_at_1_3_9():
    for kind in ('CPU', 'GPU'):
        assert hpo.setups.SETUPS[kind]['constants']['max_epochs'] == 27


def test_test_budget_is_small_and_named(monkeypatch):
    monkeypatch.setenv('HPO_BUDGET', 'test')
    setup = hpo.setups.choose_setup(n_gpus=0)
    assert setup.name == 'test (CPU)' and setup.max_wallclock_time <= 60
    assert setup.constants == hpo.setups.SETUPS['test']['constants']
    assert 'set-up "test (CPU)"' in str(setup)
    # the same workers as the full budget
    assert setup.n_workers == hpo.setups.choose_setup(
        'full', n_gpus=0).n_workers
    monkeypatch.setenv('HPO_BUDGET', 'huge')
    with pytest.raises(ValueError, match='HPO_BUDGET'):
        hpo.setups.choose_setup()


def test_setup_modes_are_checked(monkeypatch):
    monkeypatch.setenv('HPO_SETUP', 'tpu')
    with pytest.raises(ValueError, match='HPO_SETUP'):
        hpo.setups.detect_hardware()
    monkeypatch.setenv('HPO_SETUP', 'cpu')
    assert hpo.setups.detect_hardware().gpus == ()


@pytest.mark.parametrize('name,size', [('alexnet', 224), ('alexnet', 96),
                                       ('lenet', 28)])
def test_models_classify_into_ten_classes(name, size):
    model = hpo.training.build_model(name, size, 'cpu')
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)


def test_inputs_are_resized_on_the_fly():
    batch = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    x = hpo.training.to_input(batch, 224, 'cpu')
    assert x.shape == (3, 1, 224, 224) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize('n_gpus,per_gpu', [(1, 5), (2, 3), (4, 2)])
def test_every_gpu_used_runs_as_many_trials_as_asked(monkeypatch, n_gpus,
                                                     per_gpu):
    """``TRIALS_PER_GPU`` is for readers to change (from a measurement)."""
    monkeypatch.setattr(hpo.setups, 'TRIALS_PER_GPU', {n_gpus: per_gpu})
    setup = hpo.setups.choose_setup('full', n_gpus=n_gpus, cores=16)
    assert setup.trials_per_gpu == per_gpu and setup.gpus
    assert setup.n_workers == per_gpu * len(setup.gpus)
    assert setup.n_workers <= max(per_gpu, hpo.setups.MAX_WORKERS)
    assert setup.constants == hpo.setups.SETUPS['GPU']['constants']


def test_the_machine_is_described_once_for_results_and_recordings():
    import os
    import syne_tune
    described = hpo.setups.machine()
    assert f', {os.cpu_count()} cores, ' in described
    assert f'torch {torch.__version__}' in described
    assert f'syne-tune {syne_tune.__version__}' in described
