"""A Ray cluster to tune on: the one at ``RAY_ADDRESS``, or Ray nodes
started on this machine, each a raylet of its own; nothing it started
outlives it."""
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from unittest import mock

import pandas as pd

# Set for every process a RayCluster starts (they inherit it), so that
# cleanup finds them even after they were re-parented to init
TAG_VARIABLE = 'HPO_RAY_TAG'
QUIET_ENV = {'RAY_USAGE_STATS_ENABLED': '0', 'RAY_AIR_NEW_OUTPUT': '0'}
# For the nodes started here: a raylet's agents take longer than the
# default 15 s to start on a loaded machine, and trials must run at normal
# priority, as LocalBackend's (Ray's workers run 15 steps nicer)
START_ENV = {'RAY_raylet_start_wait_time_s': '120',
             'RAY_worker_niceness': '0'}
OBJECT_STORE_BYTES = 100 * 2 ** 20  # trials pass no large objects
# At WARNING from start to shutdown: their INFO lines name network
# addresses and absolute paths
QUIET_LOGGERS = ('ray', 'ray.tune', 'ray.train')


class NoClusterError(ConnectionError):
    """``RAY_ADDRESS`` names a cluster that does not answer."""


def _check_address(address, timeout=5.0):
    """Fail fast and clearly if no Ray cluster answers at ``address``."""
    if address == 'auto':
        return  # ray.init finds a cluster started on this machine
    host, _, port = address.replace('ray://', '').rpartition(':')
    try:
        socket.create_connection((host or '127.0.0.1', int(port)),
                                 timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise NoClusterError(
            f'RAY_ADDRESS={address!r}, but no Ray cluster answers there '
            f'({e}). Start one with `ray start --head` on the head machine '
            'and `ray start --address=HEAD_IP:6379` on the others, or '
            'unset RAY_ADDRESS to start a cluster on this machine.') \
            from None


def tagged_processes(tag):
    """Processes of this user started with ``TAG_VARIABLE=tag``, from
    ``/proc``: Ray's processes write over their environment to rename
    themselves, and psutil's ``environ()`` then finds nothing."""
    import psutil
    entry = f'{TAG_VARIABLE}={tag}'.encode()
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(OSError):  # gone, or another user's
            with open(f'/proc/{p.pid}/environ', 'rb') as f:
                if p.pid != os.getpid() and entry in f.read().split(b'\0'):
                    found.append(p)
    return found


def kill_tagged(tag, timeout=5.0):
    """``SIGTERM`` every process with ``tag``, ``SIGKILL`` what is left
    after ``timeout`` seconds (Ray's agents ignore ``SIGTERM`` once their
    raylet is gone)."""
    import psutil
    alive = tagged_processes(tag)
    for sent in (signal.SIGTERM, signal.SIGKILL):
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sent)
        _, alive = psutil.wait_procs(alive, timeout=timeout)


class RayCluster:
    """The cluster at ``address`` (default ``$RAY_ADDRESS``), or else
    ``n_nodes`` Ray nodes started here, each with ``cpus_per_node`` CPUs
    and an even share of ``gpus`` (``hpo.setups``' indices). ``shutdown``,
    also on leaving a ``with`` block, on an error and at exit, disconnects
    and stops every process it started."""

    def __init__(self, n_nodes=2, cpus_per_node=1, gpus=(), address=None):
        if len(gpus) % n_nodes:
            raise ValueError(f'{len(gpus)} GPU(s) cannot be split evenly '
                             f'among {n_nodes} nodes')
        self.n_nodes, self.cpus_per_node = n_nodes, cpus_per_node
        self.gpus_per_node = k = len(gpus) // n_nodes
        # a raylet takes the GPUs in CUDA_VISIBLE_DEVICES, else all of
        # them: the nodes here would share the first ones
        shares = [gpus[i * k:(i + 1) * k] for i in range(n_nodes)]
        self.node_env = [{'CUDA_VISIBLE_DEVICES': ','.join(map(str, s))}
                         if s else {} for s in shares]
        self.address = address or os.environ.get('RAY_ADDRESS') or None
        self.tag = f'hpo-ray-{uuid.uuid4().hex[:12]}'
        self.local = None  # ray.cluster_utils.Cluster when started here
        self.startup_seconds = None
        self.log_levels = {}  # the quietened loggers' levels before

    @classmethod
    def for_setup(cls, setup):
        """The nodes for ``setup``: one per worker, or, with GPUs, one per
        GPU with the trials that share it (Ray nodes offer whole GPUs)."""
        per_node = setup.trials_per_gpu or 1
        return cls(n_nodes=setup.n_workers // per_node,
                   cpus_per_node=setup.threads_per_trial * per_node,
                   gpus=setup.gpus)

    def start(self):
        """Start the nodes here unless there is an address, then connect
        this process, the driver; trials get the data and their threads
        (the code is the installed ``hpo`` package)."""
        import ray
        from hpo.data import data_dir
        os.environ.update(QUIET_ENV)
        if self.address:
            _check_address(self.address)
        for name in QUIET_LOGGERS:
            self.log_levels.setdefault(name, logging.getLogger(name).level)
            logging.getLogger(name).setLevel(logging.WARNING)
        started = time.time()
        env = {'HPO_DATA_DIR': str(data_dir()),
               'OMP_NUM_THREADS': str(self.cpus_per_node), **QUIET_ENV}
        try:
            ray.init(address=self.address or self._start_nodes(),
                     log_to_driver=False, logging_level=logging.WARNING,
                     runtime_env={'env_vars': env})
        except BaseException:  # stop what was started, restore the logs
            self.shutdown()
            raise
        self.startup_seconds = time.time() - started
        return self

    def _start_nodes(self):
        """Start the nodes here; return the head's address."""
        import atexit
        from ray.cluster_utils import Cluster
        atexit.register(self.shutdown)
        node = dict(num_cpus=self.cpus_per_node, num_gpus=self.gpus_per_node,
                    object_store_memory=OBJECT_STORE_BYTES,
                    include_dashboard=False)  # read by the head only
        # the nodes inherit the tag, and their workers from them
        tagged = dict(START_ENV, **{TAG_VARIABLE: self.tag})
        self.local = Cluster()
        for env in self.node_env:  # the first node added is the head
            with mock.patch.dict(os.environ, tagged, **env):
                self.local.add_node(**node)
        self.local.wait_for_nodes()
        return self.local.address

    def nodes(self):
        """The live nodes, head first: a short name, id, CPUs and GPUs
        (not their network addresses, which a book should not print)."""
        import ray
        alive = [n for n in ray.nodes() if n['Alive']]
        alive.sort(key=lambda n: ('node:__internal_head__'
                                  not in n['Resources'], n['NodeID']))
        rows = [dict(node=f'worker {i}' if i else 'head',
                     node_id=n['NodeID'][:8],
                     CPUs=n['Resources'].get('CPU', 0),
                     GPUs=n['Resources'].get('GPU', 0))
                for i, n in enumerate(alive)]
        return pd.DataFrame(rows).set_index('node')

    def shutdown(self):
        """Disconnect; stop and kill everything this object started."""
        import ray
        if ray.is_initialized():
            ray.shutdown()
        local, self.local = self.local, None
        try:
            if local is not None:
                local.shutdown()
        finally:
            if not self.address:
                kill_tagged(self.tag)
            for name, level in self.log_levels.items():
                logging.getLogger(name).setLevel(level)
            self.log_levels = {}

    def leftovers(self):
        """Processes this cluster started that are still running."""
        return tagged_processes(self.tag)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()
