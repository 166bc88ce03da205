package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/wire"
)

// checkShape checks that the engine holds exactly the links its state
// stands for.
func checkShape(e *Engine) error {
	p, n := e.primary != nil, len(e.cands)
	welcomed := 0
	for _, c := range e.cands {
		if c.welcome {
			welcomed++
		}
	}
	ok := true
	switch e.State() {
	case fsm.Detached, fsm.Closed:
		ok = !p && n == 0
	case fsm.Joining:
		ok = !p && n >= 1 && welcomed == 0
	case fsm.Attached, fsm.Cooldown:
		ok = p && n == 0
	case fsm.Handshaking:
		ok = p && n >= 1 && welcomed == 0
	case fsm.Overlapping:
		ok = p && n == 1 && welcomed == 1 && e.ov != nil && e.ov.link == e.cands[0].id
	}
	if !ok || n > e.cfg.RaceWidth+1 || (e.ov != nil && e.State() != fsm.Overlapping) {
		return fmt.Errorf("state %s with primary %v, %d candidates (%d welcomed), overlap %v", e.State(), p, n, welcomed, e.ov != nil)
	}
	return nil
}

// TestEngineSoak feeds seeded random inputs, sensible and not, and checks
// after every step: the links fit the state; effects only name links the
// engine dialled and has not closed; hello only on a link just dialled;
// nothing is delivered twice; the transitions chain; and after an accepted
// input the next deadline lies in the future (a shell stepping at it never
// spins).
func TestEngineSoak(t *testing.T) {
	schedules, steps := 200, 300
	if testing.Short() {
		schedules = 50
	}
	subs := []Substrate{subA, subB, subC, subD}
	for seed := range uint64(schedules) {
		rng := rand.New(rand.NewPCG(seed, 99))
		pol := &script{}
		e, err := New(Config{NodeID: "me", Policy: pol, Seed: seed, Tuning: Tuning{RaceWidth: 1 + rng.IntN(3), MissedHeartbeats: 1 + rng.IntN(3)}})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		dialled := map[LinkID]Substrate{}
		closed := map[LinkID]bool{}
		delivered := map[string]bool{}
		// The last steps, formatted only for a failure: formatting every
		// step was most of the soak's time.
		type soakStep struct {
			at   time.Duration
			in   Input
			effs []Effect
			err  error
		}
		var last [15]soakStep
		taken := 0
		fail := func(format string, args ...any) {
			t.Helper()
			var log []string
			for i := max(0, taken-len(last)); i < taken; i++ {
				st := last[i%len(last)]
				log = append(log, fmt.Sprintf("%v %T%+v -> %v (%v)", st.at, st.in, st.in, st.effs, st.err))
			}
			t.Fatalf("seed %d: "+format+"\nlast steps:\n%s", append([]any{seed}, append(args, strings.Join(log, "\n"))...)...)
		}
		anyLink := func() LinkID { return LinkID(1 + rng.IntN(int(e.nextID)+1)) }
		pick := func() Substrate { return subs[rng.IntN(len(subs))] }
		msg := 0
		for range steps {
			var in Input
			switch r := rng.IntN(100); {
			case r < 25:
				if at, ok := e.NextDeadline(); ok {
					now = at
				} else {
					now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
				}
				in = Tick{}
			case r < 30:
				in = Attach{Substrate: pick()}
			case r < 38:
				var cs []Candidate
				for _, s := range subs {
					if rng.IntN(2) == 0 {
						cs = append(cs, Candidate{Substrate: s, Latency: time.Duration(1+rng.IntN(50)) * time.Millisecond})
					}
				}
				switch rng.IntN(3) {
				case 0:
					pol.next = append(pol.next, better(pick().ID))
				case 1:
					pol.next = append(pol.next, policy.Decision{Event: fsm.CooldownElapsed})
				}
				in = Observe{Candidates: cs}
			case r < 50:
				l := anyLink()
				id := dialled[l].ID
				if rng.IntN(8) == 0 {
					id = pick().ID
				}
				in = Welcomed{Link: l, Welcome: welcome(id)}
			case r < 56:
				var alts []wire.Parent
				for i, s := range subs {
					if rng.IntN(3) == 0 {
						alts = append(alts, parent(s.ID, i+1))
					}
				}
				in = GoodbyeReceived{Link: anyLink(), Goodbye: goodbye("x", alts...)}
			case r < 75:
				msg++
				id := fmt.Sprint("m", rng.IntN(msg))
				in = GossipReceived{Link: anyLink(), Message: wireMsg(id, now)}
			case r < 77:
				in = FrameRejected{Link: anyLink(), Err: errors.New("bad")}
			case r < 90:
				pd := PingDone{Link: anyLink(), RTT: time.Duration(1+rng.IntN(100)) * time.Millisecond}
				switch rng.IntN(3) {
				case 0:
					pd.Err = errors.New("timeout")
				case 1:
					pd.Err, pd.Starved = errors.New("starved"), true
				}
				in = pd
			case r < 99:
				in = LinkClosed{Link: anyLink(), Err: errors.New("EOF")}
			default:
				in = Close{}
			}
			now = now.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
			from := e.State()
			effs, err := e.Step(now, in)
			last[taken%len(last)] = soakStep{now.Sub(t0), in, append(last[taken%len(last)].effs[:0], effs...), err}
			taken++
			if err != nil && !errors.Is(err, ErrNotDetached) && !errors.Is(err, ErrClosed) {
				fail("unexpected error %v", err)
			}
			state := from
			justDialled := map[LinkID]bool{}
			for _, f := range effs {
				switch f := f.(type) {
				case Dial:
					if _, dup := dialled[f.Link]; dup || f.Target.URL == "" {
						fail("dial %v: reused id or no URL", f)
					}
					dialled[f.Link], justDialled[f.Link] = f.Target, true
				case SendHello:
					if !justDialled[f.Link] {
						fail("hello on link %d not dialled in this step", f.Link)
					}
				case Ping:
					if _, ok := dialled[f.Link]; !ok || closed[f.Link] {
						fail("ping on link %d: never dialled or closed", f.Link)
					}
				case CloseLink:
					if _, ok := dialled[f.Link]; !ok || closed[f.Link] {
						fail("close on link %d: never dialled or closed twice", f.Link)
					}
					closed[f.Link] = true
				case Deliver:
					if id := f.Gossip.Message.MessageID; delivered[id] {
						fail("%s delivered twice", id)
					} else {
						delivered[id] = true
					}
				case Transitioned:
					if f.Transition.Step.From != state {
						fail("transition %v does not start from %s", f, state)
					}
					state = f.Transition.Step.To
				}
			}
			if state != e.State() {
				fail("transitions end in %s, the engine is in %s", state, e.State())
			}
			if err := checkShape(e); err != nil {
				fail("%v", err)
			}
			// A refused command returns before the deadlines; the shell's
			// timer, due already, steps Tick at once.
			if at, ok := e.NextDeadline(); ok && !at.After(now) && err == nil {
				fail("next deadline %v is not after now %v", at.Sub(t0), now.Sub(t0))
			}
			for _, l := range append([]*link{e.primary}, e.cands...) {
				if l != nil && closed[l.id] {
					fail("link %d is closed but still held", l.id)
				}
			}
		}
	}
}
