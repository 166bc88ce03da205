package simnet

import (
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// TestRehomeOfANodeAlreadyOverlappingAway: a node mid-overlap from a to b
// when a starts shutting down already holds a welcomed link elsewhere, so
// its rehome time is 0 — not the time to some later welcome (in migsim
// scale at 100,000 nodes that was a policy migration 3.8 s later, reported
// as the rehome maximum).
func TestRehomeOfANodeAlreadyOverlappingAway(t *testing.T) {
	var s *Sim
	shut := false
	s = New(Config{Seed: 1, OnTransition: func(_ NodeID, tr engine.Transition) {
		if tr.Step.To == fsm.Overlapping && !shut {
			shut = true
			s.At(s.Now()+time.Millisecond, func() { s.Shutdown("a") })
		}
	}})
	s.MustAddSubstrate(SubstrateConfig{ID: "a", Enclave: "e", RTT: 40 * time.Millisecond})
	// b forwards nothing, so the overlap lasts past a's first goodbye.
	s.MustAddSubstrate(SubstrateConfig{ID: "b", Enclave: "e", RTT: 2 * time.Millisecond})
	s.SetNoForward("b", true)
	n, err := s.AddNode(NodeConfig{Engine: engine.Config{Enclave: "e"}, Attach: "a", ObserveEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(6 * time.Second); err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	if !shut {
		t.Fatal("the node never overlapped: the test proves nothing")
	}
	if nr := r.Nodes[n]; nr.Rehomes != 1 || nr.Rehome != 0 || len(r.Rehome) != 1 {
		t.Errorf("rehomes %d, rehome %v, all %v: want one rehome of 0 (b was welcomed before a's goodbye)", nr.Rehomes, nr.Rehome, r.Rehome)
	}
}
