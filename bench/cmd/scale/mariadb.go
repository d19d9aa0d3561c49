package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// privateMariaDB is a MariaDB server of the scale tool's own (the approach
// of internal/faulttest's: mariadb-install-db into a temp directory,
// mariadbd on a free loopback port), so that the buffer pool can be sized
// without touching the shared server. Unlike faulttest's it keeps
// MariaDB's defaults, durability included (innodb_flush_log_at_trx_commit
// 1, the doublewrite buffer, O_DIRECT, no change buffering: the settings
// of the shared Debian server), and changes only
// innodb_buffer_pool_size, so that its figures compare with the shared
// server's and with each other.
type privateMariaDB struct {
	dir, sock string
	port      int
	pool      string
	logSize   string
	version   string
	cmd       *exec.Cmd
	done      chan struct{}
	out       bytes.Buffer
}

// startMariaDB starts a private mariadbd with innodb_buffer_pool_size pool
// (mariadbd's syntax: 128M, 2G) and, unless logSize is "", that
// innodb_log_file_size.
func startMariaDB(pool, logSize string) (*privateMariaDB, error) {
	bin := lookFirst("/usr/sbin/mariadbd", "mariadbd", "/usr/sbin/mysqld", "mysqld")
	install := lookFirst("/usr/bin/mariadb-install-db", "mariadb-install-db", "mysql_install_db")
	if bin == "" || install == "" {
		return nil, fmt.Errorf("mariadbd or mariadb-install-db not found (/usr/sbin, /usr/bin, PATH)")
	}
	dir, err := os.MkdirTemp("", "qsessions-scale-maria-")
	if err != nil {
		return nil, err
	}
	m := &privateMariaDB{dir: dir, sock: filepath.Join(dir, "mysqld.sock"), pool: pool, done: make(chan struct{})}
	data := filepath.Join(dir, "data")
	args := []string{"--no-defaults", "--auth-root-authentication-method=normal", "--datadir=" + data, "--skip-test-db"}
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	sargs := []string{"--no-defaults", "--datadir=" + data, "--socket=" + m.sock, "--port=" + strconv.Itoa(m.port),
		"--bind-address=127.0.0.1", "--skip-name-resolve", "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--innodb-buffer-pool-size=" + pool, "--skip-log-bin", "--log-error=" + filepath.Join(dir, "error.log")}
	if logSize != "" {
		sargs = append(sargs, "--innodb-log-file-size="+logSize)
		m.logSize = logSize
	}
	if os.Geteuid() == 0 {
		sargs = append(sargs, "--user=root")
	}
	m.cmd = exec.Command(bin, sargs...)
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	m.cmd.Stdout, m.cmd.Stderr = &m.out, &m.out
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting mariadbd: %w", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	db, err := m.admin()
	if err != nil {
		m.Close()
		return nil, err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-m.done:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			m.Close()
			return nil, fmt.Errorf("mariadbd exited at start: %s %s", m.out.String(), b)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			m.Close()
			return nil, fmt.Errorf("mariadbd did not answer within a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The tool connects over TCP as root, like the shared server's URL.
	for _, stmt := range []string{
		"DROP USER IF EXISTS ''@'localhost'",
		"CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'",
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1'",
	} {
		if _, err := db.ExecContext(context.Background(), stmt); err != nil {
			m.Close()
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return m, nil
}

// admin opens root's pool through the socket.
func (m *privateMariaDB) admin() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", m.sock
	cfg.Timeout = 3 * time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// URL is the server's URL for dburl (root over TCP, no database).
func (m *privateMariaDB) URL() string {
	return fmt.Sprintf("mysql://root@127.0.0.1:%d/", m.port)
}

// Label names the server for the report.
func (m *privateMariaDB) Label() string {
	if m.logSize != "" {
		return fmt.Sprintf("MariaDB %s (private, innodb_buffer_pool_size %s, innodb_log_file_size %s)", m.version, m.pool, m.logSize)
	}
	return fmt.Sprintf("MariaDB %s (private, innodb_buffer_pool_size %s)", m.version, m.pool)
}

// Close kills the server and removes its data directory.
func (m *privateMariaDB) Close() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
		}
	}
	os.RemoveAll(m.dir)
}

// lookFirst returns the first of names that exists (a path) or is found
// in PATH (a name), or "".
func lookFirst(names ...string) string {
	for _, n := range names {
		if strings.Contains(n, "/") {
			if st, err := os.Stat(n); err == nil && !st.IsDir() {
				return n
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}
