package simnet

import (
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// lab is a Sim with every transition recorded.
type lab struct {
	*Sim
	t   testing.TB
	trs map[NodeID][]engine.Transition
	// on, when set, sees every transition as it happens.
	on func(NodeID, engine.Transition)
}

// newLab returns a lab seeded with seed and the given substrates.
func newLab(t testing.TB, seed uint64, subs ...SubstrateConfig) *lab {
	l := &lab{t: t, trs: map[NodeID][]engine.Transition{}}
	l.Sim = New(Config{Seed: seed, OnTransition: func(n NodeID, tr engine.Transition) {
		l.trs[n] = append(l.trs[n], tr)
		if l.on != nil {
			l.on(n, tr)
		}
	}})
	for _, c := range subs {
		l.MustAddSubstrate(c)
	}
	return l
}

// node adds a node with the default engine config.
func (l *lab) node(attach string, at, observe time.Duration) NodeID {
	l.t.Helper()
	id, err := l.AddNode(NodeConfig{Engine: engine.Config{Enclave: "e"}, Attach: attach, At: at, ObserveEvery: observe})
	if err != nil {
		l.t.Fatal(err)
	}
	return id
}

func (l *lab) run(until time.Duration) Report {
	l.t.Helper()
	if err := l.Run(until); err != nil {
		l.dump()
		l.t.Fatal(err)
	}
	return l.Report()
}

// dump logs every transition, for a failing test.
func (l *lab) dump() {
	for n := NodeID(0); int(n) < len(l.nodes) && n < 5; n++ {
		for _, tr := range l.trs[n] {
			l.t.Logf("n%d %v %s --%s[%s]--> %s primary=%s cand=%s: %s", n, l.at(tr), tr.Step.From, tr.Step.Event,
				tr.Step.Guard, tr.Step.To, tr.Primary, tr.Candidate, tr.Reason)
		}
	}
}

// at is a transition's virtual time.
func (l *lab) at(tr engine.Transition) time.Duration { return tr.At.Sub(l.cfg.Epoch) }

// first returns the virtual time of node n's first transition at or after
// from that match, or false.
func (l *lab) first(n NodeID, from time.Duration, match func(engine.Transition) bool) (time.Duration, bool) {
	for _, tr := range l.trs[n] {
		if l.at(tr) >= from && match(tr) {
			return l.at(tr), true
		}
	}
	return 0, false
}

// welcomedElsewhere matches the welcome of a substrate other than old.
func welcomedElsewhere(old string) func(engine.Transition) bool {
	return func(tr engine.Transition) bool {
		return tr.Step.Event == fsm.HandshakeOK && tr.Candidate != "" && tr.Candidate != old ||
			tr.Step.Event == fsm.HandshakeOK && tr.Step.To == fsm.Attached && tr.Primary != old
	}
}

const ms = time.Millisecond

// sub is a substrate config in enclave "e".
func sub(id string, rtt, delay time.Duration) SubstrateConfig {
	return SubstrateConfig{ID: id, Enclave: "e", RTT: rtt, Delay: delay}
}
