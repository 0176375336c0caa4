"""The chapter's code, one job per module (see each module's docstring).

setups (the machine and the experiment's size), data, training, tuner (the
search space and a tuning run), trials (what each trial did), plots, sim
(the simulator), stats, asha_rules, ray_cluster (a Ray cluster and its
processes), ray_tuning (Ray Tune runs, compared with Syne Tune) and
record_curves (the simulator's tables).
"""


def show(what):
    """The code that runs, for a cell to display: the source of a
    function, or a file of the repository given by its path from the top
    folder (such as ``'train_script.py'``), so that the book never shows
    a copy. A Markdown code block, which Jupyter highlights and d2lbook
    turns into a code block (printed, ``**`` would be read as markup)."""
    import inspect
    from IPython.display import Markdown
    from hpo.tuner import ROOT
    text = ((ROOT / what).read_text() if isinstance(what, str)
            else inspect.getsource(what))
    return Markdown(f'````python\n{text.rstrip()}\n````')
