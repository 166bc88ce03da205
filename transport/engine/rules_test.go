package engine

import (
	"errors"
	"fmt"
	"github.com/repram/handover/transport/wire"
	"slices"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
)

// The tests of the engine's rules (rules.go): each drives a real Engine with
// scripted inputs at explicit virtual times and asserts the exact effects.

func TestRuleAttachCommand(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(d *driver)
		attach  Substrate
		wantErr error // nil: accepted
		effects []string
		state   fsm.State
	}{
		{name: "detached: dial, hello, attach",
			attach: subA, effects: []string{"dial 1 a", "hello 1", "detached --attach--> joining"}, state: fsm.Joining},
		{name: "by URL only",
			attach: Substrate{URL: subA.URL}, effects: []string{"dial 1 ", "hello 1", "detached --attach--> joining"}, state: fsm.Joining},
		{name: "joining: refused",
			setup:  func(d *driver) { d.step(Attach{Substrate: subA}) },
			attach: subB, wantErr: ErrNotDetached, state: fsm.Joining},
		{name: "attached: refused",
			setup:  func(d *driver) { d.attached(subA) },
			attach: subB, wantErr: ErrNotDetached, state: fsm.Attached},
		{name: "no URL: refused",
			attach: Substrate{ID: "a"}, wantErr: ErrNotDialable, state: fsm.Detached},
		{name: "this node: refused",
			attach: Substrate{ID: "me", URL: subA.URL}, wantErr: ErrNotDialable, state: fsm.Detached},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			if tc.setup != nil {
				tc.setup(d)
			}
			effs, err := d.e.Step(d.now, Attach{Substrate: tc.attach})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			want(t, "effects", strs(effs), tc.effects...)
			if s := d.e.State(); s != tc.state {
				t.Errorf("state %s, want %s", s, tc.state)
			}
			if _, ok := d.e.NextDeadline(); tc.state == fsm.Joining && !ok {
				t.Error("joining without a deadline: the handshake is not bounded")
			}
		})
	}
}

func TestRuleCloseCommand(t *testing.T) {
	d := newDriver(t, quiet(Config{}))
	d.migrating(subA, subB)
	want(t, "close", d.at(time.Second).step(Close{}),
		"close 1 normal", "close 2 normal", "closed", "handshaking --close--> closed")
	if _, ok := d.e.NextDeadline(); ok {
		t.Error("a closed engine has a deadline")
	}
	for _, in := range []Input{Attach{Substrate: subC}, Observe{}} {
		if effs, err := d.e.Step(d.now, in); !errors.Is(err, ErrClosed) || len(effs) != 0 {
			t.Errorf("%T after close: %v %v, want ErrClosed and no effect", in, effs, err)
		}
	}
	for _, in := range []Input{Close{}, Welcomed{Link: 2, Welcome: welcome("b")}, LinkClosed{Link: 1},
		PingDone{Link: 1, Err: errors.New("timeout")}, d.gossip(1, "m1"), Tick{}} {
		if effs, err := d.e.Step(d.now, in); err != nil || len(effs) != 0 {
			t.Errorf("%T after close: %v %v, want nothing", in, effs, err)
		}
	}
}

// dropped brings the engine to attached on a, with link 2 (to b) dropped:
// the policy's candidate failed its dial.
func dropped(t *testing.T) *driver {
	d := newDriver(t, quiet(Config{}))
	d.migrating(subA, subB)
	want(t, "candidate failed", d.step(LinkClosed{Link: 2, Err: errors.New("refused")}),
		"close 2 abort", "handshaking --new_failed--> attached")
	return d
}

func TestRuleStaleReport(t *testing.T) {
	for _, link := range []LinkID{2, 99} {
		for _, in := range []Input{
			Welcomed{Link: link, Welcome: welcome("b")},
			GoodbyeReceived{Link: link, Goodbye: goodbye("shutdown", parent("c", 3))},
			GossipReceived{Link: link, Message: wireMsg("m1", t0)},
			FrameRejected{Link: link, Err: errors.New("bad signature")},
		} {
			t.Run(fmt.Sprintf("%T from link %d", in, link), func(t *testing.T) {
				d := dropped(t)
				before := d.e.Stats()
				want(t, "effects", d.step(in))
				after := d.e.Stats()
				if after.StaleEventsDropped != before.StaleEventsDropped+1 {
					t.Errorf("StaleEventsDropped %d → %d, want +1", before.StaleEventsDropped, after.StaleEventsDropped)
				}
				after.StaleEventsDropped = before.StaleEventsDropped
				if after != before {
					t.Errorf("stats changed beyond the stale count:\n%+v\n%+v", before, after)
				}
				if d.e.State() != fsm.Attached || len(d.e.Known()) != 2 {
					t.Errorf("state %s, known %v: a stale report changed the engine", d.e.State(), d.e.Known())
				}
			})
		}
	}
}

func TestRuleStaleCloseOrPing(t *testing.T) {
	for _, in := range []Input{
		LinkClosed{Link: 2, Err: errors.New("closed by us")},
		PingDone{Link: 2, Err: errors.New("link closed")},
		PingDone{Link: 2, RTT: time.Millisecond},
		LinkClosed{Link: 99},
	} {
		t.Run(fmt.Sprintf("%T %+v", in, in), func(t *testing.T) {
			d := dropped(t)
			before := d.e.Stats()
			want(t, "effects", d.step(in))
			if after := d.e.Stats(); after != before {
				t.Errorf("stats changed:\n%+v\n%+v", before, after)
			}
		})
	}
}

func wireMsg(id string, at time.Time) wire.Message {
	return wire.Message{Type: "PUT", From: "pub", Timestamp: at.Unix(), MessageID: id}
}

func TestRuleWelcome(t *testing.T) {
	member := func(id, addr string, httpPort int) wire.Message {
		return wire.Message{Type: "SYNC", NodeInfo: &wire.NodeInfo{ID: id, Address: addr, Port: 9090, HTTPPort: httpPort}}
	}
	tests := []struct {
		name      string
		url       string
		topology  []wire.Message
		wantKnown []Substrate
	}{
		{name: "dialled by URL: the id is learned", url: "ws://10.0.0.1:8080/v1/ws",
			wantKnown: []Substrate{subA}},
		{name: "topology learned, never this node nor a member without HTTP port", url: subA.URL,
			topology: []wire.Message{member("b", "10.0.0.2", 8080), member("me", "10.0.0.9", 8080),
				member("x", "10.0.0.8", 0), {Type: "SYNC"}, member("c", "::1", 8080)},
			wantKnown: []Substrate{subA, subB, {ID: "c", URL: "ws://[::1]:8080/v1/ws"}}},
		{name: "wss link: wss members", url: "wss://10.0.0.1:8443/v1/ws",
			topology:  []wire.Message{member("b", "10.0.0.2", 8443)},
			wantKnown: []Substrate{{ID: "a", URL: "wss://10.0.0.1:8443/v1/ws"}, {ID: "b", URL: "wss://10.0.0.2:8443/v1/ws"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			d.step(Attach{Substrate: Substrate{URL: tc.url}})
			w := welcome("a")
			w.Topology = tc.topology
			want(t, "welcome", d.at(30*time.Millisecond).step(Welcomed{Link: 1, Welcome: w}),
				"joining --handshake_ok--> attached", "ping 1")
			if _, p, ok := d.e.Primary(); !ok || p.ID != "a" || p.URL != tc.url {
				t.Errorf("primary %+v %v, want a at %s", p, ok, tc.url)
			}
			if got := d.e.Known(); !slices.Equal(got, tc.wantKnown) {
				t.Errorf("known %+v, want %+v", got, tc.wantKnown)
			}
		})
	}
}

func TestRuleWelcomeWrongParent(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(d *driver)
		link    LinkID
		cand    Substrate
		effects []string
	}{
		{name: "joining", setup: func(d *driver) { d.step(Attach{Substrate: subA}) }, link: 1, cand: subA,
			effects: []string{"close 1 abort", "joining --new_failed--> detached"}},
		{name: "handshaking", setup: func(d *driver) { d.migrating(subA, subB) }, link: 2, cand: subB,
			effects: []string{"close 2 abort", "handshaking --new_failed--> attached"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			want(t, "welcome from x", d.at(time.Second).step(Welcomed{Link: tc.link, Welcome: welcome("x")}), tc.effects...)
			if n := d.e.Stats().FramesRejected; n != 1 {
				t.Errorf("FramesRejected %d, want 1", n)
			}
			d.backedOff(tc.cand, 1)
		})
	}
}

func TestRuleDuplicateWelcome(t *testing.T) {
	tests := []struct {
		name  string
		setup func(d *driver)
		link  LinkID
	}{
		{"primary", func(d *driver) { d.attached(subA) }, 1},
		{"welcomed candidate", func(d *driver) { d.overlapping(subA, subB) }, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			before, state := d.e.Stats(), d.e.State()
			want(t, "second welcome", d.at(500*time.Millisecond).step(Welcomed{Link: tc.link, Welcome: welcome("x")}))
			if after := d.e.Stats(); after != before || d.e.State() != state {
				t.Errorf("a duplicate welcome changed the engine: %s → %s\n%+v\n%+v", state, d.e.State(), before, after)
			}
		})
	}
}

func TestRuleCandidateGoodbye(t *testing.T) {
	refusal := goodbye("at capacity", parent("c", 3))
	tests := []struct {
		name    string
		setup   func(d *driver) LinkID // returns the refusing candidate's link
		effects []string
		queued  bool // c joined the queue
	}{
		{name: "first attach: the alternatives are raced",
			setup:   func(d *driver) LinkID { d.step(Attach{Substrate: subB}); return 1 },
			effects: []string{"close 1 abort", "dial 2 c", "hello 2", "joining --new_failed--> joining"}, queued: true},
		{name: "policy migration: cancelled, alternatives not queued",
			setup:   func(d *driver) LinkID { d.migrating(subA, subB); return 2 },
			effects: []string{"close 2 abort", "handshaking --new_failed--> attached"}},
		{name: "forced move: the alternatives are raced",
			setup: func(d *driver) LinkID {
				d.attached(subA)
				want(t, "goodbye", d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", parent("b", 2))}),
					"dial 2 b", "hello 2", "attached --goodbye--> handshaking")
				return 2
			},
			effects: []string{"close 2 abort", "dial 3 c", "hello 3", "handshaking --new_failed--> handshaking"}, queued: true},
		{name: "rejoin: the alternatives are raced",
			setup: func(d *driver) LinkID {
				d.step(Attach{Substrate: subB})
				want(t, "dial failed", d.step(LinkClosed{Link: 1}), "close 1 abort", "joining --new_failed--> detached")
				want(t, "rejoin", transitions(d.until(250*time.Millisecond)), "detached --attach--> joining")
				return 2
			},
			effects: []string{"close 2 abort", "dial 3 c", "hello 3", "joining --new_failed--> joining"}, queued: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			link := tc.setup(d)
			failures := d.known(subB).failures
			want(t, "refusal", d.at(300*time.Millisecond).step(GoodbyeReceived{Link: link, Goodbye: refusal}), tc.effects...)
			d.backedOff(subB, failures+1)
			if got := d.e.reg.find(subC) != nil; !got {
				t.Error("the refusal's alternative c was not learned")
			}
			raced := slices.ContainsFunc(d.e.Candidates(), func(s Substrate) bool { return s.ID == "c" })
			if raced != tc.queued {
				t.Errorf("c racing = %v, want %v", raced, tc.queued)
			}
		})
	}
}

func TestRulePrimaryGoodbye(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(d *driver) LinkID
		bye     wire.Goodbye
		effects []string
		state   fsm.State
	}{
		{name: "attached: forced move to the alternative",
			setup: func(d *driver) LinkID { d.attached(subA); return 1 }, bye: goodbye("shutdown", parent("b", 2)),
			effects: []string{"dial 2 b", "hello 2", "attached --goodbye--> handshaking"}, state: fsm.Handshaking},
		{name: "attached: known substrates are alternatives too",
			setup: func(d *driver) LinkID {
				d.attached(subA)
				d.observe(policy.Decision{}, Candidate{Substrate: subC})
				return 1
			}, bye: goodbye("shutdown"),
			effects: []string{"dial 2 c", "hello 2", "attached --goodbye--> handshaking"}, state: fsm.Handshaking},
		{name: "attached: no usable alternative, the leaving link is kept",
			setup: func(d *driver) LinkID { d.attached(subA); return 1 }, bye: goodbye("shutdown", parent("me", 9), parent("a", 1)),
			state: fsm.Attached},
		{name: "cooldown: forced move",
			setup: func(d *driver) LinkID { d.cooldown(subA, subB); return 2 }, bye: goodbye("shutdown", parent("c", 3)),
			// a was measured (its pong), c never: a first.
			effects: []string{"dial 3 a", "hello 3", "cooldown --goodbye--> handshaking"}, state: fsm.Handshaking},
		{name: "handshaking: the policy's candidate goes on, the alternatives wait in the queue",
			setup: func(d *driver) LinkID { d.migrating(subA, subB); return 1 }, bye: goodbye("shutdown", parent("c", 3)),
			state: fsm.Handshaking},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			link := tc.setup(d)
			_, leaving, _ := d.e.Primary()
			want(t, "goodbye", d.at(3*time.Second).step(GoodbyeReceived{Link: link, Goodbye: tc.bye}), tc.effects...)
			if s := d.e.State(); s != tc.state {
				t.Errorf("state %s, want %s", s, tc.state)
			}
			if id, _, ok := d.e.Primary(); !ok || id != link {
				t.Errorf("primary link %d %v, want the leaving link %d kept", id, ok, link)
			}
			d.backedOff(leaving, 1)
			if !d.e.primary.goodbye {
				t.Error("the primary is not marked leaving")
			}
		})
	}
	// The queued alternatives replace a failed policy candidate.
	t.Run("handshaking: then the candidate fails", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.migrating(subA, subB)
		d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", parent("c", 3))})
		want(t, "candidate fails", d.at(time.Second).step(LinkClosed{Link: 2}),
			"close 2 abort", "dial 3 c", "hello 3", "handshaking --new_failed--> handshaking")
	})
}

func TestRuleRepeatedGoodbye(t *testing.T) {
	d := newDriver(t, quiet(Config{}))
	d.attached(subA)
	d.at(time.Second)
	want(t, "first goodbye", d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", parent("b", 2))}),
		"dial 2 b", "hello 2", "attached --goodbye--> handshaking")
	until := d.known(subA).until
	for _, bye := range []wire.Goodbye{goodbye("shutdown", parent("b", 2)), goodbye("shutdown", parent("c", 3)), goodbye("")} {
		want(t, "repeated goodbye", d.at(1100*time.Millisecond).step(GoodbyeReceived{Link: 1, Goodbye: bye}))
	}
	if k := d.known(subA); k.failures != 1 || !k.until.Equal(until) {
		t.Errorf("a repeated goodbye backed a off again: %d failures, until %v (was %v)", k.failures, k.until.Sub(t0), until.Sub(t0))
	}
	if d.e.State() != fsm.Handshaking || len(d.e.Candidates()) != 1 {
		t.Errorf("state %s, candidates %v: want the one race of the first goodbye", d.e.State(), d.e.Candidates())
	}
	// After a cancel the leaving link is still kept, and a further goodbye
	// does not start a second forced move.
	want(t, "candidate fails", d.step(LinkClosed{Link: 2}), "close 2 abort", "handshaking --new_failed--> attached")
	want(t, "goodbye after the cancel", d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")}))
	// The repeated goodbyes' alternatives were learned: the reattach
	// races them, b (failed) last.
	want(t, "the leaving link closes", d.step(LinkClosed{Link: 1}),
		"close 1 abort", "dial 3 c", "hello 3", "attached --old_died--> joining")
	if k := d.known(subA); k.failures != 1 {
		t.Errorf("a: %d failures after its close, want 1", k.failures)
	}
}

func TestRuleLinkClosed(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(d *driver)
		link    LinkID
		effects []string
		backoff map[string]int // failures per substrate after the close
	}{
		{name: "primary, an alternative known: reattach",
			setup: func(d *driver) { d.attached(subA); d.observe(policy.Decision{}, Candidate{Substrate: subB}) }, link: 1,
			effects: []string{"close 1 abort", "dial 2 b", "hello 2", "attached --old_died--> joining"}, backoff: map[string]int{"a": 1}},
		{name: "primary, nothing else known: detach",
			setup: func(d *driver) { d.attached(subA) }, link: 1,
			effects: []string{"close 1 abort", "attached --old_died--> detached"}, backoff: map[string]int{"a": 1}},
		{name: "primary that said goodbye: not backed off twice",
			setup: func(d *driver) { d.attached(subA); d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")}) }, link: 1,
			effects: []string{"close 1 abort", "attached --old_died--> detached"}, backoff: map[string]int{"a": 1}},
		{name: "primary mid-handshake: the candidate goes on alone",
			setup: func(d *driver) { d.migrating(subA, subB) }, link: 1,
			effects: []string{"close 1 abort", "handshaking --old_died--> joining"}, backoff: map[string]int{"a": 1, "b": 0}},
		{name: "primary mid-overlap: the new link is promoted",
			setup: func(d *driver) { d.overlapping(subA, subB) }, link: 1,
			effects: []string{"close 1 abort", "overlapping --old_died--> cooldown"}, backoff: map[string]int{"a": 1, "b": 0}},
		{name: "candidate of a policy migration: cancel",
			setup: func(d *driver) { d.migrating(subA, subB) }, link: 2,
			effects: []string{"close 2 abort", "handshaking --new_failed--> attached"}, backoff: map[string]int{"a": 0, "b": 1}},
		{name: "welcomed candidate: cancel",
			setup: func(d *driver) { d.overlapping(subA, subB) }, link: 2,
			effects: []string{"close 2 abort", "overlapping --new_failed--> attached"}, backoff: map[string]int{"a": 0, "b": 1}},
		{name: "joining: detach",
			setup: func(d *driver) { d.step(Attach{Substrate: subA}) }, link: 1,
			effects: []string{"close 1 abort", "joining --new_failed--> detached"}, backoff: map[string]int{"a": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			want(t, "closed", d.at(500*time.Millisecond).step(LinkClosed{Link: tc.link, Err: errors.New("EOF")}), tc.effects...)
			for id, n := range tc.backoff {
				if id == "a" && n == 1 && tc.name == "primary that said goodbye: not backed off twice" {
					if k := d.known(subA); k.failures != 1 {
						t.Errorf("a: %d failures, want 1", k.failures)
					}
					continue
				}
				d.backedOff(map[string]Substrate{"a": subA, "b": subB}[id], n)
			}
		})
	}
}

func TestRuleBadFrame(t *testing.T) {
	bad := errors.New("signature does not verify")
	t.Run("primary: the frame alone is dropped", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.migrating(subA, subB)
		want(t, "bad frame", d.at(time.Second).step(FrameRejected{Link: 1, Err: bad}))
		if d.e.State() != fsm.Handshaking || d.e.Stats().FramesRejected != 1 || d.known(subA).failures != 0 {
			t.Errorf("state %s, stats %+v, a failures %d", d.e.State(), d.e.Stats(), d.known(subA).failures)
		}
		if id, _, _ := d.e.Primary(); id != 1 {
			t.Errorf("primary link %d, want 1 kept", id)
		}
		want(t, "the link still delivers", d.step(d.gossip(1, "m1")), "deliver m1 via a")
	})
	for _, tc := range []struct {
		name    string
		setup   func(d *driver)
		effects []string
	}{
		{"candidate", func(d *driver) { d.migrating(subA, subB) }, []string{"close 2 abort", "handshaking --new_failed--> attached"}},
		{"welcomed candidate", func(d *driver) { d.overlapping(subA, subB) }, []string{"close 2 abort", "overlapping --new_failed--> attached"}},
	} {
		t.Run(tc.name+": fails", func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			want(t, "bad frame", d.at(500*time.Millisecond).step(FrameRejected{Link: 2, Err: bad}), tc.effects...)
			if d.e.Stats().FramesRejected != 1 {
				t.Errorf("FramesRejected %d, want 1", d.e.Stats().FramesRejected)
			}
			d.backedOff(subB, 1)
		})
	}
}

func TestRuleGossipBeforeWelcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(d *driver)
		link    LinkID
		effects []string
	}{
		{"joining", func(d *driver) { d.step(Attach{Substrate: subA}) }, 1, []string{"close 1 abort", "joining --new_failed--> detached"}},
		{"handshaking", func(d *driver) { d.migrating(subA, subB) }, 2, []string{"close 2 abort", "handshaking --new_failed--> attached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			want(t, "gossip", d.at(time.Second).step(d.gossip(tc.link, "m1")), tc.effects...)
			if s := d.e.Stats(); s.FramesRejected != 1 || s.Delivered != 0 {
				t.Errorf("stats %+v: want one rejected frame, nothing delivered", s)
			}
		})
	}
}
