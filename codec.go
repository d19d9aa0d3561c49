package qsessions

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/qsessions/qsessions/internal/wire"
	"maps"
	"math"
	"reflect"
	"slices"
	"sync"
	"time"
)

// codecVersion is the first byte of every encoded session. A later format
// gets a new number and this decoder keeps reading version 1.
const codecVersion = 1

// Value tags of the version 1 format. Each value is one tag byte and its
// payload; the built-in kinds keep their Go types through a round trip.
const (
	tagNil byte = iota
	tagFalse
	tagTrue
	tagString
	tagInt
	tagInt8
	tagInt16
	tagInt32
	tagInt64
	tagUint
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32
	tagFloat64
	tagTime
	tagBytes
	tagStrings
	tagMap
	tagSlice
	tagRegistered
)

// maxDepth bounds the nesting of maps and slices a decoder follows, so
// hostile bytes cannot exhaust the stack.
const maxDepth = 32

// ErrUnsupportedValue is returned (wrapped, naming the type) by Set for a
// value the codec cannot store: neither a built-in kind nor a registered type.
var ErrUnsupportedValue = errors.New("qsessions: value type cannot be stored in a session")

// ErrCorruptData is returned (wrapped, saying where) when stored bytes do
// not decode.
var ErrCorruptData = errors.New("qsessions: corrupt session data")

var registry = struct {
	sync.RWMutex
	byType map[reflect.Type]string
	byName map[string]reflect.Type
}{byType: map[reflect.Type]string{}, byName: map[string]reflect.Type{}}

// Register lets values of type T be stored in sessions under name, encoded
// with encoding/json. The name, not the Go path, is stored, so a type can
// move between packages; decoding data of an unregistered name gives an
// Opaque value. Call it from init: registering a second type under a name,
// or a type twice under different names, panics (a programming error).
func Register[T any](name string) {
	t := reflect.TypeFor[T]()
	registry.Lock()
	defer registry.Unlock()
	if old, ok := registry.byName[name]; ok && old != t {
		panic(fmt.Sprintf("qsessions: Register(%q): name already used by %v", name, old))
	}
	if old, ok := registry.byType[t]; ok && old != name {
		panic(fmt.Sprintf("qsessions: Register(%q): %v already registered as %q", name, t, old))
	}
	registry.byType[t] = name
	registry.byName[name] = t
}

// Opaque is a stored value of a registered type that this process has not
// registered: its name and JSON. Admin pages show it as is.
type Opaque struct {
	Type string
	JSON json.RawMessage
}

// header is the session metadata stored before the values.
type header struct {
	deadline time.Time // absolute deadline; zero means none
	persist  Persistence
}

// encodeSession encodes h and values. Map keys are written sorted, so equal
// sessions encode to equal bytes.
func encodeSession(h header, values map[string]any) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, codecVersion)
	var dl int64
	if !h.deadline.IsZero() {
		dl = h.deadline.UnixMicro()
	}
	b = binary.AppendVarint(b, dl)
	b = append(b, byte(h.persist))
	return appendMap(b, values, 0)
}

// entryLen is the encoded length of a map entry: key's length prefix, key,
// and a value of valueLen bytes.
func entryLen(key string, valueLen int) int {
	return uvarintLen(uint64(len(key))) + len(key) + valueLen
}

// headerLen is the encoded length of a session's header and the count of
// its values, for the deadline dl (zero: none).
func headerLen(dl time.Time, count int) int {
	var v int64
	if !dl.IsZero() {
		v = dl.UnixMicro()
	}
	zigzag := uint64(v)<<1 ^ uint64(v>>63) // binary.AppendVarint's encoding
	return 1 + uvarintLen(zigzag) + 1 + uvarintLen(uint64(count))
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func appendMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = wire.AppendString(b, k)
		var err error
		if b, err = appendValue(b, m[k], depth+1); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
	}
	return b, nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrUnsupportedValue, maxDepth)
	}
	switch v := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case bool:
		if v {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case string:
		return wire.AppendString(append(b, tagString), v), nil
	case int:
		return binary.AppendVarint(append(b, tagInt), int64(v)), nil
	case int8:
		return binary.AppendVarint(append(b, tagInt8), int64(v)), nil
	case int16:
		return binary.AppendVarint(append(b, tagInt16), int64(v)), nil
	case int32:
		return binary.AppendVarint(append(b, tagInt32), int64(v)), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt64), v), nil
	case uint:
		return binary.AppendUvarint(append(b, tagUint), uint64(v)), nil
	case uint8:
		return binary.AppendUvarint(append(b, tagUint8), uint64(v)), nil
	case uint16:
		return binary.AppendUvarint(append(b, tagUint16), uint64(v)), nil
	case uint32:
		return binary.AppendUvarint(append(b, tagUint32), uint64(v)), nil
	case uint64:
		return binary.AppendUvarint(append(b, tagUint64), v), nil
	case float32:
		return binary.LittleEndian.AppendUint32(append(b, tagFloat32), math.Float32bits(v)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(v)), nil
	case time.Time:
		tb, err := v.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: time %v: %v", ErrUnsupportedValue, v, err)
		}
		b = append(b, tagTime, byte(len(tb)))
		return append(b, tb...), nil
	case []byte:
		b = binary.AppendUvarint(append(b, tagBytes), uint64(len(v)))
		return append(b, v...), nil
	case []string:
		b = binary.AppendUvarint(append(b, tagStrings), uint64(len(v)))
		for _, s := range v {
			b = wire.AppendString(b, s)
		}
		return b, nil
	case map[string]any:
		return appendMap(append(b, tagMap), v, depth)
	case []any:
		b = binary.AppendUvarint(append(b, tagSlice), uint64(len(v)))
		for i, e := range v {
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, fmt.Errorf("index %d: %w", i, err)
			}
		}
		return b, nil
	}
	registry.RLock()
	name, ok := registry.byType[reflect.TypeOf(v)]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %T (register it with qsessions.Register)", ErrUnsupportedValue, v)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %v", ErrUnsupportedValue, v, err)
	}
	b = wire.AppendString(append(b, tagRegistered), name)
	return wire.AppendString(b, string(js)), nil
}

// decoder reads the version 1 format with bounds checks everywhere:
// arbitrary bytes give an error, never a panic or a huge allocation.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrCorruptData, what, d.off)
}

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.b) {
		return 0, d.fail("unexpected end")
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		return 0, d.fail("bad unsigned number")
	}
	d.off += n
	return v, nil
}

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		return 0, d.fail("bad number")
	}
	d.off += n
	return v, nil
}

// count reads a length and checks that at least min bytes per element remain.
func (d *decoder) count(min int) (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.b)-d.off)/uint64(min) {
		return 0, d.fail("length past the end")
	}
	return int(n), nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.count(1)
	if err != nil {
		return nil, err
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) string() (string, error) {
	p, err := d.bytes()
	return string(p), err
}

func (d *decoder) fixed(n int) ([]byte, error) {
	if len(d.b)-d.off < n {
		return nil, d.fail("unexpected end")
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

// decodeSession decodes what encodeSession wrote. Values of registered types
// are decoded into those types; with display set (or when the type is not
// registered here) they come back as Opaque.
func decodeSession(b []byte, display bool) (header, map[string]any, error) {
	h, m, _, err := decode(b, display, false)
	return h, m, err
}

// decodeSessionSizes decodes for use and also returns each top-level key's
// encoded size, as Session.Set counts it.
func decodeSessionSizes(b []byte) (header, map[string]any, map[string]int, error) {
	return decode(b, false, true)
}

func decode(b []byte, display, withSizes bool) (header, map[string]any, map[string]int, error) {
	var h header
	var sizes map[string]int
	if withSizes {
		sizes = map[string]int{}
	}
	if len(b) == 0 {
		return h, map[string]any{}, sizes, nil
	}
	d := &decoder{b: b}
	v, _ := d.byte()
	if v != codecVersion {
		return h, nil, nil, fmt.Errorf("%w: unknown format version %d", ErrCorruptData, v)
	}
	dl, err := d.varint()
	if err != nil {
		return h, nil, nil, err
	}
	if dl != 0 {
		h.deadline = time.UnixMicro(dl).UTC()
	}
	p, err := d.byte()
	if err != nil {
		return h, nil, nil, err
	}
	h.persist = Persistence(int8(p))
	m, err := d.mapValue(0, display, sizes)
	if err != nil {
		return h, nil, nil, err
	}
	if d.off != len(d.b) {
		return h, nil, nil, d.fail("trailing bytes")
	}
	return h, m, sizes, nil
}

// mapValue reads a map; with sizes set it records each key's encoded size.
func (d *decoder) mapValue(depth int, display bool, sizes map[string]int) (map[string]any, error) {
	n, err := d.count(2)
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, n)
	for range n {
		k, err := d.string()
		if err != nil {
			return nil, err
		}
		start := d.off
		if m[k], err = d.value(depth+1, display); err != nil {
			return nil, err
		}
		if sizes != nil {
			sizes[k] = entryLen(k, d.off-start)
		}
	}
	return m, nil
}

func (d *decoder) value(depth int, display bool) (any, error) {
	if depth > maxDepth {
		return nil, d.fail("nesting too deep")
	}
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNil:
		return nil, nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagString:
		return d.string()
	case tagInt, tagInt8, tagInt16, tagInt32, tagInt64:
		v, err := d.varint()
		if err != nil {
			return nil, err
		}
		switch tag {
		case tagInt:
			return int(v), nil
		case tagInt8:
			return int8(v), nil
		case tagInt16:
			return int16(v), nil
		case tagInt32:
			return int32(v), nil
		}
		return v, nil
	case tagUint, tagUint8, tagUint16, tagUint32, tagUint64:
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		switch tag {
		case tagUint:
			return uint(v), nil
		case tagUint8:
			return uint8(v), nil
		case tagUint16:
			return uint16(v), nil
		case tagUint32:
			return uint32(v), nil
		}
		return v, nil
	case tagFloat32:
		p, err := d.fixed(4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(p)), nil
	case tagFloat64:
		p, err := d.fixed(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(p)), nil
	case tagTime:
		n, err := d.byte()
		if err != nil {
			return nil, err
		}
		p, err := d.fixed(int(n))
		if err != nil {
			return nil, err
		}
		var t time.Time
		if err := t.UnmarshalBinary(p); err != nil {
			return nil, d.fail("bad time")
		}
		return t, nil
	case tagBytes:
		p, err := d.bytes()
		if err != nil {
			return nil, err
		}
		return append([]byte{}, p...), nil
	case tagStrings:
		n, err := d.count(1)
		if err != nil {
			return nil, err
		}
		ss := make([]string, n)
		for i := range ss {
			if ss[i], err = d.string(); err != nil {
				return nil, err
			}
		}
		return ss, nil
	case tagMap:
		return d.mapValue(depth, display, nil)
	case tagSlice:
		n, err := d.count(1)
		if err != nil {
			return nil, err
		}
		vs := make([]any, n)
		for i := range vs {
			if vs[i], err = d.value(depth+1, display); err != nil {
				return nil, err
			}
		}
		return vs, nil
	case tagRegistered:
		name, err := d.string()
		if err != nil {
			return nil, err
		}
		js, err := d.bytes()
		if err != nil {
			return nil, err
		}
		registry.RLock()
		t, ok := registry.byName[name]
		registry.RUnlock()
		if display || !ok {
			return Opaque{Type: name, JSON: append(json.RawMessage{}, js...)}, nil
		}
		p := reflect.New(t)
		if err := json.Unmarshal(js, p.Interface()); err != nil {
			return nil, fmt.Errorf("%w: value of type %q: %v", ErrCorruptData, name, err)
		}
		return p.Elem().Interface(), nil
	}
	return nil, d.fail(fmt.Sprintf("unknown value tag %d", tag))
}

// EncodeData encodes values as a session's stored data (a Record's Data),
// with deadline as the session's absolute deadline (zero: none yet; the
// first save sets now plus the Manager's lifetime) and persist as its
// cookie choice (PersistDefault leaves it to the middleware; see
// Session.Persist). Importers use it to
// write sessions that Get, GetAs and DecodeData read back with the same Go
// types. It returns an error wrapping ErrUnsupportedValue, naming the key,
// for a value the codec cannot store. Cost: one pass over values.
func EncodeData(values map[string]any, deadline time.Time, persist Persistence) ([]byte, error) {
	return encodeSession(header{deadline: deadline, persist: persist}, values)
}

// DecodeData decodes stored session data (a Record's Data) for display,
// without needing the app's types: registered types come back as Opaque.
// Arbitrary bytes give an error wrapping ErrCorruptData, never a panic.
// Cost: one pass over data.
func DecodeData(data []byte) (map[string]any, error) {
	_, m, err := decodeSession(data, true)
	return m, err
}
