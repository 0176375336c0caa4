"""Fashion-MNIST as ``uint8`` tensors in memory, prepared once from the
prepared file, Debian's ``dataset-fashion-mnist`` or torchvision; a
fixed split of the training images into 50,000 and 10,000 (validation)."""
import fcntl
import gzip
import os
import sys
from pathlib import Path

import numpy as np
import torch

DATA_FILE = 'fashion_mnist.pt'
SYSTEM_DIR = '/usr/share/datasets/fashion-mnist'
RAW_FILES = {'train_x': 'train-images-idx3-ubyte.gz',
             'train_y': 'train-labels-idx1-ubyte.gz',
             'test_x': 't10k-images-idx3-ubyte.gz',
             'test_y': 't10k-labels-idx1-ubyte.gz'}
NUM_VAL = 10000          # images held out of the 60,000 for validation
SPLIT_SEED = 0           # fixes which images are held out, once and for all
# what a complete prepared file holds: key -> shape (all uint8)
PREPARED_SHAPES = {'train_x': (60000, 28, 28), 'train_y': (60000,),
                   'test_x': (10000, 28, 28), 'test_y': (10000,)}


class DataUnavailableError(RuntimeError):
    """No source of Fashion-MNIST could be used."""


class CorruptDataError(DataUnavailableError):
    """The prepared data file cannot be read or holds something else."""


def data_dir():
    """Where prepared data lives: ``$HPO_DATA_DIR`` or ``data/`` here."""
    default = Path(__file__).resolve().parents[1] / 'data'
    return Path(os.environ.get('HPO_DATA_DIR', default))


def _read_idx(path):
    """Read one gzipped IDX file (the format Fashion-MNIST ships in)."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]  # then one big-endian uint32 per dimension, then data
    shape = np.frombuffer(raw, dtype='>u4', count=ndim, offset=4)
    array = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return torch.from_numpy(array.reshape(shape).copy())


def _from_torchvision(root):
    import torchvision  # imported late: slow, and only needed here
    tensors = {}
    for train, prefix in ((True, 'train'), (False, 'test')):
        ds = torchvision.datasets.FashionMNIST(root, train, download=True)
        tensors[prefix + '_x'] = ds.data.clone()
        tensors[prefix + '_y'] = ds.targets.to(torch.uint8)
    return tensors


def _read_prepared(path):
    """Load the prepared file; raise ``CorruptDataError`` if it is bad."""
    try:
        data = torch.load(path)
    except Exception as e:  # torch raises many kinds for damaged files
        reason = str(e).strip().split('. ')[0]  # the first sentence
        raise CorruptDataError(f'{path} cannot be read '
                               f'({type(e).__name__}: {reason})') from None
    shapes = ({k: tuple(v.shape) for k, v in data.items()
               if isinstance(v, torch.Tensor) and v.dtype == torch.uint8}
              if isinstance(data, dict) else {})
    if shapes != PREPARED_SHAPES:
        raise CorruptDataError(f'{path} does not hold the prepared '
                               'Fashion-MNIST tensors')
    return data


def prepare_data(verbose=True, replace_corrupt=False):
    """The prepared data file's path, made if needed; safe from many
    processes (a file lock, an atomic rename). ``replace_corrupt``: prepare
    a file that cannot be read again, unless another process repaired it."""
    directory = data_dir()
    target = directory / DATA_FILE
    if target.exists() and not replace_corrupt:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / '.prepare.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        reasons = [f'prepared data {target}: not found']
        if target.exists():
            if not replace_corrupt:  # another process finished it
                return target
            try:
                _read_prepared(target)
                return target  # repaired by another process meanwhile
            except CorruptDataError as e:
                reasons = [str(e)]
        _prepare_from_sources(directory, target, reasons, verbose)
    return target


def _prepare_from_sources(directory, target, reasons, verbose):
    """Write ``target`` from the first source that works (lock held)."""
    system_dir = Path(os.environ.get('FASHION_MNIST_SYSTEM_DIR', SYSTEM_DIR))
    if all((system_dir / n).exists() for n in RAW_FILES.values()):
        tensors = {key: _read_idx(system_dir / name)
                   for key, name in RAW_FILES.items()}
        source = str(system_dir)
    else:
        reasons.append(f'Debian package files in {system_dir}: not found')
        try:
            tensors = _from_torchvision(directory / 'torchvision')
            source = 'torchvision download'
        except Exception as e:  # no network, proxy, server error, ...
            reasons.append(f'torchvision download: failed ({e})')
            raise DataUnavailableError(
                'Fashion-MNIST is not available. Tried:\n  - '
                + '\n  - '.join(reasons) + '\nFix: install the Debian '
                'package with `sudo apt-get install dataset-fashion-mnist` '
                '(it works offline once installed), or connect to the '
                'internet so that torchvision can download the data set.'
            ) from None
    tmp = directory / f'.{DATA_FILE}.{os.getpid()}.tmp'
    torch.save(tensors, tmp)
    os.replace(tmp, target)
    if verbose:
        print(f'Prepared Fashion-MNIST from {source} in {target}')


def load_data(image_size=28, n_train=None):
    """``(train, val, test)`` as ``(images, labels)``, images ``uint8`` of
    shape ``(n, 1, 28, 28)``; ``n_train``: the first training images only.
    A file that cannot be read is prepared again, with one line on stderr."""
    path = prepare_data(verbose=False)
    try:
        data = _read_prepared(path)
    except CorruptDataError as e:
        print(f'warning: {e}; preparing it again', file=sys.stderr, flush=True)
        prepare_data(verbose=False, replace_corrupt=True)
        try:
            data = _read_prepared(path)
        except CorruptDataError as again:
            raise CorruptDataError(
                f'{again}, even after preparing it again; check the disk '
                f'(space, permissions), delete {path} and try again'
            ) from None
    perm = torch.randperm(60000,
                          generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = perm[:NUM_VAL], perm[NUM_VAL:][:n_train]
    x, y = data['train_x'].unsqueeze(1), data['train_y'].long()
    test = data['test_x'].unsqueeze(1), data['test_y'].long()
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), test
