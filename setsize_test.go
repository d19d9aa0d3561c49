package qsessions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// storedLen returns the length of the data a session holding first (if
// not empty) and key=value stores, and whether the last Set accepted key
// under maxSize.
func storedLen(t testing.TB, maxSize int, firstKey, firstVal, key string, value any) (int, error) {
	ctx := context.Background()
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.Now = func() time.Time { return at }
	m.MaxSize = 8 << 20
	s := m.Start(ctx, "", "192.0.2.1", "ua")
	if firstKey != "" {
		if err := s.Set(firstKey, firstVal); err != nil {
			return 0, err
		}
	}
	m.MaxSize = maxSize // the limit the last Set is judged by
	if err := s.Set(key, value); err != nil {
		return 0, err
	}
	if _, err := s.Save(ctx); err != nil {
		t.Fatalf("Save after an accepted Set: %v", err)
	}
	return len(s.Record().Data), nil
}

// FuzzSetMatchesEncoder: Set accepts a value exactly when the encoded
// session fits MaxSize: with MaxSize equal to the stored length it
// succeeds, with one byte less it is ErrTooLarge.
func FuzzSetMatchesEncoder(f *testing.F) {
	f.Add("", "", "k", "v", 0)
	f.Add("a", "b", string(make([]byte, 200)), "x", 1)
	f.Add("first", "value", string(make([]byte, 16<<10)), "", 2)
	f.Add("same", "old", "same", "new value, longer", 0)
	f.Fuzz(func(t *testing.T, firstKey, firstVal, key, val string, kind int) {
		var v any = val
		switch kind % 3 {
		case 1:
			v = []byte(val)
		case 2:
			v = map[string]any{val: int64(len(val))}
		}
		n, err := storedLen(t, 8<<20, firstKey, firstVal, key, v)
		if err != nil {
			return // e.g. a key the codec refuses; not about sizes
		}
		if _, err := storedLen(t, n, firstKey, firstVal, key, v); err != nil {
			t.Fatalf("MaxSize = the stored length %d: Set refused: %v", n, err)
		}
		if _, err := storedLen(t, n-1, firstKey, firstVal, key, v); !errors.Is(err, qsessions.ErrTooLarge) {
			t.Fatalf("MaxSize = the stored length %d - 1: Set gave %v, want ErrTooLarge", n, err)
		}
	})
}

// TestSetLargeKey: keys of 16 KiB and more are counted with their real
// length prefix (the old estimate took two bytes at most).
func TestSetLargeKey(t *testing.T) {
	key := string(make([]byte, 20<<10))
	n, err := storedLen(t, 1<<20, "", "", key, "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storedLen(t, n-1, "", "", key, "v"); !errors.Is(err, qsessions.ErrTooLarge) {
		t.Fatalf("a 20 KiB key one byte over the limit: %v", err)
	}
}
