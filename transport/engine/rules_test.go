package engine

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/repram/handover/transport/wire"
	"slices"
	"strings"
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
	// The candidate never welcomed: aborted (close_code).
	want(t, "close", d.at(time.Second).step(Close{}),
		"close 1 normal", "close 2 abort", "closed", "handshaking --close--> closed")
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
		{name: "an IPv6 address already in brackets is not bracketed again", url: subA.URL,
			topology:  []wire.Message{member("c", "[::1]", 8080)},
			wantKnown: []Substrate{subA, {ID: "c", URL: "ws://[::1]:8080/v1/ws"}}},
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
		{name: "handshaking: the policy's candidate, dialled 3s ago, is raced at once",
			setup: func(d *driver) LinkID { d.migrating(subA, subB); return 1 }, bye: goodbye("shutdown", parent("c", 3)),
			effects: []string{"dial 3 c", "hello 3", "handshaking --attempt_delay--> handshaking"}, state: fsm.Handshaking},
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
	// The repeated goodbyes' alternatives were not learned (a repetition
	// costs nothing, however many it names): the reattach races b again.
	if k := d.e.reg.find(subC); k != nil {
		t.Errorf("a repeated goodbye's alternative was learned: %+v", k.Substrate)
	}
	want(t, "the leaving link closes", d.step(LinkClosed{Link: 1}),
		"close 1 abort", "dial 3 b", "hello 3", "attached --old_died--> joining")
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

func TestRuleMessageTooOld(t *testing.T) {
	tests := []struct {
		name    string
		maxAge  time.Duration
		age     time.Duration
		deliver bool
	}{
		{"default 60s: 61s old dropped", 0, 61 * time.Second, false},
		{"default 60s: exactly 60s delivered", 0, 60 * time.Second, true},
		{"default 60s: fresh delivered", 0, 0, true},
		{"from the future: delivered", 0, -time.Hour, true},
		{"5s: 6s old dropped", 5 * time.Second, 6 * time.Second, false},
		{"off: an hour old delivered", -1, time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{Tuning: Tuning{MaxMessageAge: tc.maxAge}}))
			d.attached(subA)
			d.at(30 * time.Minute)
			got := d.step(GossipReceived{Link: 1, Type: wire.TypePut, Message: wireMsg("m1", d.now.Add(-tc.age))})
			s := d.e.Stats()
			if tc.deliver {
				want(t, "effects", got, "deliver m1 via a")
				if s.TooOld != 0 {
					t.Errorf("TooOld %d, want 0", s.TooOld)
				}
				return
			}
			want(t, "effects", got)
			if s.TooOld != 1 || d.e.State() != fsm.Attached {
				t.Errorf("TooOld %d, state %s: want 1 and the link kept", s.TooOld, d.e.State())
			}
			// The id was not consumed: the same message, fresh, is delivered.
			want(t, "fresh copy", d.step(d.gossip(1, "m1")), "deliver m1 via a")
		})
	}
}

func TestRuleDedup(t *testing.T) {
	type arrival struct {
		link LinkID
		id   string
		want []string
		ack  string // non-empty: an ACK of this node's write id, from this substrate (else a PUT)
	}
	tests := []struct {
		name     string
		setup    func(d *driver)
		arrivals []arrival
		dups     int
	}{
		{name: "one link", setup: func(d *driver) { d.attached(subA) }, arrivals: []arrival{
			{1, "m1", []string{"deliver m1 via a"}, ""}, {1, "m1", nil, ""}, {1, "m2", []string{"deliver m2 via a"}, ""}, {1, "m1", nil, ""},
		}, dups: 2},
		{name: "overlap: each id once, via the link it came first on", setup: func(d *driver) { d.overlapping(subA, subB) }, arrivals: []arrival{
			{1, "m1", []string{"deliver m1 via a"}, ""}, {2, "m1", nil, ""}, {2, "m2", []string{"deliver m2 via b"}, ""}, {1, "m2", nil, ""},
		}, dups: 2},
		{name: "after the switch: ids from the overlap stay delivered", setup: func(d *driver) {
			d.overlapping(subA, subB)
			d.step(d.gossip(1, "m1"))
			d.step(d.gossip(2, "m1"))
			d.until(d.now.Sub(t0) + time.Second)
		}, arrivals: []arrival{{2, "m1", nil, ""}, {2, "m3", []string{"deliver m3 via b"}, ""}}, dups: 2},
		{name: "an empty id is never a duplicate", setup: func(d *driver) { d.attached(subA) }, arrivals: []arrival{
			{1, "", []string{"deliver  via a"}, ""}, {1, "", []string{"deliver  via a"}, ""},
		}},
		// REPRAM sends one ACK per substrate that stored a write, each with
		// the write's id and its own from: an embedder counts them to a quorum.
		{name: "the ACKs of one write from three substrates: three deliveries", setup: func(d *driver) { d.attached(subA) }, arrivals: []arrival{
			{1, "w1", []string{"deliver w1 via a"}, "a"}, {1, "w1", []string{"deliver w1 via a"}, "p1"},
			{1, "w1", []string{"deliver w1 via a"}, "p2"}, {1, "w1", nil, "p1"},
		}, dups: 1},
		{name: "overlap: one substrate's ACK on both links is delivered once", setup: func(d *driver) { d.overlapping(subA, subB) }, arrivals: []arrival{
			{1, "w1", []string{"deliver w1 via a"}, "p1"}, {2, "w1", nil, "p1"}, {2, "w1", []string{"deliver w1 via b"}, "p2"},
		}, dups: 1},
		{name: "a PUT and an ACK sharing an id do not suppress each other", setup: func(d *driver) { d.attached(subA) }, arrivals: []arrival{
			{1, "m1", []string{"deliver m1 via a"}, ""}, {1, "m1", []string{"deliver m1 via a"}, "a"},
			{1, "w1", []string{"deliver w1 via a"}, "a"}, {1, "w1", []string{"deliver w1 via a"}, ""},
			{1, "m1", nil, ""}, {1, "m1", nil, "a"}, {1, "w1", nil, "a"}, {1, "w1", nil, ""},
		}, dups: 4},
		{name: "ACK keys: id and sender never run together, a PUT id never looks like one", setup: func(d *driver) { d.attached(subA) }, arrivals: []arrival{
			{1, "w", []string{"deliver w via a"}, "1x"}, {1, "w1", []string{"deliver w1 via a"}, "x"},
			{1, "\x00a2:w1x", []string{"deliver \x00a2:w1x via a"}, ""}, {1, "\x00\x00a2:w1x", []string{"deliver \x00\x00a2:w1x via a"}, ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			for i, a := range tc.arrivals {
				in := d.gossip(a.link, a.id)
				if a.ack != "" {
					in = d.ack(a.link, a.id, a.ack)
				}
				want(t, fmt.Sprintf("arrival %d (%q ack %q on %d)", i, a.id, a.ack, a.link), without(d.step(in), "ping"), a.want...)
			}
			if n := d.e.Stats().DuplicatesDropped; n != tc.dups {
				t.Errorf("DuplicatesDropped %d, want %d", n, tc.dups)
			}
		})
	}
}

func TestRulePolicyDecision(t *testing.T) {
	t.Run("candidate_better", func(t *testing.T) {
		d := newDriver(t, quiet(Config{Enclave: "e1"}))
		d.attached(subA)
		got := d.observe(better("b"), Candidate{Substrate: subB, Latency: 5 * time.Millisecond},
			Candidate{Substrate: Substrate{ID: "me", URL: "ws://10.0.0.9:8080/v1/ws"}, Latency: time.Millisecond},
			Candidate{Substrate: Substrate{URL: "ws://10.0.0.7:8080/v1/ws"}, Latency: time.Millisecond})
		want(t, "effects", got, "dial 2 b", "hello 2", "attached --candidate_better--> handshaking", `decided "candidate_better"`)
		o := d.pol.obs[0]
		if o.Enclave != "e1" || o.Current.ID != "a" || o.Current.Latency != 10*time.Millisecond {
			t.Errorf("observation %+v: want enclave e1, current a at its pings' SRTT 10ms", o)
		}
		if len(o.Candidates) != 1 || o.Candidates[0].ID != "b" || o.Candidates[0].Latency != 5*time.Millisecond {
			t.Errorf("candidates %+v: want b alone (never this node, never one without id)", o.Candidates)
		}
		if k := d.known(subB); k.rtt != 5*time.Millisecond {
			t.Errorf("b learned with rtt %v, want 5ms", k.rtt)
		}
	})
	t.Run("the embedder's current latency wins over the pings'", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		d.pol.next = []policy.Decision{{}}
		want(t, "effects", d.step(Observe{CurrentLatency: 42 * time.Millisecond}), `decided ""`)
		if l := d.pol.obs[0].Current.Latency; l != 42*time.Millisecond {
			t.Errorf("current latency %v, want 42ms", l)
		}
	})
	tests := []struct {
		name    string
		setup   func(d *driver)
		dec     policy.Decision
		effects []string
	}{
		{"cooldown_elapsed in cooldown", func(d *driver) { d.cooldown(subA, subB) },
			policy.Decision{Event: fsm.CooldownElapsed, Reason: "scripted"},
			[]string{"cooldown --cooldown_elapsed--> attached", `decided "cooldown_elapsed"`}},
		{"candidate_better in cooldown: the chart ignores it", func(d *driver) { d.cooldown(subA, subB) },
			better("c"), []string{`decided "candidate_better"`}},
		{"candidate_better while joining: the chart ignores it", func(d *driver) { d.step(Attach{Substrate: subA}) },
			better("c"), []string{`decided "candidate_better"`}},
		{"nothing to do", func(d *driver) { d.attached(subA) }, policy.Decision{}, []string{`decided ""`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			want(t, "effects", d.observe(tc.dec, Candidate{Substrate: subC, Latency: time.Millisecond}), tc.effects...)
		})
	}
}

func TestRulePolicyOwnSubstrate(t *testing.T) {
	t.Run("a substrate not observed this cycle, or without a URL", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		want(t, "not observed", d.observe(better("c"), Candidate{Substrate: subB}), `decided "candidate_better"`)
		want(t, "no URL", d.observe(better("c"), Candidate{Substrate: Substrate{ID: "c"}}), `decided "candidate_better"`)
		if o := d.pol.obs[1]; len(o.Candidates) != 0 {
			t.Errorf("candidates offered %+v, want none (c has no URL)", o.Candidates)
		}
		if d.e.State() != fsm.Attached || d.e.Stats().Dials != 1 {
			t.Errorf("state %s, %d dials: want attached, no dial", d.e.State(), d.e.Stats().Dials)
		}
	})

	for _, setup := range []func(d *driver){
		func(d *driver) { d.attached(subA) },
		func(d *driver) { d.attached(subA); d.observe(policy.Decision{}, Candidate{Substrate: subB}) },
	} {
		d := newDriver(t, quiet(Config{}))
		setup(d)
		want(t, "effects", d.observe(better("a"), Candidate{Substrate: subA, Latency: time.Millisecond}), `decided "candidate_better"`)
		if d.e.State() != fsm.Attached || d.e.Stats().Dials != 1 {
			t.Errorf("state %s, %d dials: want attached, no dial", d.e.State(), d.e.Stats().Dials)
		}
	}
}

func TestRuleLearnSubstrates(t *testing.T) {
	tests := []struct {
		name   string
		inputs []Input
		want   []Substrate
	}{
		{name: "by URL, then named: one entry gains id and enclave", inputs: []Input{
			Attach{Substrate: Substrate{URL: subA.URL}},
			Observe{Candidates: []Candidate{{Substrate: Substrate{ID: "a", URL: subA.URL, Enclave: "e1"}}}},
		}, want: []Substrate{{ID: "a", URL: subA.URL, Enclave: "e1"}}},
		{name: "same id at another URL: the first URL is kept", inputs: []Input{
			Observe{Candidates: []Candidate{{Substrate: subB}}},
			Observe{Candidates: []Candidate{{Substrate: Substrate{ID: "b", URL: subC.URL}}}},
		}, want: []Substrate{subB}},
		{name: "never this node, never without a URL or an id", inputs: []Input{
			Observe{Candidates: []Candidate{{Substrate: Substrate{ID: "me", URL: subA.URL}}, {Substrate: Substrate{ID: "b"}},
				{Substrate: Substrate{URL: subC.URL}}}},
		}},
		{name: "a goodbye's alternatives, even when it changes nothing", inputs: []Input{
			Attach{Substrate: subA},
			GoodbyeReceived{Link: 1, Goodbye: goodbye("at capacity", parent("b", 2), wire.Parent{ID: "x", Address: "10.0.0.8"})},
		}, want: []Substrate{subA, subB}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			for _, in := range tc.inputs {
				d.step(in)
			}
			if got := d.e.Known(); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
				t.Errorf("known %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRuleRestartedSubstrate(t *testing.T) {
	old, restarted := sub("a-old", 1), sub("a-new", 1)
	tests := []struct {
		name  string
		setup func(d *driver)
	}{
		{name: "known from an observation", setup: func(d *driver) {
			d.observe(policy.Decision{}, Candidate{Substrate: old, Latency: 50 * time.Millisecond})
		}},
		{name: "known from an observation and backed off", setup: func(d *driver) {
			d.observe(policy.Decision{}, Candidate{Substrate: old, Latency: 50 * time.Millisecond})
			d.e.reg.failed(old, d.now, d.e.cfg.FailureBackoff, d.e.cfg.FailureBackoffMax, d.e.rng)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			d.attached(subB)
			tc.setup(d)
			// b shuts down naming a, restarted as a-new at its old URL.
			want(t, "goodbye", d.at(time.Second).step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", parent(restarted.ID, 1))}),
				"dial 2 a-new", "hello 2", "attached --goodbye--> handshaking")
			want(t, "welcome", transitions(d.at(1100*time.Millisecond).step(Welcomed{Link: 2, Welcome: welcome(restarted.ID)})),
				"handshaking --handshake_ok--> overlapping")
			if n := d.e.Stats().FramesRejected; n != 0 {
				t.Errorf("%d frames rejected, want the restarted substrate's welcome accepted", n)
			}
			if got := d.e.Known(); !slices.Contains(got, restarted) || slices.Contains(got, old) {
				t.Errorf("known %+v, want %+v and not %+v", got, restarted, old)
			}
		})
	}
	t.Run("a link dialled to the old id, not welcomed yet, does not", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subB)
		d.migratingTo(old)
		d.observe(policy.Decision{}, Candidate{Substrate: restarted, Latency: time.Millisecond})
		if got := d.e.Known(); !slices.Contains(got, restarted) || slices.Contains(got, old) {
			t.Errorf("known %+v, want %+v and not %+v", got, restarted, old)
		}
	})
	t.Run("a live link's welcome outranks a report", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(old)
		// c's topology names another id at the primary's URL: stale, or
		// the primary restarted and its link will fail; until then a-old
		// answers there.
		d.observe(policy.Decision{}, Candidate{Substrate: restarted, Latency: time.Millisecond})
		if got := d.e.Known(); !slices.Equal(got, []Substrate{old}) {
			t.Errorf("known %+v, want only the primary's %+v", got, old)
		}
		// Once the link is gone, the next report wins.
		want(t, "the primary closes", transitions(d.at(time.Second).step(LinkClosed{Link: 1})), "attached --old_died--> detached")
		d.observe(policy.Decision{}, Candidate{Substrate: restarted, Latency: time.Millisecond})
		if got := d.e.Known(); !slices.Equal(got, []Substrate{restarted}) {
			t.Errorf("known %+v, want %+v", got, restarted)
		}
	})
}

// raceOrder is the order in which a move dials: the candidates racing, then
// the queue.
func (d *driver) raceOrder() []string {
	var out []string
	for _, c := range d.e.Candidates() {
		out = append(out, c.ID)
	}
	for _, q := range d.e.queue {
		out = append(out, q.ID)
	}
	return out
}

func TestRuleAlternativesOrder(t *testing.T) {
	ms := time.Millisecond
	cand := func(s Substrate, enclave string, rtt time.Duration) Candidate {
		s.Enclave = enclave
		return Candidate{Substrate: s, Latency: rtt}
	}
	tests := []struct {
		name    string
		enclave string
		known   []Candidate
		fail    []Substrate // backed off before the move
		alts    []wire.Parent
		want    []string
	}{
		{name: "best measured first, unmeasured last",
			known: []Candidate{cand(subB, "", 50*ms), cand(subC, "", 10*ms), cand(subD, "", 0)}, want: []string{"c", "b", "d"}},
		{name: "same enclave first",
			enclave: "e1", known: []Candidate{cand(subB, "e2", ms), cand(subC, "e1", 100*ms)}, want: []string{"c", "b"}},
		{name: "no enclave of its own: latency alone",
			known: []Candidate{cand(subB, "e2", ms), cand(subC, "e1", 100*ms)}, want: []string{"b", "c"}},
		{name: "backed off last, even the best",
			enclave: "e1", known: []Candidate{cand(subB, "e1", ms), cand(subC, "e2", 100*ms)}, fail: []Substrate{subB}, want: []string{"c", "b"}},
		{name: "a goodbye's alternatives ranked with the rest",
			known: []Candidate{cand(subB, "", 50*ms)}, alts: []wire.Parent{parent("c", 3)}, want: []string{"b", "c"}},
		{name: "never this node nor the primary",
			alts: []wire.Parent{parent("me", 9), parent("a", 1), parent("b", 2)}, want: []string{"b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{Enclave: tc.enclave}))
			d.attached(subA)
			d.observe(policy.Decision{}, tc.known...)
			for _, s := range tc.fail {
				d.e.reg.failed(s, d.now, time.Second, time.Second, d.e.rng)
			}
			d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", tc.alts...)})
			if got := d.raceOrder(); !slices.Equal(got, tc.want) {
				t.Errorf("race order %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("never one already racing", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.migrating(subA, subB)
		d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", parent("b", 2), parent("c", 3))})
		if got := d.raceOrder(); !slices.Equal(got, []string{"b", "c"}) || len(d.e.queue) != 1 {
			t.Errorf("race order %v (queue %v), want b racing and c queued once", got, d.e.queue)
		}
	})
	t.Run("dial_alternative skips what became undialable", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		want(t, "candidate_better", d.observe(better("b"), Candidate{Substrate: subB}),
			"dial 2 b", "hello 2", "attached --candidate_better--> handshaking", `decided "candidate_better"`)
		// As a goodbye arriving now would leave it.
		d.e.queue = []Substrate{subA, {ID: "me", URL: subD.URL}, subC}
		d.e.moving = true
		want(t, "attempt_delay", without(d.until(250*time.Millisecond), "ping"))
		want(t, "b fails", d.step(LinkClosed{Link: 2}), "close 2 abort", "dial 3 c", "hello 3", "handshaking --new_failed--> handshaking")
	})
	t.Run("a policy migration forgets what an earlier forced move queued", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		d.e.queue, d.e.moving = []Substrate{subC}, true // left by a forced move that was cancelled
		want(t, "candidate_better", d.observe(better("b"), Candidate{Substrate: subB}),
			"dial 2 b", "hello 2", "attached --candidate_better--> handshaking", `decided "candidate_better"`)
		want(t, "b fails", d.step(LinkClosed{Link: 2}), "close 2 abort", "handshaking --new_failed--> attached")
	})
	t.Run("ties at random, the same for the same seed", func(t *testing.T) {
		firsts := map[string]int{}
		for seed := range uint64(40) {
			var orders [2][]string
			for i := range orders {
				d := newDriver(t, quiet(Config{Seed: seed}))
				d.attached(subA)
				d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", parent("b", 2), parent("c", 3), parent("d", 4))})
				orders[i] = d.raceOrder()
			}
			if !slices.Equal(orders[0], orders[1]) {
				t.Fatalf("seed %d: orders %v and %v differ", seed, orders[0], orders[1])
			}
			firsts[orders[0][0]]++
		}
		if len(firsts) != 3 {
			t.Errorf("first alternative over 40 seeds: %v, want each of b, c, d at least once", firsts)
		}
	})
}

func TestRuleFailureBackoff(t *testing.T) {
	failPing := PingDone{Link: 1, Err: errors.New("ping timeout")}
	tests := []struct {
		name    string
		setup   func(d *driver)
		trigger []Input // at 1s
		failed  Substrate
	}{
		{"primary's goodbye", func(d *driver) { d.attached(subA) }, []Input{GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")}}, subA},
		{"refusal", func(d *driver) { d.migrating(subA, subB) }, []Input{GoodbyeReceived{Link: 2, Goodbye: goodbye("at capacity")}}, subB},
		{"handshake timeout", func(d *driver) { d.step(Attach{Substrate: subA}); d.at(9 * time.Second) }, []Input{Tick{}}, subA},
		{"primary died", func(d *driver) { d.attached(subA) }, []Input{LinkClosed{Link: 1}}, subA},
		{"candidate died", func(d *driver) { d.migrating(subA, subB) }, []Input{LinkClosed{Link: 2}}, subB},
		{"primary missed its heartbeats", func(d *driver) { d.attached(subA) }, []Input{failPing, failPing, failPing}, subA},
		{"bad frame from a candidate", func(d *driver) { d.migrating(subA, subB) }, []Input{FrameRejected{Link: 2}}, subB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			d.at(10 * time.Second)
			for _, in := range tc.trigger {
				d.step(in)
			}
			d.backedOff(tc.failed, 1)
		})
	}
	t.Run("not for a bad frame from the primary, nor a late message", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		d.step(FrameRejected{Link: 1})
		d.step(GossipReceived{Link: 1, Message: wireMsg("m1", t0.Add(-time.Hour))})
		d.backedOff(subA, 0)
	})
	t.Run("doubling, capped, cleared when promoted", func(t *testing.T) {
		d := newDriver(t, quiet(Config{Tuning: Tuning{FailureBackoff: time.Second, FailureBackoffMax: 3 * time.Second}}))
		d.step(Attach{Substrate: subA})
		for n := 1; n <= 4; n++ {
			want(t, "dial fails", transitions(d.step(LinkClosed{Link: LinkID(n)})), "joining --new_failed--> detached")
			d.backedOff(subA, n) // 1s, 2s, 3s (capped), 3s: each plus up to half
			// a is the only substrate known: it is dialled anyway.
			if _, effs := d.firstTransition(time.Hour); !slices.Equal(transitions(effs), []string{"detached --attach--> joining"}) {
				t.Fatalf("rejoin %d: %v", n, effs)
			}
		}
		d.step(Welcomed{Link: 5, Welcome: welcome("a")})
		d.backedOff(subA, 0)
	})
}

func TestRuleGuards(t *testing.T) {
	ms := time.Millisecond
	d := newDriver(t, quiet(Config{Tuning: Tuning{RaceWidth: 2}}))
	d.attached(subA)
	d.observe(policy.Decision{}, Candidate{Substrate: subB, Latency: ms}, Candidate{Substrate: subC, Latency: 2 * ms},
		Candidate{Substrate: subD, Latency: 4 * ms})
	steps := []struct {
		at      time.Duration
		in      Input
		effects []string
	}{
		{0, GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")}, []string{"dial 2 b", "hello 2", "attached --goodbye--> handshaking"}},
		// has_alternative: d is queued and one candidate races.
		{250 * ms, Tick{}, []string{"dial 3 c", "hello 3", "handshaking --attempt_delay--> handshaking"}},
		// has_alternative fails: RaceWidth candidates race.
		{500 * ms, Tick{}, nil},
		// has_alternative: the failed candidate does not count.
		{600 * ms, LinkClosed{Link: 2}, []string{"close 2 abort", "dial 4 d", "hello 4", "handshaking --new_failed--> handshaking"}},
		// others_racing: nothing queued, but d still races.
		{700 * ms, LinkClosed{Link: 3}, []string{"close 3 abort", "handshaking --new_failed--> handshaking"}},
		// neither: the last candidate failed.
		{800 * ms, LinkClosed{Link: 4}, []string{"close 4 abort", "handshaking --new_failed--> attached"}},
	}
	for _, s := range steps {
		want(t, fmt.Sprintf("%T at %v", s.in, s.at), d.at(s.at).step(s.in), s.effects...)
	}
	if got := d.e.Stats().Dials; got != 4 {
		t.Errorf("%d dials, want 4", got)
	}
}

func TestRuleHandshakeDeadline(t *testing.T) {
	t.Run("joining", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.step(Attach{Substrate: subA})
		want(t, "before", transitions(d.until(10*time.Second-1)))
		want(t, "at 10s", d.until(10*time.Second), "close 1 abort", "joining --handshake_timeout--> detached")
		d.backedOff(subA, 1)
	})
	t.Run("each candidate from its own hello", func(t *testing.T) {
		d := newDriver(t, quiet(Config{Tuning: Tuning{HandshakeTimeout: 2 * time.Second}}))
		d.attached(subA)
		d.observe(policy.Decision{}, Candidate{Substrate: subB, Latency: time.Millisecond}, Candidate{Substrate: subC, Latency: 3 * time.Millisecond})
		d.at(time.Second).step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")})
		at, effs := d.firstTransition(time.Minute)
		want(t, fmt.Sprintf("attempt delay at %v", at), effs, "dial 3 c", "hello 3", "handshaking --attempt_delay--> handshaking")
		at, effs = d.firstTransition(time.Minute)
		want(t, fmt.Sprintf("b at %v", at), effs, "close 2 abort", "handshaking --handshake_timeout--> handshaking")
		if at != 3*time.Second {
			t.Errorf("b timed out at %v, want 3s", at)
		}
		at, effs = d.firstTransition(time.Minute)
		want(t, fmt.Sprintf("c at %v", at), effs, "close 3 abort", "handshaking --handshake_timeout--> attached")
		if at != 3250*time.Millisecond {
			t.Errorf("c timed out at %v, want 3.25s", at)
		}
	})
	t.Run("a welcome in time", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.step(Attach{Substrate: subA})
		d.at(10*time.Second - 1).step(Welcomed{Link: 1, Welcome: welcome("a")})
		want(t, "after", transitions(d.until(time.Minute)))
		if d.e.State() != fsm.Attached {
			t.Errorf("state %s, want attached", d.e.State())
		}
	})
}

func TestRuleAttemptDelay(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		cfg     Config
		known   []Candidate
		welcome time.Duration // b welcomes at; 0: never
		at      time.Duration // first transition after the goodbye at 1s
		effects []string
	}{
		{name: "default 250ms: the next alternative joins", known: []Candidate{{Substrate: subB, Latency: ms}, {Substrate: subC, Latency: 3 * ms}},
			at: 1250 * ms, effects: []string{"dial 3 c", "hello 3", "handshaking --attempt_delay--> handshaking"}},
		{name: "100ms", cfg: Config{Tuning: Tuning{AttemptDelay: 100 * ms}}, known: []Candidate{{Substrate: subB, Latency: ms}, {Substrate: subC, Latency: 3 * ms}},
			at: 1100 * ms, effects: []string{"dial 3 c", "hello 3", "handshaking --attempt_delay--> handshaking"}},
		{name: "a welcome first: no widening", known: []Candidate{{Substrate: subB, Latency: ms}, {Substrate: subC, Latency: 3 * ms}},
			welcome: 1200 * ms, at: 2200 * ms, effects: []string{"close 1 normal", "overlapping --overlap_done--> cooldown"}},
		{name: "nothing left: fired once, ignored", known: []Candidate{{Substrate: subB, Latency: ms}},
			at: 11 * time.Second, effects: []string{"close 2 abort", "handshaking --handshake_timeout--> attached"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(tc.cfg))
			d.attached(subA)
			d.observe(policy.Decision{}, tc.known...)
			want(t, "goodbye", d.at(time.Second).step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")}),
				"dial 2 b", "hello 2", "attached --goodbye--> handshaking")
			if tc.welcome > 0 {
				d.until(tc.welcome - 1)
				d.at(tc.welcome).step(Welcomed{Link: 2, Welcome: welcome("b")})
				d.step(PingDone{Link: 2, RTT: ms})
			}
			at, effs := d.firstTransition(time.Minute)
			want(t, "first transition", without(effs, "ping"), tc.effects...)
			if at != tc.at {
				t.Errorf("at %v, want %v", at, tc.at)
			}
		})
	}
	t.Run("a move while a policy candidate handshakes: counted from its hello", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			at      time.Duration // of the move
			move    Input
			widenAt time.Duration
			effects []string
		}{
			{"the primary dies at 1s", time.Second, LinkClosed{Link: 1}, time.Second,
				[]string{"close 1 abort", "handshaking --old_died--> joining", "dial 3 c", "hello 3", "joining --attempt_delay--> joining"}},
			{"the primary says goodbye at 100ms", 100 * ms, GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")}, 250 * ms,
				[]string{"dial 3 c", "hello 3", "handshaking --attempt_delay--> handshaking"}},
			{"the primary is suspected at 2s", 2 * time.Second, PingDone{Link: 1, Err: errors.New("timeout")}, 2 * time.Second,
				[]string{"dial 3 c", "hello 3", "handshaking --attempt_delay--> handshaking"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := newDriver(t, quiet(Config{}))
				d.attached(subA)
				d.observe(policy.Decision{}, Candidate{Substrate: subC, Latency: ms})
				d.migratingTo(subB) // b hangs
				effs := d.at(tc.at).step(tc.move)
				at := tc.at
				if tc.widenAt > tc.at {
					at, effs = d.firstTransition(time.Minute)
				}
				want(t, fmt.Sprintf("at %v", at), effs, tc.effects...)
				if at != tc.widenAt {
					t.Errorf("widened at %v, want %v", at, tc.widenAt)
				}
			})
		}
	})
	t.Run("a policy migration does not race", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		d.observe(policy.Decision{}, Candidate{Substrate: subC, Latency: ms})
		d.migratingTo(subB)
		at, effs := d.firstTransition(time.Minute)
		want(t, fmt.Sprintf("at %v", at), effs, "close 2 abort", "handshaking --handshake_timeout--> attached")
	})
}

// pingRun attaches to a at 0 and answers every ping of link 1 after rtt,
// with gossip on link 1 every gossipEvery (0: none), until end; it returns
// the time and timeout of each ping.
func pingRun(t *testing.T, cfg Config, rtt, gossipEvery, end time.Duration) (at, timeout []time.Duration) {
	d := newDriver(t, cfg)
	d.step(Attach{Substrate: subA})
	var pongs []time.Duration // pending answers, in order
	record := func(effs []Effect) {
		for _, f := range effs {
			if p, ok := f.(Ping); ok && p.Link == 1 {
				at, timeout = append(at, d.now.Sub(t0)), append(timeout, p.Timeout)
				pongs = append(pongs, d.now.Sub(t0)+rtt)
			}
		}
	}
	record(d.raw(Welcomed{Link: 1, Welcome: welcome("a")}))
	nextGossip, n := gossipEvery, 0
	for range 10_000 {
		next := end
		if dl, ok := d.e.NextDeadline(); ok && dl.Sub(t0) < next {
			next = dl.Sub(t0)
		}
		if len(pongs) > 0 && pongs[0] < next {
			next = pongs[0]
		}
		if gossipEvery > 0 && nextGossip < next {
			next = nextGossip
		}
		if next >= end {
			return at, timeout
		}
		d.at(next)
		switch {
		case len(pongs) > 0 && pongs[0] == next:
			pongs = pongs[1:]
			record(d.raw(PingDone{Link: 1, RTT: rtt}))
		case gossipEvery > 0 && nextGossip == next:
			n++
			nextGossip += gossipEvery
			record(d.raw(d.gossip(1, fmt.Sprint("m", n))))
		default:
			record(d.raw(Tick{}))
		}
	}
	t.Fatal("pingRun: more than 10000 steps")
	return nil, nil
}

func TestRulePingSchedule(t *testing.T) {
	ms, s := time.Millisecond, time.Second
	tests := []struct {
		name        string
		cfg         Config
		rtt, gossip time.Duration
		at, timeout []time.Duration
	}{
		{name: "silent link: pinged once silent for SuspectMin (SRTT + 4·RTTVAR = 30ms)", rtt: 10 * ms,
			at:      []time.Duration{0, 1010 * ms, 2020 * ms, 3030 * ms},
			timeout: []time.Duration{5 * s, s, s, s}},
		{name: "chatty link: every HeartbeatInterval", rtt: 10 * ms, gossip: 200 * ms,
			at:      []time.Duration{0, 5 * s},
			timeout: []time.Duration{5 * s, s}},
		{name: "between the bounds: SRTT + 4·RTTVAR", rtt: 400 * ms,
			// 400 + 4·200 = 1.2s; then RTTVAR 150: 400 + 600 = 1s.
			at:      []time.Duration{0, 1600 * ms, 3000 * ms},
			timeout: []time.Duration{5 * s, 1200 * ms, s}},
		{name: "clamped to SuspectMax, and one ping outstanding at a time", rtt: 2 * s,
			at:      []time.Duration{0, 5 * s},
			timeout: []time.Duration{5 * s, 5 * s}},
		{name: "configured bounds", cfg: Config{Tuning: Tuning{SuspectMin: 300 * ms, SuspectMax: 2 * s, HeartbeatInterval: 10 * s}}, rtt: 10 * ms,
			at:      []time.Duration{0, 310 * ms, 620 * ms},
			timeout: []time.Duration{2 * s, 300 * ms, 300 * ms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			end := tc.at[len(tc.at)-1] + time.Millisecond
			at, timeout := pingRun(t, tc.cfg, tc.rtt, tc.gossip, end)
			if !slices.Equal(at, tc.at) || !slices.Equal(timeout, tc.timeout) {
				t.Errorf("pings at %v with timeouts %v;\nwant at %v with %v", at, timeout, tc.at, tc.timeout)
			}
		})
	}
	t.Run("a candidate is pinged once welcomed", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.migrating(subA, subB) // no ping 2 while it handshakes
		want(t, "welcome", d.step(Welcomed{Link: 2, Welcome: welcome("b")}), "handshaking --handshake_ok--> overlapping", "ping 2")
	})
}

func TestRulePong(t *testing.T) {
	d := newDriver(t, quiet(Config{}))
	d.step(Attach{Substrate: subA})
	d.step(Welcomed{Link: 1, Welcome: welcome("a")})
	d.step(PingDone{Link: 1, RTT: 100 * time.Millisecond})
	d.step(PingDone{Link: 1, RTT: 200 * time.Millisecond})
	// SRTT 100 + (200-100)/8; RTTVAR 50 + (100-50)/4.
	if got, want := d.e.PrimaryRTT(), 112500*time.Microsecond; got != want {
		t.Errorf("SRTT %v, want %v", got, want)
	}
	if got, want := d.e.primary.rttvar, 62500*time.Microsecond; got != want {
		t.Errorf("RTTVAR %v, want %v", got, want)
	}
	if k := d.known(subA); k.rtt != d.e.PrimaryRTT() {
		t.Errorf("a ranked with rtt %v, want the SRTT", k.rtt)
	}
	// An answered ping resets the missed count: two misses, an answer, two
	// misses never reach MissedHeartbeats (3).
	fail := PingDone{Link: 1, Err: errors.New("timeout")}
	for i, in := range []Input{fail, fail, PingDone{Link: 1, RTT: time.Millisecond}, fail, fail} {
		want(t, fmt.Sprint("ping ", i), transitions(d.step(in)))
	}
	if d.e.State() != fsm.Attached || d.e.primary.missed != 2 {
		t.Errorf("state %s, missed %d: want attached, 2", d.e.State(), d.e.primary.missed)
	}
}

func TestRuleSuspectPrimary(t *testing.T) {
	fail := PingDone{Link: 1, Err: errors.New("ping timeout")}
	tests := []struct {
		name    string
		setup   func(d *driver) LinkID
		effects []string
	}{
		{name: "attached, an alternative known: migrate, keep the old link", setup: func(d *driver) LinkID {
			d.attached(subA)
			d.observe(policy.Decision{}, Candidate{Substrate: subB})
			return 1
		}, effects: []string{"dial 2 b", "hello 2", "attached --old_suspected--> handshaking"}},
		{name: "attached, nothing else known: keep pinging", setup: func(d *driver) LinkID { d.attached(subA); return 1 }},
		{name: "cooldown: cooldown does not apply", setup: func(d *driver) LinkID { d.cooldown(subA, subB); return 2 },
			effects: []string{"dial 3 a", "hello 3", "cooldown --old_suspected--> handshaking"}},
		{name: "handshaking: the migration goes on", setup: func(d *driver) LinkID { d.migrating(subA, subB); return 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			link := tc.setup(d)
			forced := d.pol.forced
			fail.Link = link
			want(t, "first failed ping", d.at(3*time.Second).step(fail), tc.effects...)
			if id, _, _ := d.e.Primary(); id != link {
				t.Errorf("primary %d, want %d kept", id, link)
			}
			if suspected := len(tc.effects) > 0; (d.e.Stats().Suspected == 1) != suspected || (d.pol.forced == forced+1) != suspected {
				t.Errorf("Suspected %d, policy told forced %d times: want %v", d.e.Stats().Suspected, d.pol.forced-forced, suspected)
			}
			want(t, "second failed ping", transitions(d.step(fail)))
		})
	}
	t.Run("only the first failure in a row: later ones count toward MissedHeartbeats", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		want(t, "first failure, nothing known", d.step(fail))
		d.observe(policy.Decision{}, Candidate{Substrate: subB})
		want(t, "second failure, b known", d.step(fail))
		want(t, "third failure: dead", d.step(fail), "close 1 abort", "dial 2 b", "hello 2", "attached --old_died--> joining")
	})
	t.Run("defaults: a primary silent from 0 is suspected at 2s", func(t *testing.T) {
		d := newDriver(t, Config{})
		d.attached(subA) // ping at 0, answered at 0 with 10ms
		d.observe(policy.Decision{}, Candidate{Substrate: subB})
		at, effs := d.next()
		want(t, fmt.Sprintf("ping at %v", at), effs, "ping 1")
		if at != time.Second {
			t.Errorf("silence ping at %v, want 1s (SuspectMin after the last pong)", at)
		}
		// The shell reports the ping unanswered after its 1s timeout.
		// Still silent: pinged again at once.
		want(t, "suspected", d.at(2*time.Second).step(fail), "dial 2 b", "hello 2", "attached --old_suspected--> handshaking", "ping 1")
	})
}

func TestRuleMissedHeartbeats(t *testing.T) {
	fail := func(l LinkID) PingDone { return PingDone{Link: l, Err: errors.New("ping timeout")} }
	tests := []struct {
		name    string
		cfg     Config
		setup   func(d *driver)
		link    LinkID
		effects []string // of the failure that reaches MissedHeartbeats
		failed  Substrate
	}{
		{name: "primary, nothing else known: detach", setup: func(d *driver) { d.attached(subA) }, link: 1,
			effects: []string{"close 1 abort", "attached --old_died--> detached"}, failed: subA},
		{name: "primary mid-migration: the candidate goes on alone", setup: func(d *driver) { d.migrating(subA, subB) }, link: 1,
			effects: []string{"close 1 abort", "handshaking --old_died--> joining"}, failed: subA},
		{name: "welcomed candidate: cancel", setup: func(d *driver) { d.overlapping(subA, subB) }, link: 2,
			effects: []string{"close 2 abort", "overlapping --new_failed--> attached"}, failed: subB},
		{name: "MissedHeartbeats 1: the first miss", cfg: Config{Tuning: Tuning{MissedHeartbeats: 1}}, setup: func(d *driver) { d.attached(subA) }, link: 1,
			effects: []string{"close 1 abort", "attached --old_died--> detached"}, failed: subA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(tc.cfg))
			tc.setup(d)
			d.at(500 * time.Millisecond)
			for i := 1; i < d.e.cfg.MissedHeartbeats; i++ {
				want(t, fmt.Sprint("miss ", i), without(d.step(fail(tc.link)), "ping"))
			}
			want(t, "last miss", d.step(fail(tc.link)), tc.effects...)
			d.backedOff(tc.failed, 1)
			if n := d.e.Stats().PingsFailed; n != d.e.cfg.MissedHeartbeats {
				t.Errorf("PingsFailed %d, want %d", n, d.e.cfg.MissedHeartbeats)
			}
		})
	}
}

func TestRuleStarvedPing(t *testing.T) {
	d := newDriver(t, quiet(Config{}))
	d.attached(subA)
	d.observe(policy.Decision{}, Candidate{Substrate: subB})
	for i := range 5 {
		want(t, fmt.Sprint("starved ", i), transitions(d.at(time.Duration(i+1)*time.Second).step(
			PingDone{Link: 1, Err: errors.New("no pong read"), Starved: true})))
	}
	if s := d.e.Stats(); s.PingsFailed != 0 || d.e.primary.missed != 0 || d.e.State() != fsm.Attached {
		t.Errorf("PingsFailed %d, missed %d, state %s: a starved ping counted", s.PingsFailed, d.e.primary.missed, d.e.State())
	}
	if d.e.primary.pinging {
		t.Error("the starved ping is still outstanding: the link would never be pinged again")
	}
	// The next real failure is the first.
	want(t, "a real failure", d.step(PingDone{Link: 1, Err: errors.New("timeout")}),
		"dial 2 b", "hello 2", "attached --old_suspected--> handshaking")
}

// overlapRun migrates from a to b, welcomed at 1s and its first ping
// answered at 1s, then feeds arrivals (at, link, id), stepping every
// deadline, until a transition or 1 minute; it returns the transition and
// when it happened.
type arrival struct {
	at   time.Duration
	link LinkID
	id   string
	msg  kind // nil: a PUT from "pub", gossiped to all
}

// kind makes the gossip of an arrival.
type kind func(d *driver, link LinkID, id string) GossipReceived

// ackFrom is an ACK of this node's write id from substrate from; noTo drops
// its "to".
func ackFrom(from string, noTo bool) kind {
	return func(d *driver, link LinkID, id string) GossipReceived {
		in := d.ack(link, id, from)
		if noTo {
			in.Message.To = ""
		}
		return in
	}
}

// putTo is a PUT from "pub" addressed to this node alone.
func putTo(d *driver, link LinkID, id string) GossipReceived {
	in := d.gossip(link, id)
	in.Message.To = "me"
	return in
}

func overlapRun(t *testing.T, cfg Config, arrivals []arrival) (time.Duration, []string, *driver) {
	d := newDriver(t, quiet(cfg))
	d.attached(subA)
	d.migratingTo(subB)
	d.at(time.Second).step(Welcomed{Link: 2, Welcome: welcome("b")})
	d.step(PingDone{Link: 2, RTT: time.Millisecond})
	slices.SortStableFunc(arrivals, func(a, b arrival) int { return cmp.Compare(a.at, b.at) })
	for _, a := range arrivals {
		if at, effs := d.firstTransition(a.at - 1); at >= 0 {
			return at, effs, d
		}
		d.at(a.at)
		in := d.gossip(a.link, a.id)
		if a.msg != nil {
			in = a.msg(d, a.link, a.id)
		}
		if effs := d.step(in); len(transitions(effs)) > 0 {
			return a.at, effs, d
		}
	}
	at, effs := d.firstTransition(time.Minute)
	return at, effs, d
}

// stream is n ids, one every `every` from start on the old link, and on the
// new link lag later (lag < 0: never).
func stream(n int, start, every, lag time.Duration) []arrival {
	var out []arrival
	for k := range n {
		at := start + time.Duration(k)*every
		out = append(out, arrival{at, 1, fmt.Sprint("m", k), nil})
		if lag >= 0 {
			out = append(out, arrival{at + lag, 2, fmt.Sprint("m", k), nil})
		}
	}
	return out
}

func TestRuleOverlapCatchUp(t *testing.T) {
	ms, s := time.Millisecond, time.Second
	done := []string{"close 1 normal", "overlapping --overlap_done--> cooldown"}
	fixed := Config{Tuning: Tuning{OverlapFloor: 100 * ms, OverlapGrace: 100 * ms}} // the margin is 100ms whatever the skew
	lose := func(as []arrival, link LinkID, id string) []arrival {
		return slices.DeleteFunc(as, func(a arrival) bool { return a.link == link && a.id == id })
	}
	tests := []struct {
		name     string
		cfg      Config
		arrivals []arrival
		at       time.Duration // exactly, or
		by       time.Duration // at most (and after the welcome), when the margin is measured
		effects  []string
	}{
		{name: "no traffic: the boundary, welcome + the margin (OverlapGrace before any skew is measured)", at: 2 * s, effects: done},
		{name: "an exempt message missing from the new link holds nothing",
			arrivals: []arrival{{1500 * ms, 1, "m1", nil}}, at: 4 * s, effects: done},
		{name: "fixed margin, new link 5ms behind: the boundary (1010+100) plus two margins",
			cfg: fixed, arrivals: stream(100, 1010*ms, 10*ms, 5*ms), at: 1310 * ms, effects: done},
		{name: "110 msg/s, the new link 20ms behind: switched once the skew is measured",
			arrivals: stream(1000, 1010*ms, 9*ms, 20*ms), by: 1300 * ms, effects: done},
		{name: "110 msg/s on both links at once",
			arrivals: stream(1000, 1010*ms, 9*ms, 0), by: 1300 * ms, effects: done},
		// A node that writes while overlapping: the ACKs come back on the link
		// the write went out on, relayed by its substrate, never on the new
		// one; "pub" is a publisher the new link delivers, so if they were
		// tracked they would count as missing from it.
		{name: "ACKs of this node's writes, on the old link alone, hold nothing",
			cfg: fixed, arrivals: append(stream(100, 1010*ms, 10*ms, 5*ms),
				arrival{1200 * ms, 1, "w1", ackFrom("a", false)}, arrival{1201 * ms, 1, "w1", ackFrom("pub", false)},
				arrival{1202 * ms, 1, "m50", ackFrom("pub", false)}),
			at: 1310 * ms, effects: done},
		{name: "an ACK without \"to\" and a PUT addressed to this node, on the old link alone, hold nothing",
			cfg: fixed, arrivals: append(stream(100, 1010*ms, 10*ms, 5*ms),
				arrival{1200 * ms, 1, "w1", ackFrom("pub", true)}, arrival{1201 * ms, 1, "d1", putTo}),
			at: 1310 * ms, effects: done},
		{name: "the first id past the boundary never reaches the new link: held until OverlapMax",
			cfg: fixed, arrivals: lose(stream(100, 1010*ms, 10*ms, 5*ms), 2, "m10"), at: 16 * s,
			effects: []string{"close 2 abort", "overlapping --overlap_expired--> attached"}},
		{name: "the new link forwards nothing: held until OverlapMax",
			arrivals: stream(1000, 1010*ms, 9*ms, -1), at: 16 * s,
			effects: []string{"close 2 abort", "overlapping --overlap_expired--> attached"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at, effs, d := overlapRun(t, tc.cfg, tc.arrivals)
			want(t, "transition", without(without(effs, "ping"), "deliver"), tc.effects...)
			if tc.by == 0 && at != tc.at || tc.by > 0 && (at <= s || at > tc.by) {
				t.Errorf("at %v, want %v (by %v)", at, tc.at, tc.by)
			}
			if d.e.State() == fsm.Cooldown {
				if id, p, _ := d.e.Primary(); id != 2 || p.ID != "b" {
					t.Errorf("primary %d %s, want 2 b", id, p.ID)
				}
			}
		})
	}
	t.Run("the switch closes the old link normally, then promotes", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.overlapping(subA, subB)
		want(t, "switch", d.until(3*time.Second), "close 1 normal", "overlapping --overlap_done--> cooldown")
		if d.e.Stats().Migrations != 1 || d.pol.attached[len(d.pol.attached)-1] != "b" {
			t.Errorf("migrations %d, policy told attached %v", d.e.Stats().Migrations, d.pol.attached)
		}
	})
	t.Run("no pong from the new link: no switch", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		d.migratingTo(subB)
		d.step(Welcomed{Link: 2, Welcome: welcome("b")})
		want(t, "until 14s", transitions(d.until(14*s)))
		want(t, "pong", d.step(PingDone{Link: 2, RTT: ms}), "close 1 normal", "overlapping --overlap_done--> cooldown")
	})
}

func TestRuleOverlapMargin(t *testing.T) {
	ms := time.Millisecond
	t.Run("bounds", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cfg  Config
			lag  time.Duration
			want time.Duration
		}{
			{"default floor 50ms: one 10ms sample", Config{}, 10 * ms, 110 * ms},
			{"within OverlapGrace", Config{Tuning: Tuning{OverlapGrace: 300 * ms}}, 200 * ms, 300 * ms},
			{"OverlapFloor", Config{Tuning: Tuning{OverlapFloor: 200 * ms, OverlapGrace: 2 * time.Second}}, 0, 200 * ms},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := newDriver(t, quiet(tc.cfg))
				d.overlapping(subA, subB)
				if m := d.e.margin(); m != d.e.cfg.OverlapGrace {
					t.Errorf("margin before any sample %v, want OverlapGrace %v", m, d.e.cfg.OverlapGrace)
				}
				d.at(10 * ms).step(d.gossip(1, "m1"))
				d.at(10*ms + tc.lag).step(d.gossip(2, "m1"))
				if m := d.e.margin(); m != tc.want {
					t.Errorf("margin %v, want %v", m, tc.want)
				}
			})
		}
	})
	t.Run("kept across overlaps, but an idle next overlap waits OverlapGrace", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.overlapping(subA, subB)
		d.at(10 * ms).step(d.gossip(1, "m1"))
		d.at(20 * ms).step(d.gossip(2, "m1")) // one 10ms sample: margin 110ms
		at, effs := d.firstTransition(time.Minute)
		want(t, "first switch", transitions(effs), "overlapping --overlap_done--> cooldown")
		if at != 340*ms { // the boundary (the common id's 10ms + 110) plus two margins
			t.Errorf("first switch at %v, want 340ms", at)
		}
		d.at(time.Minute).step(Observe{})
		d.pol.next = []policy.Decision{{Event: fsm.CooldownElapsed}}
		d.step(Observe{})
		want(t, "second migration", transitions(d.observe(better("c"), Candidate{Substrate: subC})), "attached --candidate_better--> handshaking")
		d.step(Welcomed{Link: 3, Welcome: welcome("c")})
		d.step(PingDone{Link: 3, RTT: ms})
		at, effs = d.firstTransition(2 * time.Minute)
		want(t, "second switch", transitions(effs), "overlapping --overlap_done--> cooldown")
		// Idle, nothing seen on both links: this pair's skew is
		// unmeasured, so the boundary is welcome + OverlapGrace, whatever
		// earlier overlaps measured.
		if at != time.Minute+time.Second {
			t.Errorf("second switch at %v, want welcome + OverlapGrace", at)
		}
	})
}

func TestRuleOverlapMax(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		cfg     Config
		setup   func(d *driver)
		at      time.Duration
		effects []string
	}{
		{name: "policy migration: cancel, keep old", setup: func(d *driver) { d.overlapping(subA, subB) },
			at: 15 * s, effects: []string{"close 2 abort", "overlapping --overlap_expired--> attached"}},
		{name: "OverlapMax 4s", cfg: Config{Tuning: Tuning{OverlapMax: 4 * s}}, setup: func(d *driver) { d.overlapping(subA, subB) },
			at: 4 * s, effects: []string{"close 2 abort", "overlapping --overlap_expired--> attached"}},
		{name: "the old link is leaving: the next alternative", setup: func(d *driver) {
			d.overlapping(subA, subB)
			d.observe(policy.Decision{}, Candidate{Substrate: subC})
			d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")})
		}, at: 15 * s, effects: []string{"close 2 abort", "dial 3 c", "hello 3", "overlapping --overlap_expired--> handshaking"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(tc.cfg))
			tc.setup(d)
			// The old link delivers a message the new one never does.
			d.at(s + 100*time.Millisecond).step(d.gossip(1, "lost"))
			at, effs := d.firstTransition(time.Minute)
			want(t, "expired", effs, tc.effects...)
			if at != tc.at {
				t.Errorf("at %v, want %v", at, tc.at)
			}
		})
	}
}

func TestRuleRejoinBackoff(t *testing.T) {
	ms := time.Millisecond
	d := newDriver(t, quiet(Config{Tuning: Tuning{RejoinBackoff: 100 * ms, RejoinBackoffMax: 350 * ms}}))
	d.step(Attach{Substrate: subA})
	// Every dial fails at once: the rejoins come after 100, 200, 350, 350ms.
	var got []time.Duration
	var dials []string
	for n := 1; n <= 4; n++ {
		want(t, "dial fails", transitions(d.step(LinkClosed{Link: LinkID(n)})), "joining --new_failed--> detached")
		at, effs := d.firstTransition(time.Hour)
		got, dials = append(got, at), append(dials, effs[0])
	}
	if want := []time.Duration{100 * ms, 300 * ms, 650 * ms, 1000 * ms}; !slices.Equal(got, want) {
		t.Errorf("rejoins at %v, want %v", got, want)
	}
	if want := []string{"dial 2 a", "dial 3 a", "dial 4 a", "dial 5 a"}; !slices.Equal(dials, want) {
		t.Errorf("rejoin dials %v, want %v (a backed-off substrate is dialled when it is the only one)", dials, want)
	}
	if n := d.e.Stats().Rejoins; n != 4 {
		t.Errorf("Rejoins %d, want 4", n)
	}
	// A welcome resets the backoff.
	d.step(Welcomed{Link: 5, Welcome: welcome("a")})
	d.at(2 * time.Second)
	want(t, "primary dies", transitions(d.step(LinkClosed{Link: 1 + 4})), "attached --old_died--> detached")
	if at, _ := d.firstTransition(time.Hour); at != 2*time.Second+100*ms {
		t.Errorf("rejoin after a welcome at %v, want after 100ms", at)
	}
	t.Run("rejoin races every known substrate, best first", func(t *testing.T) {
		d := newDriver(t, quiet(Config{}))
		d.attached(subA)
		d.step(LinkClosed{Link: 1})
		d.observe(policy.Decision{}, Candidate{Substrate: subB, Latency: 30 * ms}, Candidate{Substrate: subC, Latency: 10 * ms})
		at, effs := d.firstTransition(time.Hour)
		want(t, fmt.Sprintf("rejoin at %v", at), effs, "dial 2 c", "hello 2", "detached --attach--> joining")
		if got := d.raceOrder(); !slices.Equal(got, []string{"c", "b", "a"}) {
			t.Errorf("race order %v, want c b a (a died: backed off, last)", got)
		}
	})
}

func TestRuleCloseCode(t *testing.T) {
	failPing := func(l LinkID) PingDone { return PingDone{Link: l, Err: errors.New("timeout")} }
	tests := []struct {
		name    string
		setup   func(d *driver)
		in      Input // at 5s
		effects []string
	}{
		{name: "the switch: the old link closes normally",
			setup: func(d *driver) { d.overlapping(subA, subB) }, in: Tick{},
			effects: []string{"close 1 normal", "overlapping --overlap_done--> cooldown"}},
		{name: "the switch: an old link whose last ping failed is aborted",
			setup: func(d *driver) { d.overlapping(subA, subB); d.step(failPing(1)) }, in: Tick{},
			effects: []string{"close 1 abort", "overlapping --overlap_done--> cooldown"}},
		{name: "an answered ping after a failed one: normal again",
			setup: func(d *driver) {
				d.overlapping(subA, subB)
				d.step(failPing(1))
				d.step(PingDone{Link: 1, RTT: time.Millisecond})
			}, in: Tick{},
			effects: []string{"close 1 normal", "overlapping --overlap_done--> cooldown"}},
		{name: "a welcome: the rivals that never welcomed are aborted",
			setup: func(d *driver) {
				d.attached(subA)
				d.observe(policy.Decision{}, Candidate{Substrate: subB, Latency: time.Millisecond}, Candidate{Substrate: subC, Latency: 3 * time.Millisecond})
				d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")})
				d.until(300 * time.Millisecond) // c joins the race
			}, in: Welcomed{Link: 3, Welcome: welcome("c")},
			effects: []string{"close 2 abort", "handshaking --handshake_ok--> overlapping", "ping 3"}},
		{name: "Close: a welcomed primary normally, a candidate that never welcomed aborted",
			setup: func(d *driver) { d.migrating(subA, subB) }, in: Close{},
			effects: []string{"close 1 normal", "close 2 abort", "closed", "handshaking --close--> closed"}},
		{name: "Close: a primary whose last ping failed is aborted",
			setup: func(d *driver) { d.attached(subA); d.step(failPing(1)) }, in: Close{},
			effects: []string{"close 1 abort", "closed", "attached --close--> closed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{}))
			tc.setup(d)
			want(t, "effects", d.at(5*time.Second).step(tc.in), tc.effects...)
		})
	}
}

func TestRuleTimeMonotonic(t *testing.T) {
	d := newDriver(t, quiet(Config{}))
	d.step(Attach{Substrate: subA})
	d.step(Observe{Candidates: []Candidate{{Substrate: subB}}})
	d.at(5 * time.Second).step(Tick{})
	// Reports stamped earlier than the last step are taken at 5s.
	early := func(dt time.Duration, in Input) []string {
		effs, err := d.e.Step(t0.Add(dt), in)
		if err != nil {
			t.Fatal(err)
		}
		return strs(effs)
	}
	want(t, "welcome at 2s", early(2*time.Second, Welcomed{Link: 1, Welcome: welcome("a")}),
		"joining --handshake_ok--> attached", "ping 1")
	if tr := d.e.primary.lastHeard; !tr.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("the primary was last heard at %v, want 5s", tr.Sub(t0))
	}
	want(t, "goodbye at 3s", early(3*time.Second, GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown")}),
		"dial 2 b", "hello 2", "attached --goodbye--> handshaking")
	// b's handshake deadline counts from 5s, not from the earlier stamp.
	at, effs := d.firstTransition(time.Minute)
	want(t, "timeout", without(effs, "ping"), "close 2 abort", "handshaking --handshake_timeout--> attached")
	if at != 15*time.Second {
		t.Errorf("handshake timeout at %v, want 15s", at)
	}
}

// Stats.RaceDials counts the dials of the race alone (path race: the
// attempt delay, a failed rival replaced), not a move's first dial.
func TestRaceDialsCountsTheRaceAlone(t *testing.T) {
	d := newDriver(t, quiet(Config{}))
	d.step(Attach{Substrate: subA}) // first dial
	d.step(GoodbyeReceived{Link: 1, Goodbye: goodbye("at capacity", parent("b", 2))})
	d.step(Welcomed{Link: 2, Welcome: welcome("b")}) // refusal replaced: race
	d.observe(policy.Decision{}, Candidate{Substrate: subC, Latency: time.Millisecond}, Candidate{Substrate: subD, Latency: 3 * time.Millisecond})
	d.at(time.Second).step(GoodbyeReceived{Link: 2, Goodbye: goodbye("shutdown")}) // forced move's first dial
	d.until(1250 * time.Millisecond)                                               // attempt delay: race
	if s := d.e.Stats(); s.Dials != 4 || s.RaceDials != 2 {
		t.Errorf("Dials %d, RaceDials %d; want 4 and 2", s.Dials, s.RaceDials)
	}
}

// TestRuleLateGossipAfterSwitch: the old substrate's writer lags (a
// loaded machine): after the welcome the old link delivers nothing for
// 250 ms while the new link delivers what was published after the new
// substrate registered the node, so the engine switches at welcome +
// margin. The messages published just before that registration (m1..m4)
// exist only on the old substrate and arrive on the old link after the
// switch: they must be delivered, once (sockscale's TestScaleMassMigration
// lost them as stale reports under load).
func TestRuleLateGossipAfterSwitch(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		// closedAt is when the old link's LinkClosed comes (ms), 0 never.
		closedAt time.Duration
		// wantOnce are delivered exactly once, wantNever never.
		wantOnce, wantNever []string
		wantStale           int
	}{
		{name: "backlog before the closed report: delivered once", wantOnce: ids(0, 20)},
		{name: "closed report first: the backlog is stale", closedAt: 1200 * ms,
			wantOnce: append([]string{"m0"}, ids(5, 20)...), wantNever: ids(1, 5), wantStale: 19},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, quiet(Config{Tuning: Tuning{OverlapFloor: 100 * ms, OverlapGrace: 100 * ms}}))
			d.attached(subA)
			d.migratingTo(subB)
			arrivals := []arrival{{900 * ms, 1, "m0", nil}} // before the welcome
			for k := 5; k < 20; k++ {                       // published after b registered the node: b forwards at once
				arrivals = append(arrivals, arrival{1000*ms + time.Duration(k-4)*20*ms, 2, fmt.Sprint("m", k), nil})
			}
			for k := 1; k < 20; k++ { // a's backlog, flushed 250 ms after the welcome
				arrivals = append(arrivals, arrival{1250*ms + time.Duration(k)*ms, 1, fmt.Sprint("m", k), nil})
			}
			if tc.closedAt > 0 {
				arrivals = append(arrivals, arrival{tc.closedAt, 1, "closed", nil})
			}
			slices.SortStableFunc(arrivals, func(a, b arrival) int { return int(a.at - b.at) })
			var effs []string
			var late []string // effects of the old link's reports after the switch
			switched := false
			for _, a := range arrivals {
				if d.now.Before(t0.Add(time.Second)) && a.at > time.Second {
					d.at(time.Second)
					effs = append(effs, d.step(Welcomed{Link: 2, Welcome: welcome("b")})...)
					effs = append(effs, d.step(PingDone{Link: 2, RTT: ms})...)
				}
				got := d.until(a.at - 1)
				switched = switched || slices.Contains(got, "overlapping --overlap_done--> cooldown")
				effs = append(effs, got...)
				d.at(a.at)
				var in Input = d.gossip(a.link, a.id)
				if a.id == "closed" {
					in = LinkClosed{Link: 1, Err: errors.New("closed by us")}
				}
				before := d.e.Stats()
				got = d.step(in)
				effs = append(effs, got...)
				wasSwitched := switched
				switched = switched || slices.Contains(got, "overlapping --overlap_done--> cooldown")
				if wasSwitched && a.link == 1 {
					late = append(late, got...)
					// Late gossip changes the counters of delivery only.
					after := d.e.Stats()
					after.Delivered, after.DuplicatesDropped, after.StaleEventsDropped = before.Delivered, before.DuplicatesDropped, before.StaleEventsDropped
					if after != before {
						t.Errorf("%s on the old link changed the stats beyond delivery:\n%+v\n%+v", a.id, before, after)
					}
				}
			}
			if !switched {
				t.Fatalf("no switch before the backlog; transitions: %s", fmtList(transitions(effs)))
			}
			effs = append(effs, d.until(2*time.Second)...)
			delivered := map[string]int{}
			for _, e := range effs {
				if id, ok := strings.CutPrefix(e, "deliver "); ok {
					delivered[strings.Fields(id)[0]]++
				}
			}
			for _, id := range tc.wantOnce {
				if delivered[id] != 1 {
					t.Errorf("%s delivered %d times, want once", id, delivered[id])
				}
			}
			for _, id := range tc.wantNever {
				if delivered[id] != 0 {
					t.Errorf("%s delivered %d times after the old link's closed report, want never", id, delivered[id])
				}
			}
			for _, e := range late {
				if !strings.HasPrefix(e, "deliver ") || !strings.HasSuffix(e, " via a") {
					t.Errorf("the old link's late report had effect %q: want deliveries via a only", e)
				}
			}
			if n := d.e.Stats().StaleEventsDropped; n != tc.wantStale {
				t.Errorf("StaleEventsDropped %d, want %d", n, tc.wantStale)
			}
			if d.e.State() != fsm.Cooldown {
				t.Errorf("state %s, want cooldown: late gossip moved the machine", d.e.State())
			}
		})
	}
}

// ids returns m<from> .. m<to-1>.
func ids(from, to int) []string {
	var out []string
	for k := from; k < to; k++ {
		out = append(out, fmt.Sprint("m", k))
	}
	return out
}
