// Package bench compares qsessions with other session libraries and with
// the floors a session load cannot beat (a bare point SELECT, a bare
// memcached Get). It is a module of its own so that the libraries it
// compares with never reach qsessions' users. Its benchmarks live in
// bench_test.go; bench/run runs them with the root module's and writes
// BENCHMARKS.md.
package bench
