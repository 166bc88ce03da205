package simnet

import (
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/engine"
)

// eagerPolicy names the best other substrate every cycle and never ends a
// cooldown: only the chart keeps the node from migrating in cooldown.
type eagerPolicy struct{}

func (eagerPolicy) Evaluate(o policy.Snapshot) policy.Decision {
	for _, c := range o.Candidates {
		if c.ID != o.Current.ID && c.Latency > 0 {
			return policy.Decision{Event: fsm.CandidateBetter, Candidate: c, Reason: "eager"}
		}
	}
	return policy.Decision{}
}
func (eagerPolicy) Attached(string)        {}
func (eagerPolicy) MigrationFailed(string) {}
func (eagerPolicy) Forced()                {}

// TestCooldownHoldsAgainstAnEagerPolicy: the chart ignores candidate_better
// in cooldown, so a policy that asks for a migration every cycle gets one,
// then none until it says the cooldown elapsed.
func TestCooldownHoldsAgainstAnEagerPolicy(t *testing.T) {
	l := newLab(t, 1, sub("a", 2*time.Millisecond, 2*time.Millisecond), sub("b", 2*time.Millisecond, 3*time.Millisecond),
		SubstrateConfig{ID: "w", Enclave: "w", RTT: time.Millisecond, Hidden: true})
	l.PublishRate("w", 50, 0, 20*time.Second)
	n, err := l.AddNode(NodeConfig{Engine: engine.Config{Enclave: "e", Policy: eagerPolicy{}}, Attach: "a", ObserveEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := l.run(25 * time.Second)
	if nr := r.Nodes[n]; nr.Stats.Migrations != 1 || nr.State != fsm.Cooldown || nr.Lost != 0 {
		l.dump()
		t.Fatalf("%+v: want one migration, then cooldown held for good", nr)
	}
}
