package pages

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/qsessions/qsessions"
)

// The security events on the sessions page (Config.Events).
const (
	// EventsShown is how many of the user's newest events the sessions
	// page and GET /api/sessions/events list.
	EventsShown = 20
	// NoticeAge is how long a sign-in from a new device or location is
	// announced on the user's other sessions.
	NoticeAge = 7 * 24 * time.Hour
	// MaxNotices bounds the notices shown at once, newest first.
	MaxNotices = 5
	// eventsRead is how many events one page reads: the list, and the
	// notices and revoked sessions' devices found beyond it.
	eventsRead = 50
)

// pathAPIEvents is the JSON of the events, relative to Config.Prefix.
const pathAPIEvents = "/api/sessions/events"

// eventTemplates are the parts of the sessions page that show the events,
// executed with the page's Data (see withEvents).
const eventTemplates = `
{{define "event-notices"}}{{with .Notices}}{{range .}}<div class="flash alert" role="alert" id="notice-{{.SessionID}}"><b>{{.Text}}</b> <span class="muted">· <time datetime="{{iso .Time}}" title="{{when .Time}}">{{ago .Time}}</time>{{with .IP}} · <span class="mono">{{.}}</span>{{end}}</span><br>
{{if .Live}}If this was not you, revoke that session: it is signed out at once. <form method="post" action="{{url "/sessions"}}/{{.SessionID}}/revoke" class="inline"><button class="btn danger">Revoke it</button></form>{{else}}<span class="muted">That session has ended since.</span>{{end}}</div>
{{end}}{{end}}{{end}}

{{define "event-list"}}{{if .ShowEvents}}<h2>Recent security events</h2>
{{with .EventsError}}<p class="muted">{{.}}</p>{{else}}<div class="table-wrap"><table class="events">
<thead><tr><th>Event</th><th>Device</th><th>Location</th><th>IP address</th><th>When</th></tr></thead>
<tbody>
{{range .Events}}<tr class="event">
<td><b>{{.Title}}</b>{{with .Detail}} <span class="muted">{{.}}</span>{{end}}{{if .This}}<span class="badge current">This device</span>{{end}}{{if .NewDevice}}<span class="badge new">New device</span>{{end}}{{if .NewLocation}}<span class="badge new">New location</span>{{end}}</td>
<td><span title="{{.UserAgent}}">{{.Device}}</span></td>
<td>{{.Location}}</td>
<td class="mono">{{.IP}}</td>
<td><time datetime="{{iso .Time}}" title="{{when .Time}}">{{ago .Time}}</time></td>
</tr>
{{else}}<tr><td colspan="5" class="muted">No events yet.</td></tr>
{{end}}</tbody></table></div>{{end}}{{end}}{{end}}
`

// eventRow is one event as the page shows it.
type eventRow struct {
	SessionID string
	Kind      qsessions.EventKind
	Cause     qsessions.Cause
	ByID      string
	// Title and Detail say what happened and who did it: "Revoked", "from
	// another of your sessions (Chrome on Windows)".
	Title, Detail string
	Device        string
	UserAgent     string
	Location      string
	IP            string
	Time          time.Time
	NewDevice     bool
	NewLocation   bool
	// This: the event concerns the session that asks.
	This bool
}

// noticeRow announces a sign-in from a new device or location.
type noticeRow struct {
	SessionID string
	// Text is "New sign-in from Safari on iPhone in Linköping, Sweden".
	Text        string
	IP          string
	Time        time.Time
	NewDevice   bool
	NewLocation bool
	// Live: that session is still signed in (the notice offers to revoke
	// it).
	Live bool
}

// eventView is what the sessions page and the JSON show of the log.
type eventView struct {
	Events  []eventRow
	Notices []noticeRow
}

// readEvents reads the user's newest events (one EventLog.Recent) and
// turns them into rows and notices. live maps the public ids of the user's
// live sessions to their device names; current is the asking session.
func (p *Pages) readEvents(ctx context.Context, userID any, current string, live map[string]string) (eventView, error) {
	evs, err := p.cfg.Events.Recent(ctx, userID, time.Time{}, eventsRead)
	if err != nil {
		return eventView{}, err
	}
	// The device of each session the events name, from its sign-in or any
	// event that carried a User-Agent, for the ends that did not (sign
	// out everywhere else, ent deletes).
	devices := map[string]string{}
	for _, e := range evs {
		if _, ok := devices[e.SessionID]; !ok && e.Device != "" {
			devices[e.SessionID] = e.Device
		}
	}
	now := p.now()
	var v eventView
	for i, e := range evs {
		dev := e.Device
		if dev == "" {
			dev = devices[e.SessionID]
		}
		if i < EventsShown {
			title, detail := describe(e, current, live)
			v.Events = append(v.Events, eventRow{
				SessionID: e.SessionID, Kind: e.Kind, Cause: e.Cause, ByID: e.ByID, Title: title, Detail: detail,
				Device: dev, UserAgent: e.UserAgent, Location: e.Location, IP: e.IP, Time: e.Time,
				NewDevice: e.NewDevice, NewLocation: e.NewLocation, This: e.SessionID == current && current != "",
			})
		}
		if e.Kind == qsessions.EventSignIn && (e.NewDevice || e.NewLocation) && e.SessionID != current &&
			now.Sub(e.Time) < NoticeAge && len(v.Notices) < MaxNotices {
			_, isLive := live[e.SessionID]
			v.Notices = append(v.Notices, noticeRow{
				SessionID: e.SessionID, Text: noticeText(dev, e.Location), IP: e.IP, Time: e.Time,
				NewDevice: e.NewDevice, NewLocation: e.NewLocation, Live: isLive,
			})
		}
	}
	return v, nil
}

// noticeText is "New sign-in from Safari on iPhone in Linköping, Sweden".
func noticeText(dev, where string) string {
	if dev == "" {
		dev = "an unknown device"
	}
	switch where {
	case "":
		return "New sign-in from " + dev
	case "Local network":
		return "New sign-in from " + dev + " on the local network"
	}
	return "New sign-in from " + dev + " in " + where
}

// describe says what e was and who did it, for the list.
func describe(e qsessions.LoggedEvent, current string, live map[string]string) (title, detail string) {
	switch e.Kind {
	case qsessions.EventSignIn:
		return "Signed in", ""
	case qsessions.EventSignOut:
		return "Signed out", ""
	case qsessions.EventIPChange:
		if e.Location != "" {
			return "Location changed", "to " + e.Location
		}
		return "Location changed", ""
	case qsessions.EventRevoke:
		switch e.Cause {
		case qsessions.CauseOwner:
			switch dev, ok := live[e.ByID]; {
			case e.ByID != "" && e.ByID == current:
				return "Revoked", "from this device"
			case ok && dev != "":
				return "Revoked", "from another of your sessions (" + dev + ")"
			}
			return "Revoked", "from another of your sessions"
		case qsessions.CauseAdmin:
			return "Revoked", "by an administrator"
		case qsessions.CauseCLI:
			return "Revoked", "by an administrator (command line)"
		case qsessions.CauseCap:
			return "Ended", "too many sessions: the least recently used goes"
		case qsessions.CauseApp, qsessions.CauseEnt:
			return "Ended", "by the site"
		}
		return "Ended", ""
	}
	return string(e.Kind), ""
}

// liveDevices maps the public ids of the listed sessions to their device
// names.
func liveDevices(rows []row) map[string]string {
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Device
	}
	return out
}

// withEvents adds the security events to the sessions page's data when
// Config.Events is set: "Notices", "Events", "ShowEvents", and
// "EventsError" when the log could not be read (the page still renders;
// the failure is logged at most once a minute). Cost: one
// EventLog.Recent.
func (p *Pages) withEvents(r *http.Request, v viewer, rows []row, data map[string]any) map[string]any {
	if p.cfg.Events == nil {
		return data
	}
	data["ShowEvents"] = true
	ev, err := p.readEvents(r.Context(), v.ID, v.Session, liveDevices(rows))
	if err != nil {
		p.logs.Log(r.Context(), p.cfg.Logger, slog.LevelError, "events", "pages: reading the security log failed; the page shows no events", "err", err)
		data["EventsError"] = "Your security events could not be read just now."
		return data
	}
	data["Events"], data["Notices"] = ev.Events, ev.Notices
	return data
}

// registerEvents adds GET /api/sessions/events when Config.Events is set.
func (p *Pages) registerEvents(mux *http.ServeMux) {
	if p.cfg.Events != nil {
		mux.HandleFunc("GET "+p.cfg.Prefix+pathAPIEvents, p.apiEvents)
	}
}

// APIEvent is one security event in the JSON of GET /api/sessions/events.
// Times are RFC 3339 in UTC.
type APIEvent struct {
	// Kind is "sign-in", "sign-out", "revoke" or "ip-change" (a change of
	// country).
	Kind qsessions.EventKind `json:"kind"`
	// Cause says who ended a revoked session: "owner", "app", "admin",
	// "cap", "cli", "ent".
	Cause qsessions.Cause `json:"cause,omitempty"`
	// Summary is the page's words: "Revoked from this device".
	Summary string    `json:"summary"`
	Time    time.Time `json:"time"`
	// SessionID is the public id of the session concerned; BySessionID that
	// of the session that revoked it.
	SessionID   string `json:"session_id"`
	BySessionID string `json:"by_session_id,omitempty"`
	// Current: the event concerns the session that asks.
	Current   bool   `json:"current"`
	Device    string `json:"device,omitempty"`
	Location  string `json:"location,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// NewDevice and NewLocation mark a sign-in from a device or country
	// none of the user's other sessions had.
	NewDevice   bool `json:"new_device"`
	NewLocation bool `json:"new_location"`
}

// APINotice is a sign-in the sessions page announces.
type APINotice struct {
	// Text is "New sign-in from Safari on iPhone in Linköping, Sweden".
	Text        string    `json:"text"`
	SessionID   string    `json:"session_id"`
	Time        time.Time `json:"time"`
	IP          string    `json:"ip,omitempty"`
	NewDevice   bool      `json:"new_device"`
	NewLocation bool      `json:"new_location"`
	// Live: that session is still signed in.
	Live bool `json:"live"`
}

// APIEvents is the JSON body of GET /api/sessions/events: the notices of
// the sessions page (sign-ins from a new device or location in the last
// NoticeAge, other than the asking session's) and the user's newest
// EventsShown events, newest first.
type APIEvents struct {
	Notices []APINotice `json:"notices"`
	Events  []APIEvent  `json:"events"`
}

// apiEvents serves GET /api/sessions/events: 401 for an anonymous
// request, 503 with Retry-After when the sessions or the log could not be
// read. Cost: one CurrentUser call, one Manager.UserSessions, one
// EventLog.Recent.
func (p *Pages) apiEvents(w http.ResponseWriter, r *http.Request) {
	id, list, ok := p.apiSessions(w, r)
	if !ok {
		return
	}
	current := ""
	if s := qsessions.FromContext(r.Context()); s != nil {
		current = s.ID()
	}
	ev, err := p.readEvents(r.Context(), id, current, liveDevices(p.rows(list, p.now())))
	if err != nil {
		// The log is a store like the sessions': a failure to read it is
		// worth a retry.
		if !errors.Is(err, qsessions.ErrUnavailable) {
			err = errors.Join(qsessions.ErrUnavailable, err)
		}
		p.apiFail(w, r, "the security events could not be read", err)
		return
	}
	out := APIEvents{Notices: make([]APINotice, len(ev.Notices)), Events: make([]APIEvent, len(ev.Events))}
	for i, n := range ev.Notices {
		out.Notices[i] = APINotice{Text: n.Text, SessionID: n.SessionID, Time: n.Time, IP: n.IP,
			NewDevice: n.NewDevice, NewLocation: n.NewLocation, Live: n.Live}
	}
	for i, e := range ev.Events {
		summary := e.Title
		if e.Detail != "" {
			summary += " " + e.Detail
		}
		out.Events[i] = APIEvent{Kind: e.Kind, Cause: e.Cause, BySessionID: e.ByID, Summary: summary, Time: e.Time, SessionID: e.SessionID, Current: e.This,
			Device: e.Device, Location: e.Location, IP: e.IP, UserAgent: e.UserAgent, NewDevice: e.NewDevice, NewLocation: e.NewLocation}
	}
	writeJSON(w, http.StatusOK, out)
}
