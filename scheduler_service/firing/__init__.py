"""The firing engine: the processing pass, the executors, the worker side, the pool, and the
one run lifecycle that every run's state goes through (see lifecycle.py)."""
