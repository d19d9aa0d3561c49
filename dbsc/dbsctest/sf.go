package dbsctest

import (
	"errors"
	"strconv"
	"strings"
)

// A minimal RFC 9651 (Structured Field Values) list parser: enough for
// Secure-Session-Registration (a list of inner lists of tokens with string
// parameters) and Secure-Session-Challenge (a list of strings with an "id"
// parameter). Bare items: strings, tokens, integers, booleans.

// sfToken is a token bare item (distinct from a string).
type sfToken string

// sfMember is a list member: an inner list (Inner non-nil) or an item.
type sfMember struct {
	Item   any   // string, sfToken, int64 or bool; nil for an inner list
	Inner  []any // the inner list's items (their parameters are dropped)
	Params map[string]any
}

var errSF = errors.New("dbsctest: malformed structured field")

// parseSFList parses the combined field value of a list header (repeated
// headers joined with ", ").
func parseSFList(s string) ([]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var out []sfMember
	if p.eof() {
		return nil, nil
	}
	for {
		m, err := p.member()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
		p.skipOWS()
		if p.eof() {
			return out, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSF
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, errSF
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) member() (sfMember, error) {
	var m sfMember
	if !p.eof() && p.s[p.i] == '(' {
		p.i++
		m.Inner = []any{}
		for {
			p.skipSP()
			if p.eof() {
				return m, errSF
			}
			if p.s[p.i] == ')' {
				p.i++
				break
			}
			it, err := p.bareItem()
			if err != nil {
				return m, err
			}
			if _, err := p.params(); err != nil {
				return m, err
			}
			m.Inner = append(m.Inner, it)
			if !p.eof() && p.s[p.i] != ' ' && p.s[p.i] != ')' {
				return m, errSF
			}
		}
	} else {
		it, err := p.bareItem()
		if err != nil {
			return m, err
		}
		m.Item = it
	}
	params, err := p.params()
	m.Params = params
	return m, err
}

func (p *sfParser) params() (map[string]any, error) {
	params := map[string]any{}
	for !p.eof() && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		key := p.key()
		if key == "" {
			return nil, errSF
		}
		var v any = true
		if !p.eof() && p.s[p.i] == '=' {
			p.i++
			var err error
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		params[key] = v
	}
	return params, nil
}

func (p *sfParser) key() string {
	start := p.i
	for !p.eof() {
		c := p.s[p.i]
		if (c >= 'a' && c <= 'z') || c == '*' || (p.i > start && ((c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i]
}

func (p *sfParser) bareItem() (any, error) {
	if p.eof() {
		return nil, errSF
	}
	c := p.s[p.i]
	switch {
	case c == '"':
		p.i++
		var b strings.Builder
		for !p.eof() {
			c := p.s[p.i]
			p.i++
			switch {
			case c == '\\':
				if p.eof() || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
					return nil, errSF
				}
				b.WriteByte(p.s[p.i])
				p.i++
			case c == '"':
				return b.String(), nil
			case c < 0x20 || c > 0x7e:
				return nil, errSF
			default:
				b.WriteByte(c)
			}
		}
		return nil, errSF
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-1] == '1', nil
		}
		return nil, errSF
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		p.i++
		for !p.eof() && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil {
			return nil, errSF
		}
		return n, nil
	case (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*':
		start := p.i
		for !p.eof() && (isAlnum(p.s[p.i]) || strings.IndexByte("!#$%&'*+-.^_`|~:/", p.s[p.i]) >= 0) {
			p.i++
		}
		return sfToken(p.s[start:p.i]), nil
	default:
		return nil, errSF
	}
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
