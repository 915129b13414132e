"""Benchmarks of cflib against peer libraries: ``python -m benchmarks.run`` (``make bench``)."""
