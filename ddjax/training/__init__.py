"""Training many members as one program: the one engine (`engine.py`), the layouts that plan its programs
(`layouts/`), the runner that runs and checkpoints them, memory planning and the split of the member axis over
devices and hosts."""
