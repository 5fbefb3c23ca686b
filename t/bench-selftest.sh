#!/bin/sh
# t/bench-selftest.sh - catena-bench's workloads are deterministic (same
# seed, same stream), traces round-trip, corrupt traces give clear errors.
# In a cross build the program runs through $CATENA_TEST_EXEC (configure).
exec ${CATENA_TEST_EXEC:-} ./bench/catena-bench selftest
