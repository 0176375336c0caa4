"""What both training scripts share: data, models, arguments, training.

The two scripts ``train_script.py`` and ``train_script_report_eachepoch.py``
differ only in *when* they report to Syne Tune. Everything else lives here:

* the data (``hpo.data``), resized batch by batch on the device;
* two d2l-style CNNs: AlexNet for GPUs and a LeNet-style network for CPUs;
* argument parsing with checks that name the offending argument;
* a training loop (minibatch SGD with momentum) that yields the validation
  error after every epoch;
* on a GPU only: the data kept on the GPU (as ``uint8``, about 55 MB for
  all of Fashion-MNIST) and resized there batch by batch, cuDNN autotuning,
  larger validation batches, and two options that are off unless asked for
  (``--channels_last``, ``--bf16``) because they have not been measured
  yet (``benchmarks/gpu.py`` compares them). On the CPU none of this
  applies and the loop is the one the recorded learning curves come from.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

from hpo.data import NUM_VAL, DataUnavailableError, load_data

# When this module (and with it PyTorch) finished importing; the training
# scripts import it before Syne Tune, see startup_breakdown
TORCH_IMPORTED = time.time()


# Images per validation batch. On a GPU, validation needs the most memory
# of a trial: AlexNet's first convolution and its ReLU each give 96 x 54 x
# 54 floats per 224x224 image, about 1.1 GB for 500 images (arithmetic,
# not measured), so that two trials fit on a GPU of 8 GB. The CPU keeps
# 1,000, as when its learning curves were recorded.
VAL_BATCH = {'cpu': 1000, 'cuda': 500}


def to_input(images, image_size, device):
    """Scale a batch of ``uint8`` images to floats and resize on device."""
    x = images.to(device, non_blocking=True).float().div_(255)
    if image_size != x.shape[-1]:
        x = F.interpolate(x, size=image_size, mode='bilinear',
                          align_corners=False)
    return x


def init_weights(module):
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


class LeNet(nn.Module):
    """LeNet-5 layout with ReLU and max-pooling, for 28x28 inputs on CPUs."""
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.net(x)


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky et al., 2012) for one-channel images.

    Five convolutions and three dense layers with dropout; designed for
    224x224 inputs. The first dense layer is lazy so that other input sizes
    also work.
    """
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
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

    def forward(self, x):
        return self.net(x)


MODELS = {'lenet': LeNet, 'alexnet': AlexNet}


class SGD:
    """Minibatch SGD with momentum: ``v = momentum * v + grad``, then
    ``w = w - lr * v``, as ``torch.optim.SGD`` computes it.

    Why not ``torch.optim.SGD``? Using any ``torch.optim`` optimizer
    imports TorchDynamo, which adds about 1.5 s to the start of every trial
    on the chapter's CPU machines; for a trial that ASHA stops after one
    epoch, that is a fifth of its cost.
    """
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
    model.apply(init_weights)
    return model


class GPUOptions(nn.Module):
    """A model run in channels-last layout and/or bfloat16 autocast.

    Both can make convolutions faster on recent GPUs; whether they do for
    this model, and whether the validation error stays the same, is what
    ``benchmarks/gpu.py`` measures, so both are off by default. The logits
    come back as ``float32`` so that the loss is computed as without them.
    """
    def __init__(self, model, channels_last=False, bf16=False):
        super().__init__()
        self.model, self.channels_last, self.bf16 = model, channels_last, bf16
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def forward(self, x):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast('cuda', dtype=torch.bfloat16,
                            enabled=self.bf16):
            return self.model(x).float()


def gpu_options(args):
    """The GPU-only options ``args`` ask for, as words (for the log)."""
    return [name for name, on in (('channels-last', args.channels_last),
                                  ('bf16 autocast', args.bf16)) if on]


def cuda_problem():
    """Why PyTorch cannot use CUDA in this process, or None if it can."""
    if torch.cuda.is_available():
        return None
    try:
        torch.cuda.init()
    except Exception as e:  # no driver, a CPU-only build of PyTorch, ...
        lines = str(e).strip().splitlines()
        return lines[0] if lines else type(e).__name__
    return 'torch.cuda.is_available() is False'


def given_gpu():
    """Was this process meant to have a GPU? Returns a reason or None.

    Syne Tune's ``LocalBackend`` sets ``CUDA_VISIBLE_DEVICES`` when it
    rotates trials over several GPUs; with a single GPU it sets nothing,
    and then ``nvidia-smi`` on the ``PATH`` (how Syne Tune finds GPUs) is
    the sign. An empty value or ``-1`` hides all GPUs on purpose.
    """
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is not None:
        if visible.strip() in ('', '-1'):
            return None
        return f'CUDA_VISIBLE_DEVICES={visible}'
    if shutil.which('nvidia-smi'):
        return 'nvidia-smi is on the PATH'
    return None


def choose_device():
    """``cuda:0`` if PyTorch can use a GPU, else the CPU.

    Returns ``(device, warning)``; ``warning`` is one line saying that
    this process was given a GPU that PyTorch cannot use, or None.
    """
    if torch.cuda.is_available():
        return torch.device('cuda:0'), None
    reason = given_gpu()
    warning = None
    if reason:
        warning = (f'warning: {reason}, but PyTorch cannot use CUDA '
                   f'({cuda_problem()}); training on the CPU instead')
    return torch.device('cpu'), warning


def describe_device(device, args):
    """What the device line of the log says about ``device``."""
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    visible = ('CUDA_VISIBLE_DEVICES unset' if visible is None
               else f'CUDA_VISIBLE_DEVICES={visible}')
    if device.type == 'cpu':
        return f'{torch.get_num_threads()} CPU thread(s); {visible}'
    options = gpu_options(args) or ['float32']
    return (f'{torch.cuda.get_device_name(device)}; {visible}; '
            + ', '.join(options))


def _checked(kind, test, requirement):
    """An argparse type that converts with ``kind`` and checks ``test``."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'must be {requirement}, got {text!r}') from None
        if not test(value):
            raise argparse.ArgumentTypeError(
                f'must be {requirement}, got {text!r}')
        return value
    return convert


def make_parser(description):
    """Command-line arguments of both scripts (Syne Tune passes them)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--learning_rate', default=0.1,
                   type=_checked(float, lambda v: 0 < v < math.inf,
                                 'a number > 0'))
    p.add_argument('--momentum', default=0.9,
                   type=_checked(float, lambda v: 0 <= v < 1,
                                 'a number in [0, 1)'))
    p.add_argument('--batch_size', default=128,
                   type=_checked(int, lambda v: v >= 1, 'an integer >= 1'))
    p.add_argument('--max_epochs', default=10,
                   type=_checked(int, lambda v: v >= 1, 'an integer >= 1'))
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


def parse_args(description):
    """Parse known arguments; LocalBackend adds ``--st_checkpoint_dir``."""
    args, _ = make_parser(description).parse_known_args()
    return args


@torch.no_grad()
def error_rate(model, images, labels, image_size, device, batch_size=None):
    """Fraction of misclassified images; non-finite outputs count as wrong.

    A diverged network (NaN weights) therefore gets error 1.0, which is the
    truth about it, instead of whatever ``argmax`` makes of NaNs. The count
    stays on the device until the end: one synchronisation per call.
    ``batch_size`` defaults to ``VAL_BATCH`` of the device's type.
    """
    device = torch.device(device)
    batch_size = batch_size or VAL_BATCH.get(device.type, 1000)
    model.eval()
    wrong = torch.zeros((), dtype=torch.long, device=device)
    for i in range(0, len(labels), batch_size):
        logits = model(to_input(images[i:i + batch_size], image_size, device))
        y = labels[i:i + batch_size].to(device)
        ok = (logits.argmax(dim=1) == y) & torch.isfinite(logits).all(dim=1)
        wrong += (~ok).sum()
    return int(wrong) / len(labels)


def exit_now():
    """End the process at once, skipping the interpreter's teardown.

    A process that has imported PyTorch takes 0.6 to 1 s to shut down on
    the chapter's CPU machines (measured by ``benchmarks/throughput.py``),
    time in which a tuning worker would sit idle. Everything a trial
    reports has been written and flushed by then.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def process_start_time():
    """When this process started (seconds since the epoch).

    On Linux from the kernel's start tick (10 ms resolution);
    ``psutil.Process().create_time()`` adds the boot time, which the
    kernel gives in whole seconds, and can be up to a second off.
    """
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


def startup_breakdown(started, entered, loaded, built):
    """Seconds of a trial's start-up, by phase, from four time stamps.

    ``started``: the process started; ``TORCH_IMPORTED``: this module,
    and PyTorch with it, was imported (the scripts import it first);
    ``entered``: ``train`` was called, after the script imported Syne
    Tune; ``loaded``: the data is in memory; ``built``: the model is ready.
    ``cpu``: CPU seconds the process used up to now.
    """
    return {'python_and_torch': TORCH_IMPORTED - started,
            'syne_tune': entered - TORCH_IMPORTED,
            'data': loaded - entered, 'model': built - loaded,
            'total': built - started, 'cpu': time.process_time()}


def train(args):
    """Train as ``args`` say; after every epoch yield ``(epoch, metrics)``.

    ``epoch`` counts from 1. ``metrics`` holds ``validation_error``,
    ``elapsed_time`` (seconds since the process started, start-up
    included) and ``cpu_time`` (CPU seconds this process used so far,
    which other load on the machine does not inflate); after the last
    epoch also ``test_error``. If the loss becomes non-finite, training
    stops: that epoch is the last one yielded, with the error the broken
    network really has. Before training, prints one line with the
    start-up breakdown (``STARTUP_TAG`` and JSON).

    If the GPU runs out of memory, the trial fails: the memory PyTorch
    caches is released at once, and ``SystemExit`` ends the trial with one
    line saying why.
    """
    try:
        yield from _train(args)
    except RuntimeError as e:
        if not out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or ['no details'])[0]
        reason = '. '.join(first.split('. ')[:2])  # no advice, no sizes
    else:
        return
    release_gpu_memory()  # the error and its tensors are gone by now
    raise SystemExit(f'error: out of GPU memory with batch size '
                     f'{args.batch_size} ({reason}); {OUT_OF_MEMORY_HINT}')


OUT_OF_MEMORY_HINT = ('smaller batch sizes or fewer trials per GPU '
                      '(hpo.setups.TRIALS_PER_GPU) avoid this')


def out_of_memory(error):
    """Is ``error`` the GPU running out of memory? PyTorch's allocator
    raises ``torch.OutOfMemoryError``; CUDA itself (creating a context)
    and cuBLAS (its workspace) raise plain errors that say so."""
    text = str(error)
    return (isinstance(error, torch.OutOfMemoryError)
            or 'out of memory' in text or 'ALLOC_FAILED' in text)


def release_gpu_memory():
    """Return the GPU memory PyTorch caches for freed tensors."""
    import gc
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
    if device.type == 'cuda' and gpu_options(args):
        model = GPUOptions(model, args.channels_last, args.bf16)
    startup = startup_breakdown(start, entered, loaded, time.time())
    print(STARTUP_TAG, json.dumps({k: round(v, 3)
                                   for k, v in startup.items()}),
          flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'model: {args.model} ({n_params:,} parameters), input: 1x'
          f'{args.image_size}x{args.image_size}, device: {device} '
          f'({describe_device(device, args)}), images: '
          f'{len(sets[0][1])} train / {len(sets[1][1])} validation',
          flush=True)
    yield from _epochs(model, args, *sets, device, start)


def _epochs(model, args, train_set, val_set, test_set, device, start):
    """The training loop of ``train``: one ``(epoch, metrics)`` per epoch."""
    on_gpu = device.type == 'cuda'
    optimizer = SGD(model.parameters(), args.learning_rate, args.momentum)
    x_all, y_all = train_set
    for epoch in range(1, args.max_epochs + 1):
        model.train()
        diverged = False
        order = torch.randperm(len(y_all))  # on the CPU: same on both
        if on_gpu:
            order = order.to(device)
        for step, i in enumerate(range(0, len(order), args.batch_size)):
            idx = order[i:i + args.batch_size]
            x = to_input(x_all[idx], args.image_size, device)
            loss = F.cross_entropy(model(x), y_all[idx].to(device))
            # checking makes a GPU wait for the result; do it now and then
            if step % 20 == 0 and not torch.isfinite(loss):
                diverged = True
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        metrics = {'validation_error': error_rate(model, *val_set,
                                                  args.image_size, device)}
        last = diverged or epoch == args.max_epochs
        if last:
            metrics['test_error'] = error_rate(model, *test_set,
                                               args.image_size, device)
        metrics['elapsed_time'] = time.time() - start
        metrics['cpu_time'] = time.process_time()
        if diverged:
            print(f'epoch {epoch}: the loss became non-finite (learning '
                  f'rate {args.learning_rate} is too large); stopping '
                  'training', flush=True)
        yield epoch, metrics
        if diverged:
            return
