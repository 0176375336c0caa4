"""The experiment's size on this machine: the GPUs and cores
(``detect_hardware``, the one GPU count), ``SETUPS``, one per kind, and
the machine in one line (``machine``)."""
import contextlib
import os
import platform
import subprocess
from dataclasses import dataclass

BUDGET_VARIABLE = 'HPO_BUDGET'
SETUP_VARIABLE = 'HPO_SETUP'


@dataclass(frozen=True)
class Hardware:
    """The CPU cores and GPUs that this process may give to trials."""
    cores: int
    gpus: tuple = ()     # indices as LocalBackend and Ray set them
    problem: str = None  # why PyTorch cannot use the GPUs listed


def _visible_gpus(n_listed):
    """Of GPUs ``0 .. n_listed - 1``, the integer indices
    ``CUDA_VISIBLE_DEVICES`` lists (each once); all if it is unset or lists
    others (GPU UUIDs, which LocalBackend cannot express)."""
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    parts = [p.strip() for p in (visible or '').split(',') if p.strip()]
    if visible is None or not all(p.isdigit() for p in parts):
        return tuple(range(n_listed))
    return tuple(i for i in dict.fromkeys(map(int, parts)) if i < n_listed)


def listed_gpus():
    """How many GPUs ``nvidia-smi --list-gpus`` lists, as Syne Tune's
    ``LocalBackend`` counts them; none if it is missing, fails or hangs."""
    try:
        proc = subprocess.run(['nvidia-smi', '--list-gpus'],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return len(proc.stdout.splitlines()) if proc.returncode == 0 else 0


def detect_hardware(mode=None):
    """The GPUs (``nvidia-smi``'s, limited to ``CUDA_VISIBLE_DEVICES``'s
    indices) and cores for trials. ``mode`` (``$HPO_SETUP``): ``'auto'``
    drops GPUs PyTorch cannot use (``problem`` says why), ``'gpu'`` keeps
    them (a fake ``nvidia-smi`` in the tests), ``'cpu'`` uses none."""
    mode = mode or os.environ.get(SETUP_VARIABLE) or 'auto'
    if mode not in ('auto', 'gpu', 'cpu'):
        raise ValueError(f'{SETUP_VARIABLE} must be "auto", "gpu" or '
                         f'"cpu", got {mode!r}')
    gpus = _visible_gpus(listed_gpus() if mode != 'cpu' else 0)
    problem = None
    if gpus:  # why PyTorch cannot use them, if it cannot
        import torch
        from hpo.training import cuda_problem
        problem = cuda_problem()
        if problem is None and torch.cuda.device_count() < len(gpus):
            problem = f'PyTorch sees only {torch.cuda.device_count()} of them'
    if problem and mode == 'auto':
        gpus = ()
    return Hardware(os.cpu_count() or 1, gpus, problem)


def machine():
    """This machine in one line, as results and recordings name it: CPU,
    cores, memory, GPUs and the versions of Python, PyTorch, Syne Tune."""
    import syne_tune
    import torch
    cpu = None
    with contextlib.suppress(OSError, StopIteration), \
            open('/proc/cpuinfo') as f:
        cpu = next(line.split(':', 1)[1].strip() for line in f
                   if line.startswith('model name'))
    cpu = cpu or platform.processor() or platform.machine()
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    hardware = detect_hardware('auto')
    return (f'{cpu}, {hardware.cores} cores, {mem:.0f} GiB, '
            f'{len(hardware.gpus)} GPU(s); Python '
            f'{platform.python_version()}, torch {torch.__version__}, '
            f'syne-tune {syne_tune.__version__}')


@dataclass
class Setup:
    """What one section's experiment runs with on this machine."""
    name: str
    n_workers: int
    max_wallclock_time: float  # seconds of tuning
    threads_per_trial: int     # CPU threads of each trial process
    constants: dict            # fixed script arguments
    sleep_time: float = 0.5    # how often the tuner polls, in seconds
    n_seeds: int = 50          # repetitions of each simulated experiment
    gpus: tuple = ()           # the GPUs the trials use (nvidia-smi's ids)
    trials_per_gpu: int = 0    # trials that share one GPU at a time

    @property
    def gpus_per_trial(self):
        """For ``LocalBackend(num_gpus_per_trial=...)``: 1 or 0."""
        return 1 if self.gpus else 0

    @property
    def gpu_share(self):
        """The fraction of a GPU each trial asks Ray for (0 without)."""
        return 1 / self.trials_per_gpu if self.gpus else 0

    @property
    def gpus_to_use(self):
        """For ``LocalBackend(gpus_to_use=...)`` (None: no GPU)."""
        return list(self.gpus) or None

    def __str__(self):
        args = ', '.join(f'{k}={v}' for k, v in self.constants.items())
        per_trial = f'{self.threads_per_trial} CPU thread(s) per trial'
        if self.gpus:
            per_trial += (f', {self.trials_per_gpu} trial(s) per GPU '
                          f'({TRIALS_PER_GPU_BASIS}) on GPU(s) '
                          + ','.join(map(str, self.gpus)))
        return (f'set-up "{self.name}": {self.n_workers} workers, '
                f'{self.max_wallclock_time:g} s of tuning, polling every '
                f'{self.sleep_time:g} s, {per_trial}; fixed arguments: {args}')


# Both train on 8,000 images for up to 27 epochs, so that ASHA with eta
# = 3 has its rungs at 1, 3 and 9 epochs on every machine; the GPU row is
# d2l's GPU network, a design choice not measured on a GPU yet
# (``benchmarks/gpu.py`` measures it where one is).
CPU_CONSTANTS = dict(max_epochs=27, model='lenet', image_size=28, n_train=8000)
GPU_CONSTANTS = dict(CPU_CONSTANTS, model='alexnet', image_size=224)
SETUPS = {
    'CPU': dict(constants=CPU_CONSTANTS, max_wallclock_time=480),
    'GPU': dict(constants=GPU_CONSTANTS, max_wallclock_time=480),
    # HPO_BUDGET=test: the same workers, tiny trials (the test suite)
    'test': dict(constants=dict(CPU_CONSTANTS, max_epochs=9, n_train=1000),
                 max_wallclock_time=45, n_seeds=20),
}
MAX_WORKERS = 4
# Trials sharing one GPU, by the number of GPUs (default: one per GPU):
# two share a single GPU, so that its experiments stay parallel
TRIALS_PER_GPU = {1: 2}
TRIALS_PER_GPU_BASIS = 'a choice, not measured on a GPU'


def choose_setup(budget=None, n_gpus=None, cores=None):
    """The ``SETUPS`` row for this machine, sized to it; ``budget``
    (``$HPO_BUDGET``) ``'test'`` shrinks the trials. ``n_gpus`` and ``cores``
    replace what ``detect_hardware`` finds, which may print one line."""
    budget = budget or os.environ.get(BUDGET_VARIABLE, 'full')
    if budget not in ('full', 'test'):
        raise ValueError(f'{BUDGET_VARIABLE} must be "full" or "test", '
                         f'got {budget!r}')
    hardware = (detect_hardware() if n_gpus is None
                else Hardware(os.cpu_count() or 1, tuple(range(n_gpus))))
    cores = hardware.cores if cores is None else cores
    if hardware.problem:
        print(f'nvidia-smi lists GPUs, but PyTorch cannot use them '
              f'({hardware.problem}); '
              + ('using them anyway, as HPO_SETUP=gpu asks: the trials '
                 'will train on the CPU' if hardware.gpus else
                 'using the CPU set-up (HPO_SETUP=gpu would use them)'))
    if hardware.gpus:  # at most MAX_WORKERS trials, on one GPU at least
        per_gpu = TRIALS_PER_GPU.get(len(hardware.gpus), 1)
        gpus = hardware.gpus[:max(1, MAX_WORKERS // per_gpu)]
        n_workers, name = per_gpu * len(gpus), f'{len(gpus)} GPU(s)'
    else:
        per_gpu, gpus, name = 0, (), 'CPU'
        n_workers = min(MAX_WORKERS, max(2, cores // 2))
    row = SETUPS['test' if budget == 'test' else 'GPU' if gpus else 'CPU']
    return Setup(name if budget == 'full' else f'test ({name})',
                 n_workers=n_workers, gpus=gpus, trials_per_gpu=per_gpu,
                 threads_per_trial=max(1, cores // n_workers),
                 **dict(row, constants=dict(row['constants'])))
