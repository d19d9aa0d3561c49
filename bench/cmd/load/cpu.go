package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuSnap is the machine's CPU time and that of the processes taking part
// in a measurement, in clock ticks, from /proc. It tells how much of the
// machine other work took during a sample: on a shared machine that is the
// noise of the figures.
type cpuSnap struct {
	total, busy uint64         // all CPUs, from /proc/stat
	procs       map[int]uint64 // utime+stime of the harness's processes
	postgres    map[int]bool   // which of procs are postgres
}

// cpuSnapshot reads /proc/stat and the CPU time of pids and of every
// postgres process (the database serves the measured server).
func cpuSnapshot(pids []int) cpuSnap {
	s := cpuSnap{procs: map[int]uint64{}, postgres: map[int]bool{}}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is counted in user already
			break
		}
		s.total += n
		// user, nice, system and steal; idle and iowait are free, and irq
		// and softirq (loopback networking, mostly ours) belong to no
		// process, so they are counted as nobody's.
		if i <= 2 || i == 7 {
			s.busy += n
		}
	}
	for _, pid := range pids {
		if t, _, ok := procTicks(pid); ok {
			s.procs[pid] = t
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, comm, ok := procTicks(pid); ok && (comm == "postgres" || comm == "memcached") {
			s.procs[pid] = t
			s.postgres[pid] = comm == "postgres"
		}
	}
	return s
}

// procTicks returns a process's utime+stime and its command name.
func procTicks(pid int) (uint64, string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return 0, "", false
	}
	comm := string(b[open+1 : close])
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 13 {
		return 0, "", false
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, comm, true
}

// otherShare returns the share of the machine (0..1) that was busy with
// processes other than those of both snapshots (the harness, its servers,
// memcached and postgres) between a and b.
func otherShare(a, b cpuSnap) float64 {
	dt := b.total - a.total
	if dt == 0 || b.busy < a.busy {
		return 0
	}
	busy := b.busy - a.busy
	var ours uint64
	for pid, t := range b.procs {
		if t0, ok := a.procs[pid]; ok && t >= t0 {
			ours += t - t0
		}
	}
	if ours >= busy {
		return 0
	}
	return float64(busy-ours) / float64(dt)
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// postgresCPU returns the CPU time the postgres processes alive in both
// snapshots used between a and b (the measured server's connections among
// them; other clients of the same server too).
func postgresCPU(a, b cpuSnap) time.Duration {
	var ticks uint64
	for pid, t := range b.procs {
		if t0, ok := a.procs[pid]; ok && b.postgres[pid] && t >= t0 {
			ticks += t - t0
		}
	}
	return time.Duration(ticks) * clockTick
}
