"""Ray Tune for the chapter: a cluster, the trainable, and ASHA on record.

Syne Tune 0.16 runs trials on one machine. This module lets the section
:numref:`sec_hpo_ray` run the same tuning problem with Ray Tune on a Ray
cluster: a real one (``RAY_ADDRESS``) or one made of several real Ray
nodes on this machine. It holds

* ``RayCluster``: connects to ``RAY_ADDRESS`` or starts a head node and
  worker nodes here (each its own raylet with its own CPUs), and makes
  sure nothing it started outlives it;
* ``train_fn``: a Ray Tune function trainable that drives
  ``hpo.training.train``, the training both Syne Tune scripts run;
* ``RecordingASHA``: Ray Tune's ``ASHAScheduler`` unchanged, but writing
  each decision and each trial's start and end to a file, so that the
  decisions can be checked against ``asha_rules``, an independent
  recomputation of Ray's rule (and of Syne Tune's);
* ``trial_table``: one row per trial (node, times, epochs, errors, how it
  ended, start-up overhead), with the same columns as
  ``hpo.trials.trial_table`` for Syne Tune, so both can be compared.
"""
import contextlib
import io
import json
import logging
import os
import re
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from ray.tune.schedulers import ASHAScheduler

import hpo.asha_rules
from hpo.training import STARTUP_TAG, make_parser, release_gpu_memory, train

# Set for every process a RayCluster starts (they inherit it), so that
# cleanup finds them even after they were re-parented to init
TAG_VARIABLE = 'HPO_RAY_TAG'
# Offline and quiet: no usage statistics
QUIET_ENV = {'RAY_USAGE_STATS_ENABLED': '0', 'RAY_AIR_NEW_OUTPUT': '0'}
# For the nodes started here. A raylet waits this long for its agents to
# start; the default (15 s) is too short on a loaded machine, where they
# take long to import. Ray runs worker processes 15 steps nicer than the
# raylet by default; trials then get almost no CPU next to other load,
# and LocalBackend's trials run at normal priority, so we do the same.
START_ENV = {'RAY_raylet_start_wait_time_s': '120',
             'RAY_worker_niceness': '0'}
OBJECT_STORE_BYTES = 100 * 2 ** 20  # trials pass no large objects

# Ray's INFO lines name the cluster's network address, and Ray Tune's the
# absolute paths where it wrote results; the section prints what a reader
# needs itself. RayCluster.start sets these loggers to WARNING, shutdown
# puts their levels back.
QUIET_LOGGERS = ('ray', 'ray.tune', 'ray.train')


class NoClusterError(ConnectionError):
    """``RAY_ADDRESS`` names a cluster that does not answer."""


def _check_address(address, timeout=5.0):
    """Fail fast and clearly if no Ray cluster answers at ``address``."""
    if address == 'auto':
        return  # ray.init finds a cluster started on this machine
    host, _, port = address.rpartition(':')
    host = host.replace('ray://', '') or '127.0.0.1'
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise NoClusterError(
            f'RAY_ADDRESS={address!r}, but no Ray cluster answers there '
            f'({e}). Start one with `ray start --head` on the head machine '
            'and `ray start --address=HEAD_IP:6379` on the others, or '
            'unset RAY_ADDRESS to start a cluster on this machine.') \
            from None


def _has_tag(process, tag):
    """Whether ``process`` was started with ``TAG_VARIABLE=tag``.

    Reads ``/proc/PID/environ`` itself: Ray's processes rename themselves
    (``ray::DashboardAgent``) by writing over the start of that memory,
    and psutil's ``environ()`` then returns nothing.
    """
    entry = f'{TAG_VARIABLE}={tag}'.encode()
    try:
        with open(f'/proc/{process.pid}/environ', 'rb') as f:
            return entry in f.read().split(b'\0')
    except FileNotFoundError:
        if os.path.isdir('/proc'):
            return False  # gone
        return process.environ().get(TAG_VARIABLE) == tag  # not Linux


def tagged_processes(tag):
    """Processes of this user whose environment carries ``tag``."""
    import psutil
    found = []
    for p in psutil.process_iter(['pid']):
        try:
            if p.pid != os.getpid() and _has_tag(p, tag):
                found.append(p)
        except (psutil.Error, OSError):
            pass  # gone meanwhile, or another user's process
    return found


def kill_tagged(tag, timeout=5.0):
    """Kill every process with ``tag``; return how many were alive.

    A ``SIGTERM`` first; what is still there after ``timeout`` seconds
    gets ``SIGKILL`` (Ray's per-node agents ignore ``SIGTERM`` once their
    raylet is gone).
    """
    import psutil
    procs = tagged_processes(tag)
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    return len(procs)


class _gpus_for_node:
    """Start the raylet of a local node with its own GPUs (a tuple of
    ``nvidia-smi`` indices, as ``hpo.setups.detect_hardware`` lists them).

    Nodes on one machine would otherwise all see every GPU and number
    them from 0, so that their trials would share the first ones. A
    raylet uses the GPUs in ``CUDA_VISIBLE_DEVICES`` when it starts.
    """

    def __init__(self, gpus):
        self.gpus = gpus

    def __enter__(self):
        self.saved = os.environ.get('CUDA_VISIBLE_DEVICES')
        if self.gpus:
            os.environ['CUDA_VISIBLE_DEVICES'] = ','.join(map(str, self.gpus))

    def __exit__(self, *exc):
        if self.saved is None:
            os.environ.pop('CUDA_VISIBLE_DEVICES', None)
        else:
            os.environ['CUDA_VISIBLE_DEVICES'] = self.saved


class RayCluster:
    """A Ray cluster to tune on: the one at ``RAY_ADDRESS``, or a new one.

    Without ``RAY_ADDRESS``, ``start`` starts ``n_nodes`` Ray nodes on
    this machine (a head node and ``n_nodes - 1`` worker nodes, each a
    raylet of its own with ``cpus_per_node`` CPUs; the GPUs in ``gpus``
    are split evenly among the nodes) and connects to them. ``shutdown``
    (also on leaving a ``with`` block, on an exception such as
    ``KeyboardInterrupt``, and when the interpreter exits) disconnects
    and stops every process it started.
    """

    def __init__(self, n_nodes=2, cpus_per_node=1, gpus=(), address=None):
        if len(gpus) % n_nodes:
            raise ValueError(f'{len(gpus)} GPU(s) cannot be split evenly '
                             f'among {n_nodes} nodes')
        self.n_nodes, self.cpus_per_node = n_nodes, cpus_per_node
        per_node = len(gpus) // n_nodes
        self.node_gpus = [tuple(gpus[i * per_node:(i + 1) * per_node])
                          for i in range(n_nodes)]
        self.address = address or os.environ.get('RAY_ADDRESS') or None
        self.tag = f'hpo-ray-{uuid.uuid4().hex[:12]}'
        self.local = None  # ray.cluster_utils.Cluster when started here
        self.started_here = False
        self.startup_seconds = None
        self.log_levels = None  # the quietened loggers' levels before

    @classmethod
    def for_setup(cls, setup, address=None):
        """The nodes for ``setup`` (``hpo.setups.choose_setup``).

        Without GPUs, one node per worker with the CPU threads of one
        trial. With GPUs, one node per GPU with the threads of the trials
        that share it: a Ray node offers whole GPUs only, so on one GPU
        both trials run on one node, each asking for half of the GPU.
        """
        per_node = setup.trials_per_gpu or 1
        return cls(n_nodes=setup.n_workers // per_node,
                   cpus_per_node=setup.threads_per_trial * per_node,
                   gpus=setup.gpus, address=address)

    def trial_env(self):
        """What every trial process needs: the data and its threads (the
        code is the ``hpo`` package, installed on every node)."""
        from hpo.data import data_dir
        return {'HPO_DATA_DIR': str(data_dir()),
                'OMP_NUM_THREADS': str(self.cpus_per_node), **QUIET_ENV}

    def _quiet(self):
        """Ray's and Ray Tune's loggers to WARNING, until ``shutdown``."""
        if self.log_levels is None:
            self.log_levels = {name: logging.getLogger(name).level
                               for name in QUIET_LOGGERS}
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)

    def _init(self, address):
        """Connect this process, the driver, to the cluster."""
        import ray
        ray.init(address=address, log_to_driver=False,
                 logging_level=logging.WARNING,
                 runtime_env={'env_vars': self.trial_env()})

    def start(self):
        os.environ.update(QUIET_ENV)
        if self.address:
            _check_address(self.address)
        self._quiet()
        started = time.time()
        if self.address:
            self._init(self.address)
        else:
            self._start_nodes()
        self.startup_seconds = time.time() - started
        return self

    def _start_nodes(self):
        """Start the nodes here, then connect to them."""
        import atexit
        from ray.cluster_utils import Cluster
        atexit.register(self.shutdown)
        self.started_here = True
        node = dict(num_cpus=self.cpus_per_node,
                    num_gpus=len(self.node_gpus[0]),
                    object_store_memory=OBJECT_STORE_BYTES)
        # the nodes inherit the tag (and their workers from them)
        added = dict(START_ENV, **{TAG_VARIABLE: self.tag})
        saved = {k: os.environ.get(k) for k in added}
        os.environ.update(added)
        try:
            with _gpus_for_node(self.node_gpus[0]):
                self.local = Cluster(
                    initialize_head=True,
                    head_node_args=dict(node, include_dashboard=False))
            for i in range(1, self.n_nodes):
                with _gpus_for_node(self.node_gpus[i]):
                    self.local.add_node(**node)
            self.local.wait_for_nodes()
            self._init(self.local.address)
        except BaseException:
            self.shutdown()
            raise
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def nodes(self):
        """The cluster's live nodes: a short name, id, CPUs and GPUs (not
        their network addresses, which a book should not print)."""
        import ray
        alive = [n for n in ray.nodes() if n['Alive']]
        head = [n for n in alive
                if 'node:__internal_head__' in n['Resources']]
        others = sorted((n for n in alive if n not in head),
                        key=lambda n: n['NodeID'])
        rows = []
        for i, n in enumerate(head + others):
            name = 'head' if n in head else f'worker {i + 1 - len(head)}'
            rows.append(dict(node=name, node_id=n['NodeID'][:8],
                             CPUs=n['Resources'].get('CPU', 0),
                             GPUs=n['Resources'].get('GPU', 0)))
        return pd.DataFrame(rows).set_index('node')

    def shutdown(self):
        """Disconnect; stop and kill everything this object started."""
        import ray
        if ray.is_initialized():
            ray.shutdown()
        if self.local is not None:
            try:
                self.local.shutdown()
            finally:
                self.local = None
        if self.started_here:
            kill_tagged(self.tag)
        for name, level in (self.log_levels or {}).items():
            logging.getLogger(name).setLevel(level)
        self.log_levels = None

    def leftovers(self):
        """Processes this cluster started that are still running."""
        return tagged_processes(self.tag)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()


def ray_search_space(space):
    """Syne Tune's search space (``hpo.tuner.search_space``) in Ray Tune.

    The same distributions; Syne Tune's ``randint`` includes its upper
    bound, Ray Tune's does not. Constants (the set-up's fixed arguments)
    stay constants.
    """
    from ray import tune
    from syne_tune.config_space import Float, Integer
    converted = {}
    for name, domain in space.items():
        if isinstance(domain, Float):
            log = type(domain.get_sampler()).__name__ == '_LogUniform'
            make = tune.loguniform if log else tune.uniform
            converted[name] = make(domain.lower, domain.upper)
        elif isinstance(domain, Integer):
            converted[name] = tune.randint(domain.lower, domain.upper + 1)
        else:
            converted[name] = domain
    return converted


def draw_configurations(space, n, seed):
    """``n`` different configurations of ``space``, drawn with ``seed``.

    Drawn once, with a generator of their own (not NumPy's global one),
    so that both libraries can be given the same list: Syne Tune's
    schedulers as ``points_to_evaluate``, Ray Tune's
    ``BasicVariantGenerator`` likewise. Constants stay constants; a
    configuration drawn a second time is left out.
    """
    from syne_tune.config_space import Domain
    rng = np.random.RandomState(seed)
    configs, seen = [], set()
    while len(configs) < n:
        config = {k: d.sample(random_state=rng) if isinstance(d, Domain)
                  else d for k, d in space.items()}
        key = tuple(sorted(config.items()))
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs


def configurations_run(trials, configs):
    """How many trials of ``trials`` ran, each the configuration of
    ``configs`` at its position (trials in the order they were created,
    that is, by trial id); an error if any ran another one. A trial cut
    off before it reported has no configuration on record; only its
    position is checked."""
    def number(trial_id):  # Ray Tune's ids end in a counter: 'ab12c_00007'
        return int(str(trial_id).rsplit('_', 1)[-1])

    def same(row, config):
        if any(k not in row or pd.isna(row[k]) for k in config):
            return True  # nothing on record to compare
        return all(np.isclose(row[k], v, rtol=1e-12) if isinstance(v, float)
                   else row[k] == v for k, v in config.items())

    ordered = sorted(trials.index, key=number)
    for position, trial_id in enumerate(ordered):
        row, config = trials.loc[trial_id], configs[number(trial_id)]
        if number(trial_id) != position or not same(row, config):
            raise ValueError(f'trial {trial_id} did not run the '
                             f'configuration at position {position}')
    return len(ordered)


def trial_args(config):
    """The training arguments of a trial, checked as on the command line."""
    parser = make_parser('a Ray Tune trial')
    parser.prog = 'train_fn'
    known = {a.dest for a in parser._actions}
    argv = [f'--{k}={v}' for k, v in config.items() if k in known]
    message = io.StringIO()
    try:
        with contextlib.redirect_stderr(message):
            return parser.parse_args(argv)
    except SystemExit:  # argparse said why on stderr
        raise ValueError(message.getvalue().strip().splitlines()[-1]) \
            from None


class StartupCatcher(io.TextIOBase):
    """Passes output on to ``stream``; keeps the start-up line of ``train``.

    ``train`` prints how long each phase of its start-up took, as one line
    that starts with ``STARTUP_TAG``; ``startup`` holds it as a dict.
    """

    def __init__(self, stream):
        self.stream, self.line, self.startup = stream, '', None

    def write(self, text):
        self.line += text
        while '\n' in self.line:
            line, self.line = self.line.split('\n', 1)
            if line.startswith(STARTUP_TAG):
                self.startup = json.loads(line[len(STARTUP_TAG):])
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def train_fn(config):
    """One Ray Tune trial: train as ``config`` says, report every epoch.

    The training is ``hpo.training.train``, as in the Syne Tune scripts.
    Each report adds ``epoch``, the node, process and GPUs that run the
    trial, and, to measure the start-up overhead, when this function was
    entered and how long ``train`` took to load the data and build the
    model (from the start-up line it prints).
    """
    import ray
    import torch
    from ray import tune
    fn_entered = time.time()
    threads = ray.get_runtime_context().get_assigned_resources().get('CPU')
    torch.set_num_threads(max(1, int(threads or 1)))
    node = ray.get_runtime_context().get_node_id()
    out = StartupCatcher(sys.stdout)
    try:
        with contextlib.redirect_stdout(out):
            for epoch, metrics in train(trial_args(config)):
                tune.report(dict(
                    metrics, epoch=epoch, node_id=node, pid=os.getpid(),
                    fn_entered=fn_entered,
                    gpus=os.environ.get('CUDA_VISIBLE_DEVICES'),
                    startup_data=out.startup['data'],
                    startup_model=out.startup['model'],
                    report_time=time.time()))
    finally:  # however the trial ended: a reused process starts the
        release_gpu_memory()  # next one without this one's GPU memory


class _Recorder:
    """Appends one JSON line per event to ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __call__(self, **event):
        event['time'] = time.time()
        with open(self.path, 'a') as f:
            f.write(json.dumps(event) + '\n')


class RecordingASHA(ASHAScheduler):
    """Ray Tune's ``ASHAScheduler``, writing down what it does.

    Decisions are Ray's own (every method calls the original one); this
    subclass only appends to the JSON-lines file ``events_path``: when a
    trial was first chosen to run (``chosen``, with its configuration:
    a trial cut off before its first report has no other record of it),
    every result with Ray's
    decision (``result``), and when a trial completed or was stopped
    (``complete``), failed (``error``) or was removed (``remove``).
    """

    def __init__(self, events_path, **kwargs):
        super().__init__(**kwargs)
        self.record = _Recorder(events_path)
        self.chosen = set()

    def choose_trial_to_run(self, tune_controller):
        # asked again and again while a chosen trial waits for resources;
        # the first time is when the tuner started to work on the trial
        trial = super().choose_trial_to_run(tune_controller)
        if trial is not None and trial.trial_id not in self.chosen:
            self.chosen.add(trial.trial_id)
            self.record(event='chosen', trial_id=trial.trial_id,
                        config=trial.config)
        return trial

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        self.record(event='result', trial_id=trial.trial_id,
                    epoch=result.get(self._time_attr),
                    value=result.get(self._metric), decision=decision)
        return decision

    def on_trial_complete(self, tune_controller, trial, result):
        self.record(event='complete', trial_id=trial.trial_id)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial):
        self.record(event='error', trial_id=trial.trial_id)
        super().on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial):
        self.record(event='remove', trial_id=trial.trial_id)
        super().on_trial_remove(tune_controller, trial)


def read_events(path):
    with open(path) as f:
        return pd.DataFrame([json.loads(line) for line in f])


def log_tail(trial_dir, n_lines=5):
    """The last lines of a trial's stderr, or else of Ray's error file.

    Ray Tune writes a failed trial's traceback to ``error.txt`` in the
    trial's directory; its ``stdout`` and ``stderr`` (``log_to_file``)
    stay on the node that ran it, unless that is this machine.
    """
    for name in ('stderr', 'error.txt'):
        path = Path(trial_dir) / name
        if path.exists() and path.read_text().strip():
            lines = path.read_text().strip().splitlines()
            return path, '\n'.join(lines[-n_lines:])
    return None, ''


TRIAL_ID = re.compile(r'_([0-9a-f]{5}_\d{5})_')


def trial_table(result_grid, events_path, nodes=None, t0=None):
    """One row per Ray Tune trial, like ``hpo.trials.trial_table``.

    Times are seconds since ``t0`` (default: the first trial's start).
    ``start``: the scheduler chose the trial to run; ``end``: the
    scheduler heard that it completed, was stopped, failed or was
    removed (for a trial cut off by the time budget without such news,
    the scheduler's last event). ``overhead``: from ``start`` to the
    first training step (``fn_entered`` plus the data and model phases
    the trial reported). ``node`` names the node that ran it (see
    ``RayCluster.nodes``); ``status`` as in ``hpo.trials.trial_table``.
    """
    events = read_events(events_path)
    first = events.groupby('trial_id')['time']
    chosen = events[events.event == 'chosen'].groupby('trial_id')['time']
    t0 = t0 if t0 is not None else chosen.min().min()
    ended = events[events.event.isin(['complete', 'error', 'remove'])]
    ended = ended.groupby('trial_id')['time'].min()
    results = events[events.event == 'result']
    configs = {}
    if 'config' in events:
        configs = {row.trial_id: row.config for row in
                   events[events.event == 'chosen'].itertuples()
                   if isinstance(row.config, dict)}
    names = {}
    if nodes is not None:
        names = {row.node_id: name for name, row in nodes.iterrows()}
    rows = []
    for result in result_grid:
        df = result.metrics_dataframe
        # the trial's directory is named TRAINABLE_TRIALID_..., where
        # Ray's trial ids look like 'bb8f1_00000'
        trial_id = TRIAL_ID.search(Path(result.path).name).group(1)
        if trial_id not in set(events['trial_id']):
            continue  # never started (the time was up)
        row = dict(trial_id=trial_id, node=None, pid=None, epochs=0,
                   validation_error=np.nan, test_error=np.nan,
                   best_error=np.nan, overhead=np.nan,
                   path=result.path, error=result.error)
        # Ray has no config for a trial cut off before it reported
        row.update(result.config or configs.get(trial_id) or {})
        start = chosen.min().get(trial_id, first.min().get(trial_id))
        if df is not None and len(df):
            # a reused actor can enter the function before the scheduler
            # logs its choice; a trial has started by then at the latest
            start = min(start, df.iloc[0]['fn_entered'])
            _add_reports(row, df, names, start)
        row['start'] = start - t0
        decisions = results[results.trial_id == trial_id]
        status = _status(row, result.error,
                         (decisions['decision'] == 'STOP').any())
        end = ended.get(trial_id)
        if end is None and status == 'cut off':
            end = events['time'].max()  # running when the time was up
        elif end is None:
            end = (df['report_time'].iloc[-1] if df is not None and len(df)
                   else start)
        row.update(status=status, end=end - t0)
        rows.append(row)
    table = pd.DataFrame(rows).set_index('trial_id')
    return table.sort_values('start')


def _add_reports(row, df, names, start):
    """Fill ``row`` from a trial's reports (``df``, oldest first)."""
    last = df.iloc[-1]
    row.update(node=names.get(last['node_id'][:8], last['node_id'][:8]),
               pid=int(last['pid']), epochs=int(last['epoch']),
               validation_error=last['validation_error'],
               test_error=last.get('test_error', np.nan),
               best_error=df['validation_error'].min())
    first = df.iloc[0]
    built = (first['fn_entered'] + first['startup_data']
             + first['startup_model'])
    row['overhead'] = built - start


def _status(row, error, stopped):
    """How a trial ended, with the names of ``hpo.trials.trial_table``."""
    if error is not None:
        return 'failed'
    if row['epochs'] >= row.get('max_epochs', np.inf):
        return 'completed'
    if stopped:
        return 'stopped'
    if pd.notna(row['test_error']):
        return 'diverged'  # it ended early, with its test error
    return 'cut off'


def failed_trials(trials, n_lines=5):
    """Print every failed trial, where its log is, and its last lines."""
    failed = trials[trials['status'] == 'failed']
    if not len(failed):
        print('no trial failed')
    for trial_id, row in failed.iterrows():
        path, tail = log_tail(row['path'], n_lines)
        print(f'trial {trial_id} failed; its log is {path}:')
        print('\n'.join('    ' + line for line in tail.splitlines()))
    return failed


def storage_dir():
    """Where Ray Tune writes results: ``$HPO_RAY_RESULTS``, else beside
    Syne Tune's experiments (``$SYNETUNE_FOLDER`` or ``~/syne-tune``), in
    ``ray_results/``; not beside the notebook, inside a built book."""
    from syne_tune.util import experiment_path
    default = experiment_path() / 'ray_results'
    return str(Path(os.environ.get('HPO_RAY_RESULTS', default)).resolve())


def decision_check(events_path, max_t, grace_period, eta):
    """Ray's recorded decisions next to both rules' recomputations.

    Returns Ray's reports in the order its scheduler saw them, with Ray's
    ``decision``, the decisions of both rules on the same reports (columns
    ``'Ray Tune'`` and ``'Syne Tune'``, from ``hpo.asha_rules.both_rules``),
    and ``agrees``: Ray's decision is its rule's (a tie agrees with
    either decision).
    """
    from hpo.sim import rung_levels_formula
    events = read_events(events_path)
    results = events[events.event == 'result'].reset_index(drop=True)
    levels = rung_levels_formula(grace_period, eta, max_t)
    table = hpo.asha_rules.both_rules(
        results.rename(columns={'value': 'error'}), levels, max_t, eta)
    table['decision'] = results['decision']
    table['agrees'] = ((table['decision'] == table['Ray Tune'])
                       | (table['Ray Tune'] == 'TIE'))
    return table


def local_overheads(exp, trials):
    """Seconds from LocalBackend starting a trial to its first step.

    The start is ``trials['start']`` (LocalBackend wrote the trial's
    ``config.json`` just before starting its process); the first step is
    the process start (its first report's time stamp minus its
    ``elapsed_time``) plus the start-up the trial printed (``total``:
    Python, PyTorch, Syne Tune, data, model). NaN for a trial that
    reported nothing.
    """
    df = exp.results
    t0 = exp.metadata['st_tuner_start_timestamp']
    overheads = {}
    for trial_id, row in trials.iterrows():
        reports = df[df.trial_id == trial_id]
        out = Path(exp.path) / str(trial_id) / 'std.out'
        startup = _startup_line(out)
        if not len(reports) or startup is None:
            overheads[trial_id] = np.nan
            continue
        first = reports.iloc[0]
        process_start = (first['st_worker_timestamp'] - t0
                         - first['elapsed_time'])
        overheads[trial_id] = process_start + startup['total'] - row['start']
    return pd.Series(overheads, name='overhead')


def _startup_line(path):
    if not Path(path).exists():
        return None
    for line in Path(path).read_text().splitlines():
        if line.startswith(STARTUP_TAG):
            return json.loads(line[len(STARTUP_TAG):])
    return None


def summarize(trials, n_workers, levels, processes=None):
    """The numbers the section compares, for one tuning run's trials."""
    import hpo.plots
    import hpo.trials
    done = trials[trials['status'] == 'completed']
    best = (done.sort_values('validation_error').iloc[0] if len(done)
            else None)
    stopped = trials[trials['status'] == 'stopped']
    counts = trials['status'].value_counts()
    # one row per status (stopped and completed always), so that the
    # table stays narrow enough for a page
    by_status = {f'  {status}': int(counts.get(status, 0))
                 for status in hpo.plots.STATUS_COLORS
                 if status in counts or status in ('stopped', 'completed')}
    return pd.Series({
        'trials started': len(trials),
        **by_status,
        'epochs trained': int(trials['epochs'].sum()),
        'stopped at epochs': sorted({int(e) for e in stopped['epochs']}),
        'stops only at rungs': set(stopped['epochs']) <= set(levels),
        'best validation error': (np.nan if best is None
                                  else round(best['validation_error'], 4)),
        'its test error': (np.nan if best is None
                           else round(best['test_error'], 4)),
        'busy fraction': round(hpo.trials.busy_fraction(
            trials, n_workers, trials['end'].max()), 3),
        'overhead per trial, median (s)': round(
            trials['overhead'].median(), 2),
        'overhead per trial, max (s)': round(trials['overhead'].max(), 2),
        'worker processes': (len(trials) if processes is None
                             else processes),
    })


def side_by_side(runs, n_workers, levels):
    """``summarize`` for each run of ``{name: (trials, processes)}``."""
    return pd.DataFrame({name: summarize(trials, n_workers, levels, procs)
                         for name, (trials, procs) in runs.items()})


def compare_sentence(side):
    """The comparison of two runs of ``side_by_side``, in words."""
    (a, ra), (b, rb) = list(side.items())
    return (f'In the same time, {a} started {ra["trials started"]} trials '
            f'that trained {ra["epochs trained"]} epochs in '
            f'{ra["worker processes"]} worker processes, and {b} '
            f'{rb["trials started"]} trials with {rb["epochs trained"]} '
            f'epochs in {rb["worker processes"]} processes. The median '
            'time from starting a trial to its first training step was '
            f'{ra["overhead per trial, median (s)"]:.2f} s with {a} and '
            f'{rb["overhead per trial, median (s)"]:.2f} s with {b}.')


def time_stamp():
    return time.strftime('%Y%m%d-%H%M%S')


class _ToyTrial:
    """Just what the schedulers' bracket bookkeeping reads of a trial."""

    def __init__(self, trial_id):
        self.trial_id = trial_id


def toy_decisions(errors, reduction_factor):
    """Syne Tune's and Ray Tune's ASHA on results at one rung (epoch 1).

    Each error is one new trial's first report; both schedulers are the
    libraries' own, with ``max_t=8`` and ``grace_period=1``. The last
    columns are both rules of ``asha_rules`` on the same results.
    """
    from datetime import datetime

    from hpo.sim import rung_levels_formula
    from ray.tune.experiment import Trial as RayTrial
    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import uniform
    from syne_tune.optimizer.baselines import ASHA
    config = {'x': 0.5, 'max_epochs': 8}
    st = ASHA({'x': uniform(0, 1), 'max_epochs': 8}, metric='error',
              time_attr='epoch', max_t=8, grace_period=1,
              reduction_factor=reduction_factor, do_minimize=True,
              random_seed=0)
    ray = ASHAScheduler(time_attr='epoch', metric='error', mode='min',
                        max_t=8, grace_period=1,
                        reduction_factor=reduction_factor)
    rows = []
    for i, error in enumerate(errors):
        result = {'epoch': 1, 'error': error}
        trial = Trial(i, config=config, creation_time=datetime.now())
        st.on_trial_add(trial)
        st_decision = st.on_trial_result(trial, result)
        ray_trial = RayTrial('toy', trial_id=str(i), config=config,
                             stub=True)
        ray.on_trial_add(None, ray_trial)
        rows.append({'error': error, 'Syne Tune': str(st_decision),
                     'Ray Tune': ray.on_trial_result(None, ray_trial,
                                                     result)})
    table = pd.DataFrame(rows)
    recomputed = hpo.asha_rules.both_rules(
        table.assign(trial_id=table.index, epoch=1),
        rung_levels_formula(1, reduction_factor, 8), 8, reduction_factor)
    return table.join(recomputed[list(hpo.asha_rules.RULES)].add_suffix(
        ', recomputed'))


def compare_structure(max_t, reduction_factor, brackets, n_trials=3000):
    """Rungs, bracket shares, and a report past a rung, in both libraries.

    Both schedulers are built with ``brackets`` brackets, ``grace_period``
    1; ``n_trials`` toy trials are assigned to brackets (NumPy's global
    generator seeded with 0, which both libraries draw from). Returns a
    table with one row per bracket (each library's rungs and share of the
    trials, and e^-s normalized) and, per library, the rungs at which a
    trial's first report, at epoch 5, is recorded in a one-bracket
    scheduler.
    """
    from syne_tune.config_space import uniform
    from syne_tune.optimizer.baselines import ASHA

    def syne(b):
        return ASHA({'x': uniform(0, 1), 'max_epochs': max_t},
                    metric='error', time_attr='epoch', max_t=max_t,
                    grace_period=1, reduction_factor=reduction_factor,
                    brackets=b, do_minimize=True, random_seed=0)

    def ray(b):
        return ASHAScheduler(time_attr='epoch', metric='error', mode='min',
                             max_t=max_t, grace_period=1,
                             reduction_factor=reduction_factor, brackets=b)

    libraries = {
        'Syne Tune': (syne, lambda s: s.brackets, lambda b: b.rungs,
                      lambda s: s.trial_info,
                      lambda s, t: s.on_trial_add(t)),
        'Ray Tune': (ray, lambda s: s._brackets, lambda b: b._rungs,
                     lambda s: s._trial_info,
                     lambda s, t: s.on_trial_add(None, t))}
    weights = np.exp(-np.arange(brackets)) / np.exp(
        -np.arange(brackets)).sum()
    table = pd.DataFrame(index=pd.RangeIndex(brackets, name='bracket'))
    late = {}
    for name, (make, brackets_of, rungs_of, info, add) in libraries.items():
        scheduler = make(brackets)
        rungs = [sorted(int(r) for r, _ in rungs_of(b))
                 for b in brackets_of(scheduler)]
        np.random.seed(0)
        for i in range(n_trials):
            add(scheduler, _ToyTrial(i))
        index = {id(b): k for k, b in enumerate(brackets_of(scheduler))}
        counts = np.bincount([index[id(b)] for b in info(scheduler).values()],
                             minlength=len(rungs))
        one = make(1)
        trial = _ToyTrial(0)
        add(one, trial)
        if name == 'Syne Tune':
            one.brackets[0].on_result(trial_id=0, cur_iter=5,
                                      metrics={'error': 0.5})
        else:
            one._brackets[0].on_result(trial, 5, -0.5)
        recorded_at = [int(r) for r, rec in rungs_of(brackets_of(one)[0])
                       if trial.trial_id in rec]
        table[name, 'rungs'] = [' '.join(map(str, r)) for r in rungs]
        table[name, 'share'] = np.round(counts / n_trials, 3)
        late[name] = recorded_at
    table['e^-s', 'normalized'] = np.round(weights, 3)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table, late
