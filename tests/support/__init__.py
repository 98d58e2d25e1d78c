"""What the tests share, one module per purpose (see tests/README.md)."""
