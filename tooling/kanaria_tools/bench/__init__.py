"""Kanaria's benchmarks (`make bench`, `python -m kanaria_tools.bench`): one module per section of
docs/benchmarks.md (registered in `sections`), the simulators and contenders they read, and `old_rules`, the
array copies of retired rules kept only to reproduce the comparison rows that show them."""
