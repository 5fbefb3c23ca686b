#!/bin/sh
# t/bench-selftest.sh - catena-bench's workloads are deterministic (same
# seed, same stream), traces round-trip, corrupt traces give clear errors.
exec ./bench/catena-bench selftest
