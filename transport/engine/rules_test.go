package engine

import (
	"errors"
	"fmt"
	"github.com/repram/handover/transport/wire"
	"slices"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
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
