// Package loadtest holds the load-and-fault test of qsessions: a server
// with cached_db on Postgres and three memcached processes under concurrent
// simulated users, while one memcached is killed and restarted and the
// pool's Postgres connections are cut. Run it with
//
//	go test ./internal/loadtest -run TestLoadWithFaults -load=2m -v
//
// Without -load it skips; .ci/run runs it for a bounded time.
package loadtest
