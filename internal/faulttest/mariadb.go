package faulttest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a private MariaDB server: a fresh data directory made by
// mariadb-install-db in a temp directory, TCP on a loopback port (no name
// resolution), its socket in the temp directory, durability off. The
// harness connects as root through the socket; the demo as DemoUser over
// TCP.
type MariaDB struct {
	bin, dir, data, sock string
	port                 int
	version              string

	mu    sync.Mutex
	proc  *process
	admin map[string]*sql.DB
}

// StartMariaDB initialises and starts a private MariaDB. It returns an
// error when the binaries are missing; callers skip then.
func StartMariaDB() (*MariaDB, error) {
	bin := firstExisting([]string{"/usr/sbin/mariadbd", "/usr/sbin/mysqld"}, "mariadbd", "mysqld")
	install := firstExisting([]string{"/usr/bin/mariadb-install-db"}, "mariadb-install-db", "mysql_install_db")
	if bin == "" || install == "" {
		return nil, fmt.Errorf("mariadbd or mariadb-install-db not found (/usr/sbin, /usr/bin, PATH)")
	}
	dir, err := os.MkdirTemp("", "qsessions-faulttest-maria-")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{bin: bin, dir: dir, data: filepath.Join(dir, "data"), sock: filepath.Join(dir, "mysqld.sock"), admin: map[string]*sql.DB{}}
	args := []string{"--no-defaults", "--auth-root-authentication-method=normal", "--datadir=" + m.data, "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(install), err, out)
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		f := strings.Fields(string(out))
		for i, w := range f {
			if w == "Ver" && i+1 < len(f) {
				m.version = strings.SplitN(f[i+1], "-", 2)[0]
			}
		}
	}
	var lastErr error
	for range 5 {
		if m.port, err = freePort(); err != nil {
			break
		}
		if lastErr = m.Start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil || err != nil {
		m.Close()
		return nil, fmt.Errorf("starting MariaDB: %v %v", lastErr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stmt := range []string{
		"DROP USER IF EXISTS ''@'localhost'",
		"CREATE USER '" + DemoUser + "'@'127.0.0.1'",
		"GRANT ALL PRIVILEGES ON *.* TO '" + DemoUser + "'@'127.0.0.1'",
	} {
		if _, err := m.db("").ExecContext(ctx, stmt); err != nil {
			m.Close()
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return m, nil
}

// Kind implements Server.
func (m *MariaDB) Kind() string { return "mysql" }

// Label implements Server.
func (m *MariaDB) Label() string { return "MariaDB " + m.version }

// Addr implements Server.
func (m *MariaDB) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// db returns root's pool on database name ("" for none) through the socket.
func (m *MariaDB) db(name string) *sql.DB {
	m.mu.Lock()
	defer m.mu.Unlock()
	if db, ok := m.admin[name]; ok {
		return db
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "unix", m.sock, name
	cfg.Timeout = 3 * time.Second
	c, _ := mysql.NewConnector(cfg) // the config is valid
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(5 * time.Second)
	m.admin[name] = db
	return db
}

// Start implements Server.
func (m *MariaDB) Start() error {
	m.mu.Lock()
	if m.proc != nil && !m.proc.exited() {
		m.mu.Unlock()
		return nil
	}
	args := []string{"--no-defaults", "--datadir=" + m.data, "--socket=" + m.sock, "--port=" + strconv.Itoa(m.port),
		"--bind-address=127.0.0.1", "--skip-name-resolve", "--pid-file=" + filepath.Join(m.dir, "mysqld.pid"),
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
		"--skip-log-bin", "--max-connections=151", "--log-error=" + filepath.Join(m.dir, "error.log")}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	proc, err := startProcess("mariadbd on "+m.Addr(), exec.Command(m.bin, args...), syscall.SIGKILL)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	m.proc = proc
	m.mu.Unlock()
	if err := waitReady(proc, m.db(""), 30*time.Second); err != nil {
		b, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
		return fmt.Errorf("%v\nerror log:\n%s", err, lastLines(string(b), 20))
	}
	return nil
}

// Stop implements Server: SIGTERM, a normal shutdown.
func (m *MariaDB) Stop() error {
	m.mu.Lock()
	proc := m.proc
	m.mu.Unlock()
	if proc == nil {
		return nil
	}
	return proc.stop(syscall.SIGTERM, 30*time.Second)
}

// CreateDatabase implements Server.
func (m *MariaDB) CreateDatabase(ctx context.Context) (string, error) {
	name := nextDBName()
	_, err := m.db("").ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	return name, err
}

// DemoURL implements Server.
func (m *MariaDB) DemoURL(addr, name string) string {
	return fmt.Sprintf("mysql://%s@%s/%s", DemoUser, addr, name)
}

// DemoConns implements Server.
func (m *MariaDB) DemoConns(ctx context.Context) (int, error) {
	var n int
	err := m.db("").QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", DemoUser).Scan(&n)
	return n, err
}

// LockSessions implements Server: with autocommit off (a transaction, as
// MariaDB documents for InnoDB), LOCK TABLES qsessions_session WRITE;
// release commits and unlocks.
func (m *MariaDB) LockSessions(ctx context.Context, name string) (func() error, error) {
	conn, err := m.db(name).Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, stmt := range []string{"SET autocommit = 0", "LOCK TABLES qsessions_session WRITE"} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return func() error {
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, stmt := range []string{"COMMIT", "UNLOCK TABLES", "SET autocommit = 1"} {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// Close implements Server: it kills the server and removes its directory.
func (m *MariaDB) Close() {
	m.mu.Lock()
	proc := m.proc
	admin := m.admin
	m.admin = map[string]*sql.DB{}
	m.mu.Unlock()
	for _, db := range admin {
		db.Close()
	}
	if proc != nil {
		_ = proc.stop(syscall.SIGKILL, 10*time.Second)
	}
	os.RemoveAll(m.dir)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
