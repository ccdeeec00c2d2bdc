"""The block-packed layout for MLPs of any depth: `layout` plans width buckets on the host; `model` is the device side
(logits of every member of a stream, trained by `ddjax.training.streams`)."""
