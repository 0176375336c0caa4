"""Until calibration.py and ray_vs_local.py import benchmarks.common."""
from benchmarks.common import RESULTS, machine, table, write  # noqa: F401
