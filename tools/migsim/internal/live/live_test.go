package live

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLiveAgainstSubstratetest(t *testing.T) {
	t.Parallel()
	secret := []byte("live-secret")
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: secret})
	defer mesh.Close()
	var targets []string
	for i, id := range []string{"live-a", "live-b", "live-c"} {
		s, err := mesh.Start(substratetest.Config{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			targets = append(targets, s.Addr()) // learned by probing
		} else {
			targets = append(targets, id+"@"+s.Addr())
		}
	}
	// The run ends once the node has completed two scheduled migrations (on
	// a loaded machine that takes longer, never fails for it), bounded by
	// dur; gossip is published into the mesh until then, so that the run's
	// wait for quiet can end.
	const dur, want = 10 * time.Second, 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stop atomic.Bool
	migrated := 0
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for begin := time.Now(); !stop.Load() && time.Since(begin) < dur; {
			if _, err := mesh.Publish(wire.Message{Data: []byte("x")}); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	res, err := Run(ctx, Config{Targets: targets, Secret: secret, Enclave: substratetest.DefaultEnclave,
		NodeID: "live-node", Cycle: 20 * time.Millisecond, MigrateEvery: 20 * time.Millisecond, Duration: dur,
		PublishRate: 100, Quiet: 100 * time.Millisecond,
		OnTransition: func(tr transport.Transition) {
			if tr.Step.Event == fsm.OverlapDone {
				if migrated++; migrated == want {
					stop.Store(true)
					cancel()
				}
			}
		},
		Transport: scenario.Timings{OverlapFloor: scenario.Duration(30 * time.Millisecond), OverlapGrace: scenario.Duration(60 * time.Millisecond),
			OverlapMax: scenario.Duration(time.Second), HandshakeTimeout: scenario.Duration(time.Second), Heartbeat: scenario.Duration(100 * time.Millisecond)}})
	stop.Store(true)
	<-pubDone
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Migrations < 2 || res.Switches != res.Migrations || res.DistinctIDs == 0 || res.GossipDelivered != res.DistinctIDs {
		t.Fatalf("%+v: want scheduled migrations, each a switch, and gossip delivered once each", res)
	}
	// The writes migsim made over the substrates' HTTP API, each on a
	// substrate neither primary nor candidate, came back through the mesh.
	if res.Owed == 0 || res.PublishErrors != 0 || res.Lost != 0 || res.DuplicatesDelivered != 0 {
		t.Fatalf("published %d, owed %d, refused %d, lost %d, duplicated %d: want writes owed, none refused, lost or duplicated",
			res.Published, res.Owed, res.PublishErrors, res.Lost, res.DuplicatesDelivered)
	}
}
