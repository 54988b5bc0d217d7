"""Cluster mode: the same scan on a Dask cluster, over paths on shared storage and object stores.

    vigil scan --cluster local:N|tcp://HOST:PORT [--checkpoint DIR] PATH_OR_URL...

The client lists the roots in parallel on the workers (an object-store prefix by its first-level
prefixes, a directory tree by its subtrees), cuts what was listed into shards of thousands of
files (by count and bytes), and keeps a bounded number of shards in flight. Each worker holds the
compiled matcher once (a Dask worker plugin copies the build into the worker's local directory
and memory-maps it) and reads shards in its own process, each file under a watchdog; a shard whose
worker died on it (a hang, a crashed decoder) is read again in a scanning process of its own, as a
local scan reads, and the file is reported with its reason. Results come back shard by shard into the local
scan's sink; with a checkpoint each finished shard is written by a deterministic name and
committed by rename, so an interrupted scan resumes where it stopped and a shard redone after a
lost worker reports nothing twice.
"""

from vigil.cluster.run import ClusterScan, connect

__all__ = ["ClusterScan", "connect"]
