package backend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/qsessions/qsessions/internal/wire"
	"time"

	"github.com/google/uuid"
)

// UserIDCodec encodes user IDs of a type CachedDB does not know by itself.
// CachedDB knows nil, int, int8, int16, int32, int64, uint, uint8, uint16,
// uint32, uint64, string, uuid.UUID (github.com/google/uuid) and [16]byte,
// and gives them back with the same Go type, which the generated Store
// requires. An app whose user IDs are of another type (say a named
// `type UserID int64`) sets CachedOptions.UserIDCodec; without one, sessions
// of such users are simply not cached (served from the database; the first
// failure is logged).
type UserIDCodec interface {
	// EncodeUserID returns the bytes of id, or an error when id is not of
	// the codec's type.
	EncodeUserID(id any) ([]byte, error)
	// DecodeUserID returns the ID EncodeUserID encoded as b, in the app's
	// ID type.
	DecodeUserID(b []byte) (any, error)
}

// Cache entry kinds: the first byte of every value CachedDB writes. A value
// of any other first byte (say, written by a newer version) is treated like
// a tombstone: not trusted, the database answers and nothing is filled.
const (
	entryTombstone byte = 0x00
	entryRecordV1  byte = 0x01
	entryStale     byte = 0x02
)

// tombstone is the value of a tombstone: "this session ended; do not trust
// or fill the cache for this key until the entry expires".
var tombstone = []byte{entryTombstone}

// staleMarker is the value of a conflict marker: "two saves raced; ask the
// database". Unlike a tombstone, a load that read the database replaces it
// (with CompareAndSwap, so a revoke's tombstone written in between wins),
// and it lives StaleTTL only.
var staleMarker = []byte{entryStale}

// User ID tags of the v1 record encoding.
const (
	uidNil byte = iota
	uidInt
	uidInt8
	uidInt16
	uidInt32
	uidInt64
	uidUint
	uidUint8
	uidUint16
	uidUint32
	uidUint64
	uidString
	uidUUID
	uidBytes16
	uidCustom
)

// encodeRecord appends the v1 encoding of r: the version byte, then
// length-prefixed data, expiry, user ID (a tag byte and its payload), user
// agent, IP, and created/updated/last-activity as varint Unix microseconds
// (the precision every database keeps). The key is not stored: it is the
// cache key. Typical overhead beyond the data is 40 to 60 bytes.
func encodeRecord(r *Record, codec UserIDCodec) ([]byte, error) {
	b := make([]byte, 0, 64+len(r.Data)+len(r.UserAgent)+len(r.IP))
	b = append(b, entryRecordV1)
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	b = append(b, r.Data...)
	b = binary.AppendVarint(b, Time(r.ExpireDate).UnixMicro())
	var err error
	if b, err = appendUserID(b, r.UserID, codec); err != nil {
		return nil, err
	}
	b = wire.AppendString(b, r.UserAgent)
	b = wire.AppendString(b, r.IP)
	b = binary.AppendVarint(b, Time(r.CreatedAt).UnixMicro())
	b = binary.AppendVarint(b, Time(r.UpdatedAt).UnixMicro())
	b = binary.AppendVarint(b, Time(r.LastActivity).UnixMicro())
	if r.DeviceKey != "" {
		// Device-bound sessions only: an unbound entry ends here.
		b = wire.AppendString(b, r.DeviceKey)
		b = binary.AppendUvarint(b, uint64(len(r.DeviceSecret)))
		b = append(b, r.DeviceSecret...)
	}
	return b, nil
}

func appendUserID(b []byte, id any, codec UserIDCodec) ([]byte, error) {
	switch v := id.(type) {
	case nil:
		return append(b, uidNil), nil
	case int:
		return binary.AppendVarint(append(b, uidInt), int64(v)), nil
	case int8:
		return binary.AppendVarint(append(b, uidInt8), int64(v)), nil
	case int16:
		return binary.AppendVarint(append(b, uidInt16), int64(v)), nil
	case int32:
		return binary.AppendVarint(append(b, uidInt32), int64(v)), nil
	case int64:
		return binary.AppendVarint(append(b, uidInt64), v), nil
	case uint:
		return binary.AppendUvarint(append(b, uidUint), uint64(v)), nil
	case uint8:
		return binary.AppendUvarint(append(b, uidUint8), uint64(v)), nil
	case uint16:
		return binary.AppendUvarint(append(b, uidUint16), uint64(v)), nil
	case uint32:
		return binary.AppendUvarint(append(b, uidUint32), uint64(v)), nil
	case uint64:
		return binary.AppendUvarint(append(b, uidUint64), v), nil
	case string:
		return wire.AppendString(append(b, uidString), v), nil
	case uuid.UUID:
		return append(append(b, uidUUID), v[:]...), nil
	case [16]byte:
		return append(append(b, uidBytes16), v[:]...), nil
	}
	if codec == nil {
		return nil, fmt.Errorf("qsessions: cannot cache a session whose user ID is of type %T: set CachedOptions.UserIDCodec", id)
	}
	p, err := codec.EncodeUserID(id)
	if err != nil {
		return nil, fmt.Errorf("qsessions: encoding a user ID of type %T for the cache: %w", id, err)
	}
	b = append(b, uidCustom)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...), nil
}

var errCorrupt = errors.New("qsessions: corrupt cache entry")

// reader decodes the v1 encoding; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) time() time.Time { return time.UnixMicro(r.varint()).UTC() }

// decodeRecord decodes a v1 record (after the version byte) for key.
func decodeRecord(key string, b []byte, codec UserIDCodec) (*Record, error) {
	r := &reader{b: b}
	rec := &Record{Key: key}
	rec.Data = append([]byte{}, r.bytes(r.uvarint())...)
	rec.ExpireDate = r.time()
	rec.UserID = r.userID(codec)
	rec.UserAgent = string(r.bytes(r.uvarint()))
	rec.IP = string(r.bytes(r.uvarint()))
	rec.CreatedAt = r.time()
	rec.UpdatedAt = r.time()
	rec.LastActivity = r.time()
	if r.err == nil && len(r.b) != 0 {
		rec.DeviceKey = string(r.bytes(r.uvarint()))
		rec.DeviceSecret = append([]byte{}, r.bytes(r.uvarint())...)
		if rec.DeviceKey == "" {
			r.err = errCorrupt
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	if r.err != nil {
		return nil, r.err
	}
	return rec, nil
}

func (r *reader) userID(codec UserIDCodec) any {
	switch tag := r.byte(); tag {
	case uidNil:
		return nil
	case uidInt:
		return int(r.varint())
	case uidInt8:
		return int8(r.varint())
	case uidInt16:
		return int16(r.varint())
	case uidInt32:
		return int32(r.varint())
	case uidInt64:
		return r.varint()
	case uidUint:
		return uint(r.uvarint())
	case uidUint8:
		return uint8(r.uvarint())
	case uidUint16:
		return uint16(r.uvarint())
	case uidUint32:
		return uint32(r.uvarint())
	case uidUint64:
		return r.uvarint()
	case uidString:
		return string(r.bytes(r.uvarint()))
	case uidUUID:
		var u uuid.UUID
		copy(u[:], r.bytes(16))
		return u
	case uidBytes16:
		var a [16]byte
		copy(a[:], r.bytes(16))
		return a
	case uidCustom:
		p := r.bytes(r.uvarint())
		if r.err != nil {
			return nil
		}
		if codec == nil {
			r.err = errors.New("qsessions: cache entry has a custom user ID but CachedOptions.UserIDCodec is not set")
			return nil
		}
		id, err := codec.DecodeUserID(p)
		if err != nil {
			r.err = fmt.Errorf("qsessions: decoding a cached user ID: %w", err)
			return nil
		}
		return id
	default:
		r.fail()
		return nil
	}
}
