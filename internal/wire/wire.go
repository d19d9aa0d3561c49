// Package wire holds what the two binary formats of qsessions (the session
// data codec in the root package and the cache entry codec in backend)
// write the same way.
package wire

import "encoding/binary"

// AppendString appends s to b as its length (an unsigned varint) and its
// bytes. Cost: at most one growth of b.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
