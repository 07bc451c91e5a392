"""``make bench``: benchmarks that boot real clusters and write JSON under build/bench/.

Every benchmark measures its baseline in the same run (ICS RPC against a plain TCP
ping-pong between the same guests, ...) and records the ratio.
"""
