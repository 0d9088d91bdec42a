"""Where a run executes: the host's devices and how training splits them."""
