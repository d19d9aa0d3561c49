package pages

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// adminViewer returns the signed-in admin, or answers (login redirect, 403
// or 503) and returns false.
func (p *Pages) adminViewer(w http.ResponseWriter, r *http.Request) (viewer, bool) {
	v, ok := p.signedIn(w, r)
	if !ok {
		return v, false
	}
	if !p.isAdmin(r) {
		p.fail(w, r, v, http.StatusForbidden, "These pages are for administrators only.", nil)
		return v, false
	}
	v.Admin = true
	return v, true
}

// adminRow is a row of the admin list.
type adminRow struct {
	row
	DetailURL string
}

// adminList serves GET /admin/sessions?state=&mine=1&q=&page=.
func (p *Pages) adminList(w http.ResponseWriter, r *http.Request) {
	v, ok := p.adminViewer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := qsessions.AdminState(q.Get("state"))
	if state != qsessions.StateExpired && state != qsessions.StateAll {
		state = qsessions.StateActive
	}
	mine := q.Get("mine") == "1"
	search := strings.TrimSpace(q.Get("q"))
	if !textOK(search) {
		p.fail(w, r, v, http.StatusBadRequest, "The search text must be valid UTF-8 without NUL characters.", nil)
		return
	}
	search = backend.Truncate(search, MaxSearch)
	pageNo, err := strconv.Atoi(q.Get("page"))
	if err != nil || pageNo < 1 {
		pageNo = 1
	}
	pageNo = min(pageNo, 1_000_000)
	size := p.cfg.PageSize
	now := p.now()
	f := qsessions.AdminFilter{State: state, Search: search, Offset: (pageNo - 1) * size, Limit: size, Now: now}
	if mine {
		f.OwnerID = v.ID
	}
	list, total, err := p.cfg.Admin.List(r.Context(), f)
	if err != nil {
		p.failErr(w, r, v, "The sessions could not be listed.", err)
		return
	}
	infos := make([]qsessions.Info, len(list))
	for i, s := range list {
		infos[i] = s.Info
		infos[i].Current = v.Session != "" && s.Info.ID == v.Session
	}
	names := map[string]string{}
	rows := make([]adminRow, len(infos))
	for i, x := range p.rows(infos, now) {
		owner := list[i].OwnerName
		if uid := list[i].Info.UserID; uid != nil {
			x.OwnerID = fmt.Sprint(uid)
			if owner == "" {
				n, done := names[x.OwnerID]
				if !done {
					n = p.userName(r.Context(), uid)
					names[x.OwnerID] = n
				}
				owner = n
			}
		}
		x.Owner = owner
		rows[i] = adminRow{row: x, DetailURL: p.URL(pathAdmin) + "/" + x.ID}
	}
	link := func(page int) string {
		lq := url.Values{}
		if state != qsessions.StateActive {
			lq.Set("state", string(state))
		}
		if mine {
			lq.Set("mine", "1")
		}
		if search != "" {
			lq.Set("q", search)
		}
		if page > 1 {
			lq.Set("page", strconv.Itoa(page))
		}
		if len(lq) == 0 {
			return p.URL(pathAdmin)
		}
		return p.URL(pathAdmin) + "?" + lq.Encode()
	}
	data := map[string]any{
		"Rows": rows, "Total": total, "State": string(state), "Mine": mine, "Search": search,
		"From": min(f.Offset+1, total), "To": f.Offset + len(rows),
	}
	if pageNo > 1 {
		data["Prev"] = link(pageNo - 1)
	}
	if f.Offset+len(rows) < total {
		data["Next"] = link(pageNo + 1)
	}
	msg := ""
	if q.Get("done") == "revoked" {
		msg = "The session was revoked."
	}
	p.render(w, r, http.StatusOK, "admin", page{Title: "All sessions", Nav: "admin", Viewer: v, Message: msg, Data: data})
}

// dataItem is one decoded session value on the detail page.
type dataItem struct {
	Key, Type, Value string
}

// decodedData renders stored session data for display: one item per key,
// sorted, values as JSON where that reads well.
func decodedData(b []byte) ([]dataItem, error) {
	m, err := qsessions.DecodeData(b)
	if err != nil {
		return nil, err
	}
	items := make([]dataItem, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		items = append(items, dataItem{Key: k, Type: typeName(m[k]), Value: backend.Truncate(showValue(m[k]), 4000)})
	}
	return items, nil
}

func typeName(v any) string {
	if o, ok := v.(qsessions.Opaque); ok {
		return o.Type
	}
	return fmt.Sprintf("%T", v)
}

func showValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		s := fmt.Sprintf("%d bytes: %s", len(x), hex.EncodeToString(x[:min(len(x), 64)]))
		if len(x) > 64 {
			s += "…"
		}
		return s
	case qsessions.Opaque:
		var buf bytes.Buffer
		if err := json.Indent(&buf, x.JSON, "", "  "); err != nil {
			return string(x.JSON)
		}
		return buf.String()
	}
	if b, err := json.MarshalIndent(v, "", "  "); err == nil {
		return string(b)
	}
	return fmt.Sprintf("%v", v)
}

// adminSession resolves the {id} of an admin request for an admin viewer,
// answering the error page itself (login, 403, 404, 500) when it cannot.
func (p *Pages) adminSession(w http.ResponseWriter, r *http.Request) (viewer, *backend.Record, bool) {
	v, ok := p.adminViewer(w, r)
	if !ok {
		return v, nil, false
	}
	rec, found, err := p.adminGet(r.Context(), r.PathValue("id"))
	if err != nil {
		p.failErr(w, r, v, "The session could not be loaded.", err)
		return v, nil, false
	}
	if !found {
		p.fail(w, r, v, http.StatusNotFound, "No such session: it may have been revoked or cleared.", nil)
		return v, nil, false
	}
	return v, rec, true
}

// adminDetail serves GET /admin/sessions/{id}.
func (p *Pages) adminDetail(w http.ResponseWriter, r *http.Request) {
	v, rec, ok := p.adminSession(w, r)
	if !ok {
		return
	}
	now := p.now()
	info := qsessions.InfoOf(rec)
	info.Current = info.ID == v.Session
	x := p.rows([]qsessions.Info{info}, now)[0]
	if rec.UserID != nil {
		x.OwnerID = fmt.Sprint(rec.UserID)
		x.Owner = p.userName(r.Context(), rec.UserID)
	}
	items, derr := decodedData(rec.Data)
	data := map[string]any{
		"Row": x, "UpdatedAt": rec.UpdatedAt, "Items": items, "Size": len(rec.Data),
		"RevokeURL": p.URL(pathAdmin) + "/" + x.ID + "/revoke",
	}
	if derr != nil {
		data["DecodeError"] = derr.Error()
	}
	p.render(w, r, http.StatusOK, "detail", page{Title: "Session " + x.ID, Nav: "admin", Viewer: v, Data: data})
}

// adminGet asks the AdminSource for a public id, mapping not-found to
// found false.
func (p *Pages) adminGet(ctx context.Context, id string) (*backend.Record, bool, error) {
	id, ok := backend.ParsePublicID(id)
	if !ok {
		return nil, false, nil
	}
	rec, err := p.cfg.Admin.Get(ctx, id)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case rec == nil || backend.PublicID(rec.Key) != id:
		return nil, false, fmt.Errorf("pages: AdminSource.Get(%s) returned another session", id)
	}
	return rec, true, nil
}

// adminRevoke serves POST /admin/sessions/{id}/revoke through
// Manager.AdminRevoke, the path every revoke takes (a cached_db backend
// writes its tombstone); it also ends anonymous and expired sessions.
func (p *Pages) adminRevoke(w http.ResponseWriter, r *http.Request) {
	v, rec, ok := p.adminSession(w, r)
	if !ok {
		return
	}
	if backend.PublicID(rec.Key) == v.Session {
		if err := qsessions.FromContext(r.Context()).Logout(r.Context()); err != nil {
			p.failErr(w, r, v, "The session could not be revoked.", err)
			return
		}
		http.Redirect(w, r, p.cfg.LoginURL, http.StatusSeeOther)
		return
	}
	switch err := p.cfg.Manager.AdminRevoke(r.Context(), backend.PublicID(rec.Key)); {
	case errors.Is(err, backend.ErrNotFound):
		p.fail(w, r, v, http.StatusNotFound, "No such session: it may have been revoked or cleared.", nil)
		return
	case err != nil:
		p.failErr(w, r, v, "The session could not be revoked.", err)
		return
	}
	http.Redirect(w, r, p.URL(pathAdmin)+"?done=revoked", http.StatusSeeOther)
}
