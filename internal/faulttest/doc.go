// Package faulttest holds the database fault test of issue 19: the demo
// (cmd/qsessions-demo, built and run as a process with its default
// settings, as a user runs it) on a private PostgreSQL or MariaDB server
// behind a TCP proxy of its own, with a private memcached, while 20 clients
// read, revoke, sign in and out, and the database is restarted, stopped,
// locked or silenced.
//
//	go test ./internal/faulttest -run TestFaults -faults -v              # CI lengths, ~3-4 min
//	go test ./internal/faulttest -run TestFaults -faults -faults.long -v -timeout 40m   # the issue's
//	go test ./internal/faulttest -run 'TestFaults/postgres/silent' -faults -faults.silent=35s -v
//
// Without -faults, TestFaults skips; the proxy and log-parser tests always
// run. The servers are private (initdb / mariadb-install-db in temp
// directories, free loopback ports) so that stopping them disturbs no one;
// when their binaries are missing the test skips, or fails when
// QSESSIONS_TEST_REQUIRE names postgres or mysql.
//
// Each run prints a table of issue 19's figures: requests, 5xx, requests
// of live sessions answered as signed out, revoked cookies accepted, live
// sessions lost after the recovery, the worst latency, the most database
// connections the demo held (exact, at the proxy, and sampled on the
// server for its user), and the demo's ERROR and WARN lines by class.
// It always asserts what holds today (recovery, nothing lost, nothing
// revoked accepted); -faults.strict also asserts the targets (see
// Result.Violations), given -faults.deadline and -faults.pool.
package faulttest
