package dbsctest

import (
	"reflect"
	"testing"
)

// The draft's examples (spec.bs, sections on Secure-Session-Registration and
// Secure-Session-Challenge) parse as the draft describes them.
func TestParseSFListDraftExamples(t *testing.T) {
	reg, err := parseSFList(`(ES256);path="reg1";challenge="cv1";authorization="a", (RS256);path="reg2";challenge="cv2";authorization="b"`)
	if err != nil || len(reg) != 2 {
		t.Fatalf("%v %v", reg, err)
	}
	if !reflect.DeepEqual(reg[1].Inner, []any{sfToken("RS256")}) || reg[1].Params["path"] != "reg2" || reg[1].Params["authorization"] != "b" {
		t.Fatalf("second entry %+v", reg[1])
	}
	reg, err = parseSFList(`(ES256 RS256);path="reg";challenge="cv"`)
	if err != nil || len(reg) != 1 || len(reg[0].Inner) != 2 || reg[0].Params["challenge"] != "cv" {
		t.Fatalf("%+v %v", reg, err)
	}
	ch, err := parseSFList(`"c1";id="session 1", "c2";id="session 2"`)
	if err != nil || len(ch) != 2 || ch[1].Item != "c2" || ch[1].Params["id"] != "session 2" {
		t.Fatalf("%+v %v", ch, err)
	}
	esc, err := parseSFList(`"a\"b\\c";id="x"`)
	if err != nil || esc[0].Item != `a"b\c` {
		t.Fatalf("%+v %v", esc, err)
	}
	for _, bad := range []string{`(ES256`, `"open`, `"c";id=`, `a,`, `"bad\x"`, `(ES256);path="p",`} {
		if m, err := parseSFList(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, m)
		}
	}
}
