package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/session"
	"github.com/qsessions/qsessions/ent/user"
	"github.com/qsessions/qsessions/pages"
)

// adminSource is the pages.AdminSource of the reference ent schema: a few
// ent queries. An app writes the same over its own ent package.
//
// Public ids are hashes of the stored keys, so no index finds one. Get
// first looks in the keys of the rows List showed recently (the admin
// clicked one of them), then falls back to pages.FindKey, a scan of the key
// index in pages of 1000 (about a second per million sessions).
type adminSource struct {
	client *ent.Client

	mu     sync.Mutex
	recent map[string]string // public id -> key, of rows listed recently
}

// maxRecent bounds adminSource.recent: about 150 bytes per entry.
const maxRecent = 10000

func newAdminSource(client *ent.Client) *adminSource {
	return &adminSource{client: client, recent: map[string]string{}}
}

var _ pages.AdminSource = (*adminSource)(nil)

// List implements pages.AdminSource: one COUNT and one SELECT of the page
// (session_data is not read), plus one SELECT of the owners' names.
func (s *adminSource) List(ctx context.Context, f pages.Filter) ([]pages.AdminSession, int, error) {
	q := s.client.Session.Query()
	now := backend.Time(f.Now)
	switch f.State {
	case pages.StateExpired:
		q.Where(session.ExpireDateLTE(now))
	case pages.StateAll:
	default:
		q.Where(session.ExpireDateGT(now))
	}
	if f.OwnerID != nil {
		id, ok := f.OwnerID.(int)
		if !ok {
			return nil, 0, fmt.Errorf("admin list: owner id %v is a %T, the reference schema's user ids are int", f.OwnerID, f.OwnerID)
		}
		q.Where(session.UserID(id))
	}
	if f.Search != "" {
		q.Where(session.Or(
			session.IPHasPrefix(strings.ToLower(f.Search)), // IPs are stored in lower case
			session.HasUserWith(user.UsernameContainsFold(f.Search)),
		))
	}
	total, err := q.Clone().Count(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("admin list: counting sessions: %w", err)
	}
	es, err := q.
		Select(session.FieldExpireDate, session.FieldUserID, session.FieldUserAgent, session.FieldIP,
			session.FieldCreatedAt, session.FieldUpdatedAt, session.FieldLastActivity).
		WithUser(func(uq *ent.UserQuery) { uq.Select(user.FieldUsername) }).
		Order(session.ByLastActivity(entsql.OrderDesc()), session.ByID()).
		Offset(f.Offset).
		Limit(f.Limit).
		All(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("admin list: selecting sessions: %w", err)
	}
	out := make([]pages.AdminSession, len(es))
	s.mu.Lock()
	if len(s.recent)+len(es) > maxRecent {
		clear(s.recent)
	}
	for i, e := range es {
		rec := record(e)
		info := qsessions.InfoOf(rec)
		s.recent[info.ID] = rec.Key
		out[i] = pages.AdminSession{Info: info}
		if e.Edges.User != nil {
			out[i].OwnerName = e.Edges.User.Username
		}
	}
	s.mu.Unlock()
	return out, total, nil
}

// Get implements pages.AdminSource: one SELECT by key when the id was
// listed recently, else a scan of the key index first (see adminSource).
func (s *adminSource) Get(ctx context.Context, publicID string) (*backend.Record, error) {
	s.mu.Lock()
	key, ok := s.recent[publicID]
	s.mu.Unlock()
	if !ok {
		var err error
		key, err = pages.FindKey(ctx, publicID, func(ctx context.Context, after string, limit int) ([]string, error) {
			return s.client.Session.Query().Where(session.IDGT(after)).Order(session.ByID()).Limit(limit).IDs(ctx)
		})
		if err != nil {
			return nil, err
		}
	}
	e, err := s.client.Session.Get(ctx, key)
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("session %s: %w", publicID, qsessions.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loading session %s: %w", publicID, err)
	}
	return record(e), nil
}

// record converts an ent Session to a backend.Record.
func record(e *ent.Session) *backend.Record {
	r := &backend.Record{
		Key: e.ID, Data: e.SessionData, ExpireDate: e.ExpireDate.UTC(),
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), LastActivity: e.LastActivity.UTC(),
	}
	if e.UserID != nil {
		r.UserID = *e.UserID
	}
	if e.UserAgent != nil {
		r.UserAgent = *e.UserAgent
	}
	if e.IP != nil {
		r.IP = *e.IP
	}
	return r
}
