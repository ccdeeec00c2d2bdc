"""The run folder: its files, its life (unfinished, finished), checkpoints, report.json and figures."""
