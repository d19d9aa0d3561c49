package locationtest

// A small writer of the MaxMind DB format, version 2.0
// (https://maxmind.github.io/MaxMind-DB/), enough for test databases: a
// binary search tree over the address bits, a data section of maps,
// strings, doubles, unsigned integers and arrays, and the metadata. Records
// with equal data share one copy in the data section; the format's
// pointers are never written.

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"
)

// Data section type numbers from the specification. Types above 7 are
// "extended": the control byte's type bits are 0 and the next byte holds
// the type minus 7.
const (
	typeString = 2
	typeDouble = 3
	typeUint16 = 5
	typeUint32 = 6
	typeMap    = 7
	typeUint64 = 9
	typeArray  = 11
)

// metadataMarker starts the metadata section at the end of the file.
const metadataMarker = "\xAB\xCD\xEFMaxMind.com"

// dataSeparator is the number of zero bytes between the search tree and the
// data section; data pointers in the tree count them.
const dataSeparator = 16

// maxSize is the largest size a control byte can express: 29 + 256 + 65536
// + 2^24 - 1.
const maxSize = 65821 + 1<<24 - 1

// encode appends the data section encoding of v, which must be a string,
// float64, uint16, uint32, uint64, []any or map[string]any (keys sorted,
// so the output is reproducible).
func encode(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("string %q is not valid UTF-8", v)
		}
		b, err := appendControl(b, typeString, len(v))
		if err != nil {
			return nil, err
		}
		return append(b, v...), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("number %v is not finite", v)
		}
		b, _ := appendControl(b, typeDouble, 8)
		bits := math.Float64bits(v)
		for shift := 56; shift >= 0; shift -= 8 {
			b = append(b, byte(bits>>shift))
		}
		return b, nil
	case uint16:
		return appendUint(b, typeUint16, uint64(v)), nil
	case uint32:
		return appendUint(b, typeUint32, uint64(v)), nil
	case uint64:
		return appendUint(b, typeUint64, v), nil
	case []any:
		b, err := appendControl(b, typeArray, len(v))
		if err != nil {
			return nil, err
		}
		for _, e := range v {
			if b, err = encode(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		b, err := appendControl(b, typeMap, len(v))
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if b, err = encode(b, k); err != nil {
				return nil, err
			}
			if b, err = encode(b, v[k]); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("cannot encode a %T", v)
}

// appendControl appends the control byte of a value of type typ whose size
// (bytes of a string or number, pairs of a map, elements of an array) is
// size, followed by the extended type byte and the extra size bytes.
func appendControl(b []byte, typ, size int) ([]byte, error) {
	if size < 0 || size > maxSize {
		return nil, fmt.Errorf("value of size %d is too large for the format", size)
	}
	var first byte
	if typ <= 7 {
		first = byte(typ) << 5
	}
	var extra []byte
	switch {
	case size < 29:
		first |= byte(size)
	case size < 29+256:
		first |= 29
		extra = []byte{byte(size - 29)}
	case size < 285+65536:
		first |= 30
		s := size - 285
		extra = []byte{byte(s >> 8), byte(s)}
	default:
		first |= 31
		s := size - 65821
		extra = []byte{byte(s >> 16), byte(s >> 8), byte(s)}
	}
	b = append(b, first)
	if typ > 7 {
		b = append(b, byte(typ-7))
	}
	return append(b, extra...), nil
}

// appendUint appends an unsigned integer in as few big-endian bytes as it
// needs (none for zero), as the format asks.
func appendUint(b []byte, typ int, v uint64) []byte {
	n := 0
	for x := v; x != 0; x >>= 8 {
		n++
	}
	b, _ = appendControl(b, typ, n) // n <= 8 always fits
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// A node of the search tree while it is built. A node without kids is a
// leaf whose val says what the addresses under it map to.
type node struct {
	kids *[2]*node
	val  int // leaf only: empty, alias, or 1 + index into writer.data
	// pinned marks the nodes on the path to an alias: they are never
	// replaced by a leaf, so the alias survives inserts of wider networks.
	pinned bool
}

const (
	empty = 0
	alias = -1
)

// aliases are the IPv6 networks that MaxMind's IPv6 databases point at the
// IPv4 subtree (::/96): IPv4-mapped addresses, Teredo and 6to4. Readers look
// up IPv4 addresses in ::/96 directly, so the aliases serve only callers
// that pass IPv4-mapped or 6to4 addresses.
var aliases = []netip.Prefix{
	netip.MustParsePrefix("::ffff:0:0/96"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// ipv4Subtree is where an IPv6 database keeps the IPv4 addresses.
var ipv4Subtree = netip.MustParsePrefix("::/96")

// writer builds one database.
type writer struct {
	ipVersion  int // 4 or 6
	recordSize int // 24, 28 or 32
	root       *node
	data       [][]byte       // encoded records, each once
	index      map[string]int // encoded record -> 1 + index into data
}

func newWriter(ipVersion, recordSize int) (*writer, error) {
	if ipVersion != 4 && ipVersion != 6 {
		return nil, fmt.Errorf("IPVersion must be 4 or 6, not %d", ipVersion)
	}
	if recordSize != 24 && recordSize != 28 && recordSize != 32 {
		return nil, fmt.Errorf("record size must be 24, 28 or 32, not %d", recordSize)
	}
	w := &writer{ipVersion: ipVersion, recordSize: recordSize, root: &node{}, index: map[string]int{}}
	if ipVersion == 6 {
		for _, p := range aliases {
			n, a := w.root, p.Addr().AsSlice()
			n.pinned = true
			for i := range p.Bits() {
				n.split()
				n = n.kids[bit(a, i)]
				n.pinned = true
			}
			n.val = alias
		}
	}
	return w, nil
}

// split turns a leaf into a node whose two halves map to what the leaf did.
func (n *node) split() {
	if n.kids == nil {
		n.kids = &[2]*node{{val: n.val}, {val: n.val}}
		n.val = empty
	}
}

// bit returns bit i (0 is the most significant) of an address's bytes.
func bit(a []byte, i int) int {
	return int(a[i/8]>>(7-i%8)) & 1
}

// insert maps every address of network to v (a value encode accepts),
// replacing what earlier inserts mapped any of them to, as mmdbwriter's
// default inserter does: insert a wide network first and narrower ones
// after it to nest them.
func (w *writer) insert(network string, v any) error {
	p, err := netip.ParsePrefix(strings.TrimSpace(network))
	if err != nil {
		return fmt.Errorf("network %q: %w", network, err)
	}
	p = p.Masked()
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		// ::ffff:a.b.c.d/n is an IPv4 network written the IPv6 way.
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p.Addr().Is6() && w.ipVersion == 4 {
		return fmt.Errorf("network %s is IPv6 but the database is IPv4-only (IPVersion 4)", p)
	}
	if p.Addr().Is4() && w.ipVersion == 6 {
		// IPv4 lives at ::a.b.c.d/96+n in an IPv6 tree.
		a16 := [16]byte{}
		a4 := p.Addr().As4()
		copy(a16[12:], a4[:])
		p = netip.PrefixFrom(netip.AddrFrom16(a16), p.Bits()+96)
	}
	enc, err := encode(nil, v)
	if err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	val, ok := w.index[string(enc)]
	if !ok {
		w.data = append(w.data, enc)
		val = len(w.data)
		w.index[string(enc)] = val
	}
	n, a := w.root, p.Addr().AsSlice()
	for i := range p.Bits() {
		if n.kids == nil && n.val == alias {
			break
		}
		n.split()
		n = n.kids[bit(a, i)]
	}
	if n.kids == nil && n.val == alias {
		for _, al := range aliases {
			if al.Contains(p.Addr()) {
				return fmt.Errorf("network %s is inside %s, which an IPv6 database points at its IPv4 networks; write the IPv4 network instead", network, al)
			}
		}
	}
	n.fill(val)
	return nil
}

// fill maps every address under n to val, keeping the aliases.
func (n *node) fill(val int) {
	switch {
	case n.kids == nil:
		if n.val != alias {
			n.val = val
		}
	case !n.pinned:
		n.kids, n.val = nil, val
	default:
		n.kids[0].fill(val)
		n.kids[1].fill(val)
	}
}

// merge replaces each node whose two halves are leaves with the same value
// by one leaf, bottom-up, so a network split by inserts and then filled
// again is stored, and reported by readers, as one network.
func (n *node) merge() {
	if n.kids == nil {
		return
	}
	n.kids[0].merge()
	n.kids[1].merge()
	l, r := n.kids[0], n.kids[1]
	if !n.pinned && l.kids == nil && r.kids == nil && l.val == r.val {
		n.kids, n.val = nil, l.val
	}
}

// bytes returns the database file: search tree, separator, data section,
// metadata marker and metadata. meta must hold everything but node_count,
// record_size and ip_version, which bytes adds.
func (w *writer) bytes(meta map[string]any) ([]byte, error) {
	w.root.merge()

	// Number the nodes with kids in preorder; the root is node 0 even when
	// it is a leaf (both of its records then say the same).
	var inner []*node
	ids := map[*node]int{}
	var number func(n *node)
	number = func(n *node) {
		if n.kids == nil && n != w.root {
			return
		}
		ids[n] = len(inner)
		inner = append(inner, n)
		if n.kids != nil {
			number(n.kids[0])
			number(n.kids[1])
		}
	}
	number(w.root)
	nodeCount := len(inner)

	// Lay out only the records some leaf still maps to: later inserts may
	// have covered a record everywhere, and readers' verifiers reject data
	// the tree does not point to.
	used := make([]bool, len(w.data))
	var mark func(n *node)
	mark = func(n *node) {
		if n.kids != nil {
			mark(n.kids[0])
			mark(n.kids[1])
		} else if n.val > 0 {
			used[n.val-1] = true
		}
	}
	mark(w.root)
	var data []byte
	offsets := make([]int, len(w.data))
	for i, d := range w.data {
		if used[i] {
			offsets[i] = len(data)
			data = append(data, d...)
		}
	}
	limit := uint64(1) << w.recordSize
	if uint64(nodeCount)+dataSeparator+uint64(len(data)) >= limit {
		return nil, fmt.Errorf("%d nodes and %d bytes of data do not fit %d-bit records", nodeCount, len(data), w.recordSize)
	}

	// record is the value written for a child: a node's number, empty
	// (nodeCount), or a pointer to data counted from the end of the tree.
	// ipv4Record is what the aliases point at: the record ::/96 ends in.
	var ipv4Record uint32
	record := func(n *node) uint32 {
		switch {
		case n.kids != nil:
			return uint32(ids[n])
		case n.val == alias:
			return ipv4Record
		case n.val > 0:
			return uint32(nodeCount + dataSeparator + offsets[n.val-1])
		}
		return uint32(nodeCount)
	}
	if w.ipVersion == 6 {
		n := w.root
		for range ipv4Subtree.Bits() {
			if n.kids == nil {
				break
			}
			n = n.kids[0]
		}
		ipv4Record = record(n) // never an alias: they are off the zero path
	}

	var out bytes.Buffer
	for _, n := range inner {
		l, r := record(n), record(n) // a root that is a leaf
		if n.kids != nil {
			l, r = record(n.kids[0]), record(n.kids[1])
		}
		switch w.recordSize {
		case 24:
			out.Write([]byte{byte(l >> 16), byte(l >> 8), byte(l), byte(r >> 16), byte(r >> 8), byte(r)})
		case 28:
			out.Write([]byte{byte(l >> 16), byte(l >> 8), byte(l), byte(l>>24)<<4 | byte(r>>24)&0x0F, byte(r >> 16), byte(r >> 8), byte(r)})
		case 32:
			out.Write([]byte{byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l), byte(r >> 24), byte(r >> 16), byte(r >> 8), byte(r)})
		}
	}
	out.Write(make([]byte, dataSeparator))
	out.Write(data)
	out.WriteString(metadataMarker)
	m := map[string]any{
		"node_count":  uint32(nodeCount),
		"record_size": uint16(w.recordSize),
		"ip_version":  uint16(w.ipVersion),
	}
	for k, v := range meta {
		m[k] = v
	}
	enc, err := encode(nil, m)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out.Write(enc)
	return out.Bytes(), nil
}
