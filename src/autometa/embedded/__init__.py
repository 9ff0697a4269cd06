"""The embedded default: everything in one process on a laptop — a local dev chain (resumed
from the data directory), SQLite, in-process queue and cache."""
