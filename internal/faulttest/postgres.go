package faulttest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the harness's own connections
)

// PostgresBinDirs are searched for initdb and postgres before PATH; the
// environment variable QSESSIONS_TEST_PGBIN, when set, comes first.
var PostgresBinDirs = []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}

// Postgres is a private PostgreSQL server: a fresh cluster in a temp
// directory (trust authentication, fsync off), TCP on a loopback port, its
// unix socket in the temp directory. PostgreSQL refuses to run as root:
// when the test runs as root, the cluster belongs to and runs as the
// system user "postgres".
type Postgres struct {
	bin, dir, data string
	port           int
	cred           *syscall.Credential
	version        string

	mu    sync.Mutex
	proc  *process
	admin map[string]*sql.DB // database -> pool as the superuser, direct
}

// StartPostgres initialises and starts a private PostgreSQL for the
// harness. It returns an error when the binaries or the "postgres" user
// (when running as root) are missing; callers skip then (see
// testutil.Unavailable).
func StartPostgres() (*Postgres, error) {
	var dirs []string
	if d := os.Getenv("QSESSIONS_TEST_PGBIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, PostgresBinDirs...)
	var candidates []string
	for _, d := range dirs {
		candidates = append(candidates, filepath.Join(d, "initdb"))
	}
	initdb := firstExisting(candidates, "initdb")
	if initdb == "" {
		return nil, fmt.Errorf("no initdb in %s or PATH (set QSESSIONS_TEST_PGBIN)", strings.Join(dirs, ", "))
	}
	bin := filepath.Dir(initdb)
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		return nil, fmt.Errorf("no postgres binary beside %s", initdb)
	}
	p := &Postgres{bin: bin, admin: map[string]*sql.DB{}}
	dir, err := os.MkdirTemp("", "qsessions-faulttest-pg-")
	if err != nil {
		return nil, err
	}
	p.dir, p.data = dir, filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and there is no system user postgres to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	cmd := p.command(initdb, "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if out, err := p.command(filepath.Join(bin, "postgres"), "--version").Output(); err == nil {
		p.version = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "postgres (PostgreSQL)"))
	}
	var lastErr error
	for range 5 {
		if p.port, err = freePort(); err != nil {
			break
		}
		if lastErr = p.Start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil || err != nil {
		p.Close()
		return nil, fmt.Errorf("starting PostgreSQL: %v %v", lastErr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.db("postgres").ExecContext(ctx, "CREATE ROLE "+DemoUser+" LOGIN"); err != nil {
		p.Close()
		return nil, fmt.Errorf("creating the role %s: %w", DemoUser, err)
	}
	return p, nil
}

// command returns a command that runs as the cluster's owner, in its
// directory.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

// Kind implements Server.
func (p *Postgres) Kind() string { return "postgres" }

// Label implements Server.
func (p *Postgres) Label() string { return "PostgreSQL " + p.version }

// Addr implements Server.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// db returns the superuser's pool on database name, direct (no proxy).
func (p *Postgres) db(name string) *sql.DB {
	p.mu.Lock()
	defer p.mu.Unlock()
	if db, ok := p.admin[name]; ok {
		return db
	}
	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&connect_timeout=3&application_name=faulttest", p.Addr(), name)
	db, _ := sql.Open("pgx", dsn) // errors come at use
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(5 * time.Second)
	p.admin[name] = db
	return db
}

// Start implements Server.
func (p *Postgres) Start() error {
	p.mu.Lock()
	if p.proc != nil && !p.proc.exited() {
		p.mu.Unlock()
		return nil
	}
	cmd := p.command(filepath.Join(p.bin, "postgres"), "-D", p.data, "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=100", "-c", "shared_buffers=32MB",
		"-c", "log_min_messages=fatal", "-c", "logging_collector=off")
	// SIGQUIT (immediate shutdown) if the test binary dies.
	proc, err := startProcess("postgres on "+p.Addr(), cmd, syscall.SIGQUIT)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.proc = proc
	p.mu.Unlock()
	return waitReady(proc, p.db("postgres"), 15*time.Second)
}

// Stop implements Server: a fast shutdown (SIGINT), as pg_ctl -m fast.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	proc := p.proc
	p.mu.Unlock()
	if proc == nil {
		return nil
	}
	return proc.stop(syscall.SIGINT, 15*time.Second)
}

// CreateDatabase implements Server.
func (p *Postgres) CreateDatabase(ctx context.Context) (string, error) {
	name := nextDBName()
	_, err := p.db("postgres").ExecContext(ctx, "CREATE DATABASE "+name+" OWNER "+DemoUser)
	return name, err
}

// DemoURL implements Server.
func (p *Postgres) DemoURL(addr, name string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", DemoUser, addr, name)
}

// DemoConns implements Server.
func (p *Postgres) DemoConns(ctx context.Context) (int, error) {
	var n int
	err := p.db("postgres").QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", DemoUser).Scan(&n)
	return n, err
}

// LockSessions implements Server: LOCK TABLE qsessions_session IN ACCESS
// EXCLUSIVE MODE in a transaction, rolled back by release.
func (p *Postgres) LockSessions(ctx context.Context, name string) (func() error, error) {
	tx, err := p.db(name).BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "LOCK TABLE qsessions_session IN ACCESS EXCLUSIVE MODE"); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return tx.Rollback, nil
}

// Close implements Server: it stops the server at once and removes its
// directory.
func (p *Postgres) Close() {
	p.mu.Lock()
	proc := p.proc
	admin := p.admin
	p.admin = map[string]*sql.DB{}
	p.mu.Unlock()
	for _, db := range admin {
		db.Close()
	}
	if proc != nil {
		_ = proc.stop(syscall.SIGQUIT, 10*time.Second)
	}
	os.RemoveAll(p.dir)
}
