package fsm

import "testing"

func TestDeclarationIsTotal(t *testing.T) {
	if err := Declaration().Validate(); err != nil {
		t.Fatal(err)
	}
}
