"""The mm scenarios: the workload drivers of the mm model (the full machine and the miniature
one the race tools search exhaustively)."""
