"""What both training scripts share: networks, arguments, training loop.

On a GPU only: the data kept there as ``uint8``, cuDNN autotuning, larger
validation batches, ``--channels_last``/``--bf16`` (``benchmarks/gpu.py``)."""
import argparse
import contextlib
import json
import os
import shutil
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

from hpo.data import NUM_VAL, DataUnavailableError, load_data

# When this module (and PyTorch) finished importing: see _train
TORCH_IMPORTED = time.time()
# Images per validation batch. On a GPU, AlexNet's first convolution and
# its ReLU take about 1.1 GB for 500 images (arithmetic, not measured):
# two trials fit on 8 GB. The CPU keeps the 1,000 of its recorded curves.
VAL_BATCH = {'cpu': 1000, 'cuda': 500}


def to_input(images, image_size, device):
    """Scale a batch of ``uint8`` images to floats and resize on device."""
    x = images.to(device, non_blocking=True).float().div_(255)
    if image_size != x.shape[-1]:
        x = F.interpolate(x, size=image_size, mode='bilinear',
                          align_corners=False)
    return x


def lenet(num_classes=10):
    """LeNet-5 layout with ReLU and max-pooling, for 28x28 inputs on CPUs."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))


def alexnet(num_classes=10):
    """AlexNet (Krizhevsky et al., 2012) for one-channel 224x224 images;
    the first dense layer is lazy, so that other sizes work too."""
    return nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, num_classes))


MODELS = {'lenet': lenet, 'alexnet': alexnet}


class SGD:
    """Minibatch SGD with momentum (``v = momentum * v + grad``, ``w = w
    - lr * v``), as ``torch.optim.SGD``, whose import of TorchDynamo adds
    about 1.5 s to every trial's start on the chapter's CPU machines."""
    def __init__(self, params, lr, momentum):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum = lr, momentum
        self.velocities = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, v in zip(self.params, self.velocities):
            if p.grad is not None:
                v.mul_(self.momentum).add_(p.grad)
                p.sub_(v, alpha=self.lr)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def build_model(name, image_size, device):
    model = MODELS[name]().to(device)
    with torch.no_grad():  # materialise lazy layers before initialising
        model(torch.zeros(1, 1, image_size, image_size, device=device))
    for layer in model.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model


class GPUOptions(nn.Module):
    """A model run in channels-last layout and/or bfloat16 autocast, off
    by default (``benchmarks/gpu.py`` measures them); float32 logits."""
    def __init__(self, model, channels_last=False, bf16=False):
        super().__init__()
        self.model, self.channels_last, self.bf16 = model, channels_last, bf16
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def forward(self, x):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(x).float()


def cuda_problem():
    """Why PyTorch cannot use CUDA in this process, or None if it can."""
    if torch.cuda.is_available():
        return None
    try:
        torch.cuda.init()
    except Exception as e:  # no driver, a CPU-only build of PyTorch, ...
        return (str(e).strip().splitlines() or [type(e).__name__])[0]
    return 'torch.cuda.is_available() is False'


def choose_device():
    """``(device, warning)``: ``cuda:0`` if PyTorch can use a GPU, else
    the CPU, with a warning if this process was given a GPU (with one GPU,
    LocalBackend sets no ``CUDA_VISIBLE_DEVICES``)."""
    if torch.cuda.is_available():
        return torch.device('cuda:0'), None
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is None and shutil.which('nvidia-smi'):
        reason = 'nvidia-smi is on the PATH'
    elif visible is not None and visible.strip() not in ('', '-1'):
        reason = f'CUDA_VISIBLE_DEVICES={visible}'
    else:
        return torch.device('cpu'), None
    return torch.device('cpu'), (
        f'warning: {reason}, but PyTorch cannot use CUDA '
        f'({cuda_problem()}); training on the CPU instead')


def describe_device(device, args):
    """What the device line of the log says about ``device``."""
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    visible = ('CUDA_VISIBLE_DEVICES unset' if visible is None
               else f'CUDA_VISIBLE_DEVICES={visible}')
    if device.type == 'cpu':
        return f'{torch.get_num_threads()} CPU thread(s); {visible}'
    options = [name for name, on in (('channels-last', args.channels_last),
                                     ('bf16 autocast', args.bf16)) if on]
    return (f'{torch.cuda.get_device_name(device)}; {visible}; '
            + ', '.join(options or ['float32']))


def _checked(kind, test, requirement):
    """An argparse type that converts with ``kind`` and checks ``test``."""
    def convert(text):
        with contextlib.suppress(ValueError):  # not a number at all
            if test(value := kind(text)):
                return value
        raise argparse.ArgumentTypeError(
            f'must be {requirement}, got {text!r}')
    return convert


def make_parser(description):
    """Command-line arguments of both scripts (Syne Tune passes them)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--learning_rate', default=0.1,
                   type=_checked(float, lambda v: 0 < v < float('inf'),
                                 'a number > 0'))
    p.add_argument('--momentum', default=0.9,
                   type=_checked(float, lambda v: 0 <= v < 1,
                                 'a number in [0, 1)'))
    at_least_1 = _checked(int, lambda v: v >= 1, 'an integer >= 1')
    p.add_argument('--batch_size', default=128, type=at_least_1)
    p.add_argument('--max_epochs', default=10, type=at_least_1)
    p.add_argument('--model', default='lenet', choices=sorted(MODELS))
    p.add_argument('--image_size', default=28,
                   type=_checked(int, lambda v: v >= 28, 'an integer >= 28'))
    p.add_argument('--n_train', default=50000,
                   type=_checked(int, lambda v: 1 <= v <= 60000 - NUM_VAL,
                                 'an integer in [1, 50000]'),
                   help='training images used per epoch (to shrink runs)')
    p.add_argument('--seed', default=0, type=int,
                   help='seed for initial weights and minibatch order')
    p.add_argument('--channels_last', action='store_true',
                   help='GPU only: channels-last memory layout')
    p.add_argument('--bf16', action='store_true',
                   help='GPU only: bfloat16 autocast')
    return p


def args_problem(args):
    """What makes parsed ``args`` unusable together, or None: LeNet's
    first dense layer is sized for 28x28 inputs."""
    if args.model == 'lenet' and args.image_size != 28:
        return (f'argument --image_size: must be 28 for --model lenet, got '
                f'{args.image_size}')
    return None


def parse_args(description):
    """Parse known arguments; LocalBackend adds ``--st_checkpoint_dir``."""
    parser = make_parser(description)
    args = parser.parse_known_args()[0]
    if problem := args_problem(args):
        parser.error(problem)
    return args


@torch.no_grad()
def error_rate(model, images, labels, image_size, device):
    """Fraction of misclassified images; non-finite outputs count as
    wrong, so a diverged network gets 1.0. One synchronisation per call."""
    batch_size = VAL_BATCH[device.type]
    model.eval()
    wrong = torch.zeros((), dtype=torch.long, device=device)
    for i in range(0, len(labels), batch_size):
        logits = model(to_input(images[i:i + batch_size], image_size, device))
        y = labels[i:i + batch_size].to(device)
        ok = (logits.argmax(dim=1) == y) & torch.isfinite(logits).all(dim=1)
        wrong += (~ok).sum()
    return int(wrong) / len(labels)


def exit_now():
    """End the process at once: with PyTorch imported, the interpreter's
    teardown takes 0.6 to 1 s (``benchmarks/throughput.py``), in which a
    worker would sit idle. Everything reported is flushed by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def process_start_time():
    """When this process started (seconds since the epoch), from the
    kernel's start tick (10 ms; psutil's can be a second off)."""
    try:
        with open('/proc/self/stat') as f:
            ticks = int(f.read().rsplit(')', 1)[1].split()[19])
    except OSError:  # not Linux
        import psutil  # a dependency of Syne Tune
        return psutil.Process().create_time()
    age = (time.clock_gettime(time.CLOCK_BOOTTIME)
           - ticks / os.sysconf('SC_CLK_TCK'))
    return time.time() - age


STARTUP_TAG = '[start-up]'


def read_startup(text):
    """The start-up breakdown a training script printed in ``text`` (its
    output), as a dict of seconds by phase; None if there is none."""
    for line in text.splitlines():
        if line.startswith(STARTUP_TAG):
            return json.loads(line[len(STARTUP_TAG):])
    return None


def train(args):
    """Train as ``args`` say; yield ``(epoch, metrics)`` after every epoch.

    ``metrics``: ``validation_error``, ``elapsed_time`` (since the process
    started), ``cpu_time``; ``test_error`` after the last epoch, also after
    a non-finite loss, which ends training. Prints the start-up line first.
    Out of GPU memory: memory released, ``SystemExit`` with one line."""
    try:
        yield from _train(args)
    except RuntimeError as e:
        text = str(e)  # PyTorch's allocator, or CUDA and cuBLAS saying so
        if not (isinstance(e, torch.OutOfMemoryError)
                or 'out of memory' in text or 'ALLOC_FAILED' in text):
            raise
        first = (text.strip().splitlines() or ['no details'])[0]
        reason = '. '.join(first.split('. ')[:2])  # no advice, no sizes
    else:
        return
    release_gpu_memory()  # the error and its tensors are gone by now
    raise SystemExit(f'error: out of GPU memory with batch size '
                     f'{args.batch_size} ({reason}); smaller batch sizes '
                     'or fewer trials per GPU (hpo.setups.TRIALS_PER_GPU) '
                     'avoid this')


def release_gpu_memory():
    """Return the GPU memory PyTorch caches for freed tensors."""
    import gc
    gc.collect()
    torch.cuda.empty_cache()  # does nothing if CUDA was never initialised


def _train(args):
    """``train`` without the out-of-memory handling: set up, then train."""
    start = process_start_time()
    entered = time.time()
    device, warning = choose_device()
    if warning:
        print(warning, flush=True)
    torch.manual_seed(args.seed)
    try:
        sets = load_data(args.image_size, args.n_train)
    except DataUnavailableError as e:
        raise SystemExit(f'error: {e}') from None
    if device.type == 'cuda':  # once, as uint8: batches are then cut and
        torch.backends.cudnn.benchmark = True  # resized there; autotune
        sets = [(x.to(device), y.to(device)) for x, y in sets]
    loaded = time.time()
    model = build_model(args.model, args.image_size, device)
    if device.type == 'cuda' and (args.channels_last or args.bf16):
        model = GPUOptions(model, args.channels_last, args.bf16)
    built = time.time()
    # seconds by phase: Python, PyTorch and this module imported, Syne Tune
    # imported (before ``train``), data loaded, model built; CPU seconds
    startup = {'python_and_torch': TORCH_IMPORTED - start,
               'syne_tune': entered - TORCH_IMPORTED,
               'data': loaded - entered, 'model': built - loaded,
               'total': built - start, 'cpu': time.process_time()}
    rounded = {k: round(v, 3) for k, v in startup.items()}
    print(STARTUP_TAG, json.dumps(rounded), flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'model: {args.model} ({n_params:,} parameters), input: 1x'
          f'{args.image_size}x{args.image_size}, device: {device} '
          f'({describe_device(device, args)}), images: '
          f'{len(sets[0][1])} train / {len(sets[1][1])} validation',
          flush=True)
    yield from _epochs(model, args, *sets, device, start)


def _epochs(model, args, train_set, val_set, test_set, device, start):
    """The training loop of ``train``: one ``(epoch, metrics)`` per epoch."""
    optimizer = SGD(model.parameters(), args.learning_rate, args.momentum)
    x_all, y_all = train_set
    for epoch in range(1, args.max_epochs + 1):
        model.train()
        diverged = False
        # drawn on the CPU, so that the order is the same on a GPU
        order = torch.randperm(len(y_all)).to(device)
        for step, i in enumerate(range(0, len(order), args.batch_size)):
            idx = order[i:i + args.batch_size]
            x = to_input(x_all[idx], args.image_size, device)
            loss = F.cross_entropy(model(x), y_all[idx].to(device))
            # checking makes a GPU wait for the result; do it now and then
            if step % 20 == 0 and not torch.isfinite(loss):
                print(f'epoch {epoch}: the loss became non-finite (learning '
                      f'rate {args.learning_rate} is too large); stopping '
                      'training', flush=True)
                diverged = True
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        metrics = {'validation_error': error_rate(model, *val_set,
                                                  args.image_size, device)}
        if diverged or epoch == args.max_epochs:
            metrics['test_error'] = error_rate(model, *test_set,
                                               args.image_size, device)
        metrics['elapsed_time'] = time.time() - start
        metrics['cpu_time'] = time.process_time()
        yield epoch, metrics
        if diverged:
            return
