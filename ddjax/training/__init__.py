"""Training many members as one program: the trainer, its optimizers, the packed and grouped layouts of members,
and the split of the member axis over devices."""
