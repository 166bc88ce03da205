// Package repramtest runs real REPRAM TypeScript substrates as child
// processes for tests, the way net/http/httptest runs servers: [Start]
// launches N substrates on free loopback ports, waits for their
// GET /v1/health, and stops every one of them by PID when the test ends,
// also when it fails or panics. Each substrate's output is kept and shown
// when the test fails.
//
// The tests are opt-in: the environment variable HANDOVER_REPRAM_TS names a
// REPRAM TS directory (dist/index.js and node_modules installed, e.g. a copy
// of a REPRAM TS 2.1 checkout after `npm ci --omit=dev`), and `node` must be on
// PATH; otherwise [Dir] skips the test saying how to enable it.
package repramtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/repramtest/ledger"
)

// EnvDir is the environment variable naming a REPRAM TS directory.
const EnvDir = "HANDOVER_REPRAM_TS"

// Dir returns the REPRAM TS directory named by HANDOVER_REPRAM_TS, or skips
// the test with a message saying how to enable it.
func Dir(t testing.TB) string {
	t.Helper()
	how := "to run it against real REPRAM substrates, with REPRAM_TS_SRC a REPRAM TS 2.1 checkout: dir=$(mktemp -d) && cp -r $REPRAM_TS_SRC/. $dir && " +
		"(cd $dir && npm ci --omit=dev --no-audit --no-fund) && export " + EnvDir + "=$dir (Node.js 20 on PATH)"
	dir := os.Getenv(EnvDir)
	if dir == "" {
		t.Skipf("%s is not set; %s", EnvDir, how)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skipf("node is not on PATH (%v); %s", err, how)
	}
	for _, p := range []string{"dist/index.js", "node_modules"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("%s=%s: %v: it must hold REPRAM TS with its dependencies installed; %s", EnvDir, dir, err, how)
		}
	}
	return dir
}

// Options configures the substrates of a [Cluster].
type Options struct {
	Secret      string // REPRAM_CLUSTER_SECRET; default "handover-interop"
	Replication int    // REPRAM_REPLICATION; default 2
	Enclave     string // REPRAM_ENCLAVE; default "default"
	MaxChildren int    // REPRAM_MAX_CHILDREN; 0 keeps REPRAM's default (100)
	// IDs names the substrates; default ra, rb, rc, ...
	IDs []string
	// Seeds chooses each substrate's REPRAM_PEERS from the HTTP addresses
	// of those started before it (index i gets Seeds(i, earlier)); default
	// the first substrate for every other one.
	Seeds func(i int, earlier []string) []string
	// Ready bounds the wait for /v1/health; default 15s.
	Ready time.Duration
}

// Cluster is a set of REPRAM substrates run by one test.
type Cluster struct {
	t       testing.TB
	opt     Options
	dir     string
	Nodes   []*Substrate
	client  *ledger.Client
	cleaned bool
}

// Substrate is one REPRAM TS process.
type Substrate struct {
	ID         string
	HTTPPort   int
	GossipPort int
	Enclave    string

	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	err  error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 { // keep the beginning, bound the memory
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start launches n substrates (each seeded with the first, or as
// opt.Seeds says) and waits until every one answers GET /v1/health. Every
// process is stopped by PID in t.Cleanup. It skips the test when REPRAM TS
// is not available (see [Dir]).
func Start(t testing.TB, n int, opt Options) *Cluster {
	t.Helper()
	dir := Dir(t)
	if opt.Secret == "" {
		opt.Secret = "handover-interop"
	}
	if opt.Replication == 0 {
		opt.Replication = 2
	}
	if opt.Enclave == "" {
		opt.Enclave = "default"
	}
	if opt.Ready <= 0 {
		opt.Ready = 15 * time.Second
	}
	if opt.Seeds == nil {
		opt.Seeds = func(i int, earlier []string) []string { return earlier[:min(1, len(earlier))] }
	}
	c := &Cluster{t: t, opt: opt, dir: dir, client: ledger.NewClient(time.Second)}
	t.Cleanup(c.cleanup)
	var addrs []string
	for i := range n {
		id := fmt.Sprintf("r%c", 'a'+i)
		if i < len(opt.IDs) {
			id = opt.IDs[i]
		}
		s := c.launch(id, opt.Seeds(i, addrs))
		addrs = append(addrs, s.HTTP())
		// One at a time: REPRAM bootstraps from the first seed that answers.
		c.WaitHealthy(s)
	}
	return c
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) launch(id string, seeds []string) *Substrate {
	c.t.Helper()
	ports, err := freePorts(2)
	if err != nil {
		c.t.Fatalf("repramtest: free ports: %v", err)
	}
	s := &Substrate{ID: id, HTTPPort: ports[0], GossipPort: ports[1], Enclave: c.opt.Enclave,
		out: &lockedBuffer{}, done: make(chan struct{})}
	cmd := exec.Command("node", "dist/index.js")
	cmd.Dir = c.dir
	env := append(os.Environ(),
		"REPRAM_MODE=standalone", "REPRAM_NETWORK=private", "REPRAM_ADDRESS=127.0.0.1", "REPRAM_INBOUND=true",
		"REPRAM_NODE_ID="+id, "REPRAM_HTTP_PORT="+strconv.Itoa(s.HTTPPort),
		"REPRAM_GOSSIP_PORT="+strconv.Itoa(s.GossipPort), "REPRAM_CLUSTER_SECRET="+c.opt.Secret,
		"REPRAM_REPLICATION="+strconv.Itoa(c.opt.Replication), "REPRAM_RATE_LIMIT=1000000",
		"REPRAM_LOG_LEVEL=warn", "REPRAM_ENCLAVE="+c.opt.Enclave)
	if c.opt.MaxChildren > 0 {
		env = append(env, "REPRAM_MAX_CHILDREN="+strconv.Itoa(c.opt.MaxChildren))
	}
	if len(seeds) > 0 {
		env = append(env, "REPRAM_PEERS="+joinComma(seeds))
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = s.out, s.out
	// Its own process group (a Ctrl-C of go test is not its business), and
	// killed with the test binary's thread if the binary dies before its
	// cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("repramtest: start %s: %v", id, err)
	}
	s.cmd = cmd
	c.Nodes = append(c.Nodes, s)
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
	}()
	return s
}

func joinComma(xs []string) string {
	var b bytes.Buffer
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

// WaitHealthy waits, bounded by Options.Ready, for s to answer
// GET /v1/health with its id; it fails the test otherwise.
func (c *Cluster) WaitHealthy(s *Substrate) {
	c.t.Helper()
	deadline := time.Now().Add(c.opt.Ready)
	for i := 0; time.Now().Before(deadline) && i < 1000; i++ {
		select {
		case <-s.done:
			c.t.Fatalf("repramtest: %s exited before answering /v1/health (%v); its output:\n%s", s.ID, s.exitErr(), s.out)
		default:
		}
		h, err := c.client.Health(context.Background(), s.HTTP())
		if err == nil && h.NodeID == s.ID {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("repramtest: %s did not answer /v1/health within %v; its output:\n%s", s.ID, c.opt.Ready, s.out)
}

func (s *Substrate) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// cleanup stops every process by PID (SIGKILL; a stopped one too) and
// waits for it, and shows every substrate's output when the test failed.
func (c *Cluster) cleanup() {
	if c.cleaned {
		return
	}
	c.cleaned = true
	for _, s := range c.Nodes {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			c.t.Errorf("repramtest: %s (pid %d) did not exit 5s after SIGKILL", s.ID, s.cmd.Process.Pid)
		}
	}
	if c.t.Failed() {
		for _, s := range c.Nodes {
			c.t.Logf("repramtest: output of %s (pid %d, http %d):\n%s", s.ID, s.cmd.Process.Pid, s.HTTPPort, s.out)
		}
	}
}

// Node returns the substrate named id; it fails the test for an unknown id.
func (c *Cluster) Node(id string) *Substrate {
	for _, s := range c.Nodes {
		if s.ID == id {
			return s
		}
	}
	c.t.Fatalf("repramtest: no substrate %q", id)
	return nil
}

// Client returns the bounded HTTP client the cluster uses.
func (c *Cluster) Client() *ledger.Client { return c.client }

// Ledger returns every substrate as the ledger names them.
func (c *Cluster) Ledger() []ledger.Substrate {
	out := make([]ledger.Substrate, 0, len(c.Nodes))
	for _, s := range c.Nodes {
		out = append(out, ledger.Substrate{ID: s.ID, HTTP: s.HTTP()})
	}
	return out
}

// HTTP returns the substrate's HTTP address, 127.0.0.1:PORT.
func (s *Substrate) HTTP() string { return "127.0.0.1:" + strconv.Itoa(s.HTTPPort) }

// URL returns the substrate's attachment endpoint, ws://127.0.0.1:PORT/v1/ws.
func (s *Substrate) URL() string { return "ws://" + s.HTTP() + "/v1/ws" }

// Transport returns the substrate as transport.Node names it.
func (s *Substrate) Transport() transport.Substrate {
	return transport.Substrate{ID: s.ID, URL: s.URL(), Enclave: s.Enclave}
}

// PID returns the process id.
func (s *Substrate) PID() int { return s.cmd.Process.Pid }

// Output returns what the process printed so far.
func (s *Substrate) Output() string { return s.out.String() }

// Exited reports whether the process has ended.
func (s *Substrate) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Substrate) signal(sig syscall.Signal) error {
	if s.Exited() {
		return fmt.Errorf("repramtest: %s has already exited", s.ID)
	}
	return s.cmd.Process.Signal(sig)
}

// Kill ends the process with SIGKILL (no goodbye) and waits for it.
func (s *Substrate) Kill() error {
	if err := s.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return s.Wait(5 * time.Second)
}

// Stop freezes the process (SIGSTOP): its sockets stay open and silent.
func (s *Substrate) Stop() error { return s.signal(syscall.SIGSTOP) }

// Cont resumes a stopped process (SIGCONT).
func (s *Substrate) Cont() error { return s.signal(syscall.SIGCONT) }

// Shutdown asks the process to leave (SIGTERM): REPRAM sends its children
// goodbye twice about 500 ms apart, then closes their links (1001).
func (s *Substrate) Shutdown() error { return s.signal(syscall.SIGTERM) }

// Wait waits, bounded by d, for the process to exit.
func (s *Substrate) Wait(d time.Duration) error {
	select {
	case <-s.done:
		return nil
	case <-time.After(d):
		return errors.New("repramtest: " + s.ID + " still running after " + d.String())
	}
}

// Topology returns GET /v1/topology's peer ids of s.
func (c *Cluster) Topology(s *Substrate) ([]string, error) {
	topo, err := c.client.Topology(context.Background(), s.HTTP())
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(topo.Peers))
	for _, p := range topo.Peers {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// WaitMesh waits, bounded by d, until every running substrate's
// /v1/topology names every other running one (a full mesh), and returns
// an error describing the mesh otherwise. REPRAM reaches one only when
// the replication factor is at least the number of substrates.
func (c *Cluster) WaitMesh(d time.Duration) error {
	deadline := time.Now().Add(d)
	var last string
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		full := true
		last = ""
		for _, s := range c.Nodes {
			if s.Exited() {
				continue
			}
			peers, err := c.Topology(s)
			last += fmt.Sprintf(" %s→%v", s.ID, peers)
			for _, o := range c.Nodes {
				if o != s && !o.Exited() && (err != nil || !slices.Contains(peers, o.ID)) {
					full = false
				}
			}
		}
		if full {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("repramtest: no full mesh within %v:%s", d, last)
}

// Announce makes every running substrate know every other one, with
// signed POST /v1/bootstrap announcements (what REPRAM itself does when a
// node joins), so that the mesh is full whatever the replication factor.
func (c *Cluster) Announce() error {
	for _, s := range c.Nodes {
		for _, o := range c.Nodes {
			if s == o || s.Exited() || o.Exited() {
				continue
			}
			body, err := json.Marshal(map[string]any{"node_id": o.ID, "address": "127.0.0.1",
				"gossip_port": o.GossipPort, "http_port": o.HTTPPort, "enclave": o.Enclave})
			if err != nil {
				return err
			}
			mac := hmac.New(sha256.New, []byte(c.opt.Secret))
			mac.Write(body)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.HTTP()+"/v1/bootstrap", bytes.NewReader(body))
			if err != nil {
				cancel()
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Repram-Signature", hex.EncodeToString(mac.Sum(nil)))
			resp, err := c.client.HTTP.Do(req)
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			cancel()
			if err != nil {
				return fmt.Errorf("repramtest: announce %s to %s: %w", o.ID, s.ID, err)
			}
		}
	}
	return nil
}
