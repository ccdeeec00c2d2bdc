"""What the stacked curves say: model-wise, sample-wise and epoch-wise double descent, bootstrap, theory."""

from ddjax.analysis.epochwise import EpochwiseReport, epochwise_analysis
from ddjax.analysis.modelwise import (BOOTSTRAP_CONFIDENCE, DEFAULT_MIN_RISE, PEAK_WINDOW, DoubleDescentReport, Point,
                                      analyze, bootstrap_seeds, check_curves, effective_model_complexity, prominence,
                                      seed_mean_and_error)
from ddjax.analysis.verdict import PeakTest, peak_test

__all__ = ["BOOTSTRAP_CONFIDENCE", "DEFAULT_MIN_RISE", "PEAK_WINDOW", "DoubleDescentReport", "EpochwiseReport", "Point",
           "analyze", "bootstrap_seeds", "check_curves", "effective_model_complexity", "epochwise_analysis",
           "PeakTest", "peak_test", "prominence", "seed_mean_and_error"]
