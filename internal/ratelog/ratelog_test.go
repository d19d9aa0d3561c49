package ratelog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &Limiter{Now: func() time.Time { return now }}
	ctx := context.Background()
	if !l.Log(ctx, logger, slog.LevelError, "a", "first") {
		t.Fatal("the first line of a class was held back")
	}
	for range 5 {
		if l.Log(ctx, logger, slog.LevelError, "a", "again") {
			t.Fatal("a line within the interval went out")
		}
	}
	if !l.Log(ctx, logger, slog.LevelError, "b", "other class") {
		t.Fatal("another class was held back")
	}
	now = now.Add(DefaultInterval)
	if !l.Log(ctx, logger, slog.LevelError, "a", "later") || !strings.Contains(buf.String(), "suppressed=5") {
		t.Fatalf("after the interval: %q", buf.String())
	}
	for i := range maxClasses * 2 {
		l.Log(ctx, logger, slog.LevelError, fmt.Sprint("path-", i), "many")
	}
	if len(l.classes) > maxClasses+1 {
		t.Fatalf("%d classes tracked, want at most %d", len(l.classes), maxClasses+1)
	}
}
