"""The names of a run folder's files, in one place.

A run folder holds `CONFIG_FILE` from the start, `CHECKPOINT_FILE` while it trains, and `CURVES_FILE`, the
figures and finally `REPORT_FILE` once it is finished (`ddjax.runs.folder` tells these states apart).
"""

CONFIG_FILE = "config.json"  # Written first: experiment name, resolved config, versions and devices.
CHECKPOINT_FILE = "checkpoint.npz"  # The training state at the last chunk boundary; removed when the run ends.
CURVES_FILE = "curves.npz"  # Member coordinates and stacked [member, eval_step] curves.
REPORT_FILE = "report.json"  # Written last: its presence marks the run as finished.
CURVES_FIGURE = "curves"  # curves.png, and curves-i.png for slice i > 0 of the other axes.
EPOCHWISE_FIGURE = "epochwise"  # epochwise.png (-i.png), for runs with at least 3 evaluation steps.
REGULARIZATION_FIGURE = "regularization"  # regularization.png (-i.png), for runs that sweep a strength axis.

OUTPUT_FILES = (CONFIG_FILE, CURVES_FILE, REPORT_FILE, f"{CURVES_FIGURE}.png")  # What every finished run holds.


def figure_file(figure: str, index: int = 0) -> str:
    """The file name of figure `figure` (`CURVES_FIGURE`, `EPOCHWISE_FIGURE`, ...) for slice `index`."""
    return f"{figure}{'' if index == 0 else f'-{index}'}.png"
