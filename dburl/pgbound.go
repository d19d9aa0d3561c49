package dburl

import (
	"context"
	"database/sql/driver"
	"net"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// A pgx connection whose statement was interrupted (its context ended)
// is closed asynchronously: pgx sends a cancel request and a Terminate
// and keeps the socket for up to 15 s, draining the server's answer.
// database/sql forgets the connection at once and may open a new one, so
// against a database that stopped answering the sockets held could reach
// twice max_open_conns and more. boundPostgres makes max_open_conns a
// bound on sockets, not only on pooled connections: a new connection
// waits (within its context and connect_timeout) until an old socket has
// really closed. Cancel requests, short-lived side connections of their
// own, are not counted.

// poolDial marks the context of a connection the pool opens, so that the
// dial function can tell it from a cancel request's.
type poolDial struct{}

// boundedConnector is a driver.Connector that marks its dials as the
// pool's.
type boundedConnector struct{ driver.Connector }

// Connect opens a connection whose socket counts against the bound.
func (c boundedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	return c.Connector.Connect(context.WithValue(ctx, poolDial{}, true))
}

// boundPostgres makes cfg's dial function wait for one of max slots for
// each socket of a boundedConnector's connection, until it closes.
func boundPostgres(cfg *pgconn.Config, max int) {
	slots := make(chan struct{}, max)
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ctx.Value(poolDial{}) == nil {
			return dial(ctx, network, addr) // a cancel request
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			<-slots
			return nil, err
		}
		return &slotConn{Conn: c, release: func() { <-slots }}, nil
	}
}

// slotConn gives its slot back when it is closed (once).
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
