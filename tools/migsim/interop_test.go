package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/repram/handover/tools/migsim/internal/live"
	"github.com/repram/handover/transport/repramtest"
)

// TestInteropLiveRepram runs `migsim -connect` (through migsim, as main
// does) against three real REPRAM TS substrates with replication 2, a
// partial mesh, on a schedule (every 3 s, for 20 s) with writes at 50/s: it must exit cleanly
// (lost 0, no duplicates) and report the writes the mesh kept from the
// node as not reached, separately. Opt-in: see repramtest.Dir.
func TestInteropLiveRepram(t *testing.T) {
	c := repramtest.Start(t, 3, repramtest.Options{Secret: "live-secret", Replication: 2})
	var addrs []string
	for _, s := range c.Nodes {
		addrs = append(addrs, s.HTTP())
	}
	var out bytes.Buffer
	err := migsim(context.Background(), []string{"-connect", strings.Join(addrs, ","), "-secret", "live-secret", "-enclave", "default",
		"-node-id", "migsim-interop", "-cycle", "1s", "-migrate-every", "3s", "-duration", "20s", "-publish-rate", "50", "-json"}, &out)
	var res live.Result
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
		t.Fatalf("migsim: %v; output %q: %v", err, out.String(), jerr)
	}
	t.Logf("%s\nswitches %+v\nsummary %+v", res.Account, res.SwitchLog, res.Summary)
	if err != nil {
		t.Fatalf("migsim -connect failed: %v (lost %d, duplicates %d)", err, res.Lost, res.DuplicatesDelivered)
	}
	a := res.Account
	if a.Published == 0 || a.Owed == 0 || a.Lost != 0 || a.Duplicates != 0 || a.Owed+a.Edge+a.NotReached != a.Published {
		t.Errorf("published %d = owed %d + edge %d + not reached %d, lost %d, duplicates %d: want writes owed and none lost or duplicated",
			a.Published, a.Owed, a.Edge, a.NotReached, a.Lost, a.Duplicates)
	}
	if res.Switches == 0 || len(res.Substrates) != 3 || len(a.Mesh) != 3 || len(res.Probed) != 3 {
		t.Errorf("switches %d, substrates %v, mesh %v, probed %v: want switches, three substrates, their mesh and Probe measurements",
			res.Switches, res.Substrates, a.Mesh, res.Probed)
	}
	for _, s := range res.SwitchLog {
		if s.Ms < 0 || s.Cause == "" {
			t.Errorf("switch %+v: want its cause and duration", s)
		}
	}
}
