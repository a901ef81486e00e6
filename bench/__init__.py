"""Shipyard's throughput benchmark: ``python -m bench`` (``make bench``).

Each figure of the platform is printed beside a reference measured in the same run on the
same machine, and as a ratio to it; see bench/README.md for what is measured and how.
"""
