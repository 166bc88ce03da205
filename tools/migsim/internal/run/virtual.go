package run

import (
	"fmt"
	"time"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/tools/migsim/internal/timeline"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/simnet"
)

// Virtual runs the scenario in virtual time over transport/simnet: the
// same engine a transport.Node runs, no socket, no clock, the same result
// for the same scenario every time. Each link's round trip is the latency
// the scenario gives its substrate in the current cycle (over loopback it
// is well under a millisecond, and the latencies are only what the policy
// is told), so handshakes and forwarding take longer here than on
// loopback; the decisions are the same (see TestBackendsAgree). A mute
// substrate answers hellos after a day, and every corruption is a frame
// that fails to decode.
func Virtual(sc *scenario.Scenario, opt Options) (*Result, error) {
	opt, err := opt.WithDefaults()
	if err != nil {
		return nil, err
	}
	cycle := sc.Cycle.D()
	res := &Result{Scenario: sc, Options: opt, Virtual: true, Alive: make([][]bool, len(sc.Substrates))}
	for i := range res.Alive {
		res.Alive[i] = make([]bool, sc.Cycles+1)
	}
	var (
		entries []timeline.Entry
		prim    string
		curC    int
		armed   []scenario.Fault
		dead    = make([]bool, len(sc.Substrates))
		s       *simnet.Sim
	)
	add := func(e timeline.Entry) {
		e.At = s.Now()
		e.Cycle = curC
		entries = append(entries, e)
	}
	onTransition := func(_ simnet.NodeID, tr engine.Transition) {
		e := timeline.Entry{Kind: timeline.KindTransition, Step: tr.Step, Primary: tr.Primary, Candidate: tr.Candidate, Reason: tr.Reason, PrevPrimary: prim}
		prim = tr.Primary
		add(e)
		leaving := e.Leaving()
		for i := 0; leaving != "" && i < len(armed); i++ {
			if f := armed[i]; f.Substrate == leaving {
				armed = append(armed[:i], armed[i+1:]...)
				i--
				s.At(s.Now()+f.After.D(), func() { applyVirtual(s, sc, f, dead, add) })
			}
		}
	}
	s = simnet.New(simnet.Config{Seed: sc.Seed, OnTransition: onTransition,
		LinkRTT: func(_ simnet.NodeID, sub int, _ time.Duration) time.Duration {
			if sub >= len(sc.Substrates) {
				return time.Millisecond // the publisher's
			}
			if l := sc.Latency(sub, max(curC, 1)); l > 0 {
				return l
			}
			return time.Millisecond
		}})
	for _, sp := range sc.Substrates {
		if err := s.AddSubstrate(simnet.SubstrateConfig{ID: sp.ID, Enclave: sp.Enclave, Delay: sp.Delay.D(), RTT: time.Millisecond}); err != nil {
			return nil, err
		}
	}
	if err := s.AddSubstrate(simnet.SubstrateConfig{ID: "publisher", Enclave: "publisher", Hidden: true, RTT: time.Millisecond}); err != nil {
		return nil, err
	}
	cfg := sc.TransportConfig(sc.Node.ID)
	dec, err := policy.NewStrategy(opt.Policy, cfg.Policy)
	if err != nil {
		return nil, err
	}
	n, err := s.AddNode(simnet.NodeConfig{Attach: sc.Start, Engine: engine.Config{NodeID: sc.Node.ID, Enclave: sc.Node.Enclave,
		Policy: dec, Tuning: cfg.Tuning, BreakBeforeMake: opt.Strategy == BreakBeforeMake, Seed: sc.Seed}})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(sc.Substrates))
	for i, sp := range sc.Substrates {
		ids[i] = sp.ID
	}
	if sc.PublishRate > 0 {
		s.PublishRate("publisher", sc.PublishRate, 0, time.Duration(sc.Cycles)*cycle)
	}
	var ferr error
	for c := 1; c <= sc.Cycles; c++ {
		s.At(time.Duration(c-1)*cycle, func() {
			curC = c
			for _, p := range sc.Phases {
				if p.From == c {
					add(timeline.Entry{Kind: timeline.KindPhase, Reason: p.Name})
				}
			}
			for _, f := range sc.Faults {
				switch {
				case f.Cycle != c:
				case f.When == "leaving":
					armed = append(armed, f)
				default:
					if err := applyVirtual(s, sc, f, dead, add); err != nil && ferr == nil {
						ferr = err
					}
				}
			}
		})
		s.At(time.Duration(c)*cycle, func() {
			var alive []string
			for i, id := range ids {
				res.Alive[i][c] = !dead[i]
				if !dead[i] {
					alive = append(alive, id)
				}
			}
			s.Observe(n, alive...)
		})
	}
	// Drain as Sockets does (the longest a migration may take), then close the
	// node as Sockets does.
	end := time.Duration(sc.Cycles)*cycle + sc.Transport.OverlapMax.D() + time.Second
	s.At(end, func() { s.Close(n) })
	if err := s.Run(end); err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, ferr
	}
	r := s.Report()
	nr := r.Nodes[n]
	res.Entries = entries
	res.Elapsed = time.Duration(sc.Cycles) * cycle
	st := nr.Stats
	sum := Summary{Scenario: sc.Name, Strategy: opt.Strategy, Policy: string(opt.Policy), Cycles: sc.Cycles,
		Seconds: res.Elapsed.Seconds(), Published: r.Published, Owed: nr.Owed, Delivered: nr.Delivered,
		DuplicatesDelivered: nr.Duplicates, Lost: nr.Lost}
	res.Summary = finishSummary(sum, res, st)
	return res, nil
}

// applyVirtual applies fault f to the simulated network.
func applyVirtual(s *simnet.Sim, sc *scenario.Scenario, f scenario.Fault, dead []bool, add func(timeline.Entry)) error {
	i := sc.Index(f.Substrate)
	switch f.Action {
	case "refuse":
		s.SetFull(f.Substrate, true)
	case "no_forward":
		s.SetNoForward(f.Substrate, true)
	case "mute": // a hello answered after the run: never
		s.SetSlowHello(f.Substrate, 24*time.Hour)
	case "welcome_delay":
		d, _ := time.ParseDuration(f.Value)
		s.SetSlowHello(f.Substrate, d)
	case "corrupt": // every kind of corruption is a frame that fails to decode here
		s.SetBadFrames(f.Substrate, true)
	case "heal":
		s.SetFull(f.Substrate, false)
		s.SetNoForward(f.Substrate, false)
		s.SetSlowHello(f.Substrate, 0)
		s.SetBadFrames(f.Substrate, false)
	case "delay":
		d, _ := time.ParseDuration(f.Value)
		s.SetDelay(f.Substrate, d)
	case "kill":
		dead[i] = true
		s.Kill(f.Substrate)
	case "shutdown":
		dead[i] = true
		s.Shutdown(f.Substrate)
	default:
		return fmt.Errorf("migsim run -virtual: fault %q has no virtual-time counterpart: run the scenario over sockets", f.Action)
	}
	add(timeline.Entry{Kind: timeline.KindFault, Primary: f.Substrate, Reason: scenario.FaultActions[f.Action]})
	return nil
}
