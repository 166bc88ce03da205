// Package scenario reads migsim's scenario files (testdata/scenarios): a
// simulated REPRAM mesh, the latencies its substrates show the policy cycle
// by cycle, the faults done to them, and the transport's timings.
package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/substratetest"
)

// Scenario is a simulated network, read from a JSON file in
// testdata/scenarios/ (the format is documented in the README there).
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Node        struct {
		ID      string `json:"id"`
		Enclave string `json:"enclave"`
	} `json:"node"`
	Secret      string          `json:"secret"`
	Cycle       Duration        `json:"cycle"`        // evaluation cycle length
	Cycles      int             `json:"cycles"`       // how many evaluation cycles the run lasts
	PublishRate float64         `json:"publish_rate"` // messages per second published in the mesh
	Seed        uint64          `json:"seed"`         // seeds the latency jitter
	Start       string          `json:"start"`        // the substrate the node attaches to first
	Transport   Timings         `json:"transport"`
	Policy      PolicyConfig    `json:"policy"`
	Substrates  []SubstrateSpec `json:"substrates"`
	Phases      []Phase         `json:"phases"`
	Faults      []Fault         `json:"faults"`

	// lat[i][c] is substrate i's latency fed to the policy in cycle c
	// (1-based; index 0 unused); 0 means not measured that cycle.
	lat [][]time.Duration
}

// Timings are the transport's timings for the run, scaled to the cycle.
type Timings struct {
	HandshakeTimeout Duration `json:"handshake_timeout"`
	OverlapFloor     Duration `json:"overlap_floor"`
	OverlapGrace     Duration `json:"overlap_grace"`
	OverlapMax       Duration `json:"overlap_max"`
	Heartbeat        Duration `json:"heartbeat"`
	GoodbyeGap       Duration `json:"goodbye_gap"` // between a shutting-down substrate's two goodbyes
}

// PolicyConfig mirrors policy.Config with snake_case names; zero fields
// take the policy's defaults.
type PolicyConfig struct {
	Improvement         float64 `json:"improvement"`
	Streak              int     `json:"streak"`
	CooldownCycles      int     `json:"cooldown_cycles"`
	BackoffCycles       int     `json:"backoff_cycles"`
	BackoffMaxCycles    int     `json:"backoff_max_cycles"`
	PingPongWindow      int     `json:"ping_pong_window"`
	PingPongMaxStreak   int     `json:"ping_pong_max_streak"`
	PingPongRelaxCycles int     `json:"ping_pong_relax_cycles"`
}

// Config returns the policy configuration.
func (p PolicyConfig) Config() policy.Config {
	return policy.Config{Improvement: p.Improvement, Streak: p.Streak, CooldownCycles: p.CooldownCycles,
		BackoffCycles: p.BackoffCycles, BackoffMaxCycles: p.BackoffMaxCycles, PingPongWindow: p.PingPongWindow,
		PingPongMaxStreak: p.PingPongMaxStreak, PingPongRelaxCycles: p.PingPongRelaxCycles}
}

// SubstrateSpec is one substrate of the simulated mesh.
type SubstrateSpec struct {
	ID      string        `json:"id"`
	Enclave string        `json:"enclave"`
	Delay   Duration      `json:"delay"` // mesh propagation delay to this substrate
	Latency []LatencyStep `json:"latency"`
}

// LatencyStep sets a substrate's latency from cycle From until the next step.
type LatencyStep struct {
	From    int     `json:"from"`
	Latency string  `json:"latency"` // a Go duration ("40ms"), or "-" for not measured
	Jitter  float64 `json:"jitter"`  // uniform noise, as a fraction: 0.25 is ±25 %
}

// Phase names a stretch of the run, for the timeline and the plot.
type Phase struct {
	From int    `json:"from"`
	Name string `json:"name"`
}

// Fault is something done to a substrate during the run.
type Fault struct {
	Cycle     int    `json:"cycle"`     // applied at the start of this cycle (or armed, with when)
	Substrate string `json:"substrate"` // the substrate's id
	Action    string `json:"action"`    // see FaultActions
	Value     string `json:"value"`     // the action's argument, when it takes one
	// When "leaving", the fault is armed at Cycle and fires once the node
	// starts leaving the substrate (overlap begins, or a break-before-make
	// closes it), After later.
	When  string   `json:"when"`
	After Duration `json:"after"`
}

// FaultActions are the fault actions and what each does, for errors, docs
// and timelines.
var FaultActions = map[string]string{
	"refuse":        "answer every hello with goodbye \"at capacity\"",
	"mute":          "never answer hellos (handshake timeout)",
	"welcome_delay": "delay each welcome by value (a duration)",
	"no_forward":    "welcome but forward no gossip",
	"corrupt":       "send broken frames: value is malformed, unsigned, bad-signature, null or binary",
	"heal":          "clear every fault",
	"delay":         "set the mesh propagation delay to value (a duration)",
	"kill":          "die abruptly (no goodbye, TCP closed)",
	"shutdown":      "leave gracefully: goodbye twice with alternatives, then close",
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// UnmarshalJSON reads "250ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string like \"250ms\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes "250ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// LoadScenario reads and validates a scenario file. A bare name such as
// "default" means testdata/scenarios/default.json under the module root.
func LoadScenario(name string) (*Scenario, error) {
	path, err := resolve(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// resolve finds a scenario file: as given, else under the module root,
// else as a name in testdata/scenarios.
func resolve(name string) (string, error) {
	if _, err := os.Stat(name); err == nil {
		return name, nil
	}
	root, err := moduleRoot()
	if err != nil || filepath.IsAbs(name) {
		return "", fmt.Errorf("scenario %q: no such file", name)
	}
	for _, p := range []string{filepath.Join(root, name), filepath.Join(root, "testdata", "scenarios", name+".json")} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("scenario %q: no such file (looked in ., %s and %s)", name, root,
		filepath.Join(root, "testdata", "scenarios"))
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the handover module: run migsim from the repository")
		}
		dir = parent
	}
}

// ParseScenario decodes and validates a scenario, and computes its latency
// schedule (deterministic for a given seed).
func ParseScenario(b []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("decode JSON: %w (see testdata/scenarios/README.md)", err)
	}
	if err := sc.validate(); err != nil {
		return nil, err
	}
	sc.schedule()
	return &sc, nil
}

func (sc *Scenario) validate() error {
	if sc.Node.ID == "" {
		sc.Node.ID = "migsim-node"
	}
	if sc.Node.Enclave == "" {
		return errors.New("node.enclave is empty: name the transient node's enclave")
	}
	if sc.Cycle <= 0 || sc.Cycles <= 0 {
		return errors.New("cycle and cycles must be positive (e.g. \"cycle\": \"200ms\", \"cycles\": 100)")
	}
	if sc.PublishRate < 0 || sc.PublishRate > 20000 {
		return fmt.Errorf("publish_rate %v: want 0..20000 messages a second", sc.PublishRate)
	}
	if err := sc.Policy.Config().Validate(); err != nil {
		return err
	}
	if len(sc.Substrates) == 0 {
		return errors.New("no substrates: list at least one")
	}
	ids := map[string]bool{}
	for _, s := range sc.Substrates {
		if s.ID == "" || ids[s.ID] {
			return fmt.Errorf("substrate id %q is empty or listed twice", s.ID)
		}
		if s.ID == sc.Node.ID {
			return fmt.Errorf("substrate %q has the node's id", s.ID)
		}
		ids[s.ID] = true
		if s.Enclave == "" {
			return fmt.Errorf("substrate %s: enclave is empty", s.ID)
		}
		last := 0
		for _, st := range s.Latency {
			if st.From <= last {
				return fmt.Errorf("substrate %s: latency steps must have increasing from cycles ≥ 1 (got %d after %d)", s.ID, st.From, last)
			}
			last = st.From
			if st.Jitter < 0 || st.Jitter >= 1 {
				return fmt.Errorf("substrate %s: jitter %v: want a fraction in [0, 1)", s.ID, st.Jitter)
			}
			if _, err := parseLatency(st.Latency); err != nil {
				return fmt.Errorf("substrate %s: %w", s.ID, err)
			}
		}
	}
	if !ids[sc.Start] {
		return fmt.Errorf("start %q is not a listed substrate", sc.Start)
	}
	for _, f := range sc.Faults {
		if !ids[f.Substrate] {
			return fmt.Errorf("fault at cycle %d: unknown substrate %q", f.Cycle, f.Substrate)
		}
		if _, ok := FaultActions[f.Action]; !ok {
			return fmt.Errorf("fault at cycle %d: unknown action %q: want one of %s", f.Cycle, f.Action, actionNames())
		}
		if f.When != "" && f.When != "leaving" {
			return fmt.Errorf("fault at cycle %d: when %q: want \"leaving\" or nothing", f.Cycle, f.When)
		}
		switch f.Action {
		case "welcome_delay", "delay":
			if _, err := time.ParseDuration(f.Value); err != nil {
				return fmt.Errorf("fault %s at cycle %d: value %q: want a duration", f.Action, f.Cycle, f.Value)
			}
		case "corrupt":
			if _, err := Corruption(f.Value); err != nil {
				return fmt.Errorf("fault at cycle %d: %w", f.Cycle, err)
			}
		}
	}
	return nil
}

func actionNames() string {
	var out []string
	for k := range FaultActions {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func parseLatency(s string) (time.Duration, error) {
	if s == "-" || s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("latency %q: want a positive duration like \"40ms\", or \"-\" for not measured", s)
	}
	return d, nil
}

// schedule computes every substrate's latency in every cycle.
func (sc *Scenario) schedule() {
	rng := rand.New(rand.NewPCG(sc.Seed, 0x6d6967))
	sc.lat = make([][]time.Duration, len(sc.Substrates))
	for i := range sc.lat {
		sc.lat[i] = make([]time.Duration, sc.Cycles+1)
	}
	for c := 1; c <= sc.Cycles; c++ {
		for i, s := range sc.Substrates {
			var cur *LatencyStep
			for k := range s.Latency {
				if s.Latency[k].From <= c {
					cur = &s.Latency[k]
				}
			}
			noise := rng.Float64()*2 - 1 // drawn every cycle so one substrate's steps never shift another's noise
			if cur == nil {
				continue
			}
			base, _ := parseLatency(cur.Latency)
			if base > 0 {
				sc.lat[i][c] = time.Duration(float64(base) * (1 + cur.Jitter*noise)).Round(100 * time.Microsecond)
			}
		}
	}
}

// Latency is substrate i's latency in cycle c (0: not measured).
func (sc *Scenario) Latency(i, c int) time.Duration {
	if c < 1 || c > sc.Cycles {
		return 0
	}
	return sc.lat[i][c]
}

// Index returns the index of substrate id, or -1.
func (sc *Scenario) Index(id string) int {
	for i, s := range sc.Substrates {
		if s.ID == id {
			return i
		}
	}
	return -1
}

// PhaseAt returns the name of the phase cycle c is in.
func (sc *Scenario) PhaseAt(c int) string {
	name := ""
	for _, p := range sc.Phases {
		if p.From <= c {
			name = p.Name
		}
	}
	return name
}

// TransportConfig is the configuration of node id the scenario implies.
func (sc *Scenario) TransportConfig(id string) transport.Config {
	return transport.Config{
		Identity: transport.Identity{NodeID: id, Enclave: sc.Node.Enclave, Address: "127.0.0.1"},
		Secret:   []byte(sc.Secret),
		Policy:   sc.Policy.Config(),
		Tuning:   sc.Transport.Tuning(sc.Cycle.D()),
	}
}

// Tuning is the engine tuning the timings imply for an evaluation cycle;
// zero fields keep the engine's defaults.
func (t Timings) Tuning(cycle time.Duration) engine.Tuning {
	return engine.Tuning{
		HandshakeTimeout:  t.HandshakeTimeout.D(),
		OverlapFloor:      t.OverlapFloor.D(),
		OverlapGrace:      t.OverlapGrace.D(),
		OverlapMax:        t.OverlapMax.D(),
		HeartbeatInterval: t.Heartbeat.D(),
		RejoinBackoff:     cycle / 4,
		RejoinBackoffMax:  2 * cycle,
	}
}

// Corruption is the substratetest corruption a "corrupt" fault's value
// names.
func Corruption(v string) (substratetest.Corruption, error) {
	for c := substratetest.CorruptMalformed; c <= substratetest.CorruptBinary; c++ {
		if c.String() == v {
			return c, nil
		}
	}
	return 0, fmt.Errorf("corrupt %q: want malformed, unsigned, bad-signature, null or binary", v)
}
