"""Job functions operators may schedule: public callables in jobs.examples and jobs.ops."""
