package table

import (
	"bytes"
	"testing"
)

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	Write(&b, [][]string{{"n", "name", "note"}, {"── heading ──"}, {"10", "é", "x"}, {"2", "long name", ""}}, 1)
	want := " n  name       note\n── heading ──\n10  é          x\n 2  long name\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
	if Dash("") != "-" || Dash("a") != "a" {
		t.Error("Dash")
	}
}
