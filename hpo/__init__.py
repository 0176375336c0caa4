"""The chapter's code, one job per module (see each module's docstring).

setups (the machine and the experiment's size), data, training, tuner (the
search space and a tuning run), trials (what each trial did), plots, sim
(the simulator), stats, asha_rules, ray_cluster (a Ray cluster and its
processes), ray_tuning (Ray Tune runs, compared with Syne Tune) and
record_curves (the simulator's tables).
"""
