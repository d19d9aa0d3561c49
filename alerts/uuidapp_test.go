package alerts_test

import (
	"context"
	"testing"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/alerts"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/examples/uuidapp/ent"
	"github.com/qsessions/qsessions/internal/testutil"
)

// TestUUIDApp: the alerts over an app's own generated log (uuidapp: UUID
// user IDs, a user type named Account, an event type named LoginEvent).
func TestUUIDApp(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		client := ent.NewClient(ent.Driver(db.Driver()))
		if err := client.Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		m := qsessions.New(backend.NewDB(ent.NewLoginSessionStore(client)))
		log := ent.NewLoginEventLog(client)
		heard := &notified{}
		a, err := alerts.New(alerts.Options{Manager: m, Log: log, Locator: openGeo(t), Notify: heard.notify})
		if err != nil {
			t.Fatal(err)
		}
		a.Attach()
		acct := client.Account.Create().SetEmail("a@example.com").SaveX(ctx)
		for _, s := range []struct{ ip, ua string }{{ipLondon, uaWindows}, {ipLinkoping, uaIPhone}} {
			if err := m.Start(ctx, "", s.ip, s.ua).Login(ctx, acct.ID); err != nil {
				t.Fatal(err)
			}
		}
		got := heard.take()
		if len(got) != 1 || got[0].UserID != acct.ID || !got[0].NewDevice || !got[0].NewLocation || got[0].Location != "Linköping, Sweden" {
			t.Fatalf("notified %+v", got)
		}
		evs, err := log.Recent(ctx, acct.ID, got[0].Time.Add(-day), 10)
		if err != nil || len(evs) != 2 || evs[0].UserID != acct.ID || !evs[0].NewDevice || evs[1].NewDevice {
			t.Fatalf("logged %+v, %v", evs, err)
		}
	})
}
