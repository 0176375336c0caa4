"""The chapter's code, one job per module.

* ``setups``: the machine's GPUs and cores, and the experiment's size on it
* ``data``: Fashion-MNIST, prepared once and held in memory
* ``training``: the networks, the arguments and the loop of both scripts
* ``tuner``: the search space and the tuning runs (tuner, log, SIGTERM)
* ``trials``: what happened to each trial of a run (statuses, times)
* ``plots``: every figure of the chapter
* ``sim``: the simulator that replays recorded learning curves
* ``stats``: statistics over runs, real or simulated
* ``asha_rules``: both libraries' ASHA stopping rules, recomputed
* ``ray_tuning``: Ray Tune on a Ray cluster
* ``record_curves``: records the simulator's learning curves
"""
