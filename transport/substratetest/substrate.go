package substratetest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/repram/handover/transport/wire"
)

const (
	// Path is the WebSocket endpoint a substrate serves, as REPRAM does.
	Path = "/v1/ws"
	// DataPath is the prefix of REPRAM's write API: PUT DataPath+KEY with
	// the value as the body and an X-TTL header (seconds).
	DataPath = "/v1/data/"
	// MaxValue is the largest value the write API takes: forwarded as
	// base64 in a put frame, it still fits a 1 MiB read limit.
	MaxValue = 768 << 10
)

// Config configures one substrate of a [Mesh].
type Config struct {
	// ID is the substrate's node id; required, unique among live substrates.
	ID string
	// Enclave is the substrate's enclave (default [DefaultEnclave]). It
	// forwards gossip only to children whose hello named exactly this.
	Enclave string
	// Delay is the mesh's propagation delay to this substrate: a published
	// message reaches it, and so its children, after Delay. Change it later
	// with [Server.SetDelay].
	Delay time.Duration
	// Heartbeat is the WebSocket ping interval. Zero turns pings off; use
	// [REPRAMHeartbeat] for REPRAM's 30 s. A connection that leaves
	// [HeartbeatMisses] pings in a row unanswered (each waits one interval)
	// is dropped.
	Heartbeat time.Duration
	// TLS, when set, makes the substrate serve TLS: its URL is then
	// wss://127.0.0.1:PORT/v1/ws. The config must hold a certificate
	// valid for 127.0.0.1.
	TLS *tls.Config
	// SendBuffer, when positive, is the kernel send buffer (SO_SNDBUF) of
	// each connection the substrate accepts, so that writes to a child that
	// stops reading block after about that many bytes rather than after the
	// few MiB loopback's autotuning allows. Zero keeps the system's default.
	SendBuffer int
}

type state int

const (
	running      state = iota
	shuttingDown       // sending goodbyes: forwards, ignores hellos
	stopped
)

// Server is one in-process substrate server on 127.0.0.1, serving the
// REPRAM attachment WebSocket at [Path]. Its methods are safe for concurrent
// use. Stop it with Close, Kill or Shutdown (or [Mesh.Close]); the first of
// them wins and the others wait for it to finish.
type Server struct {
	mesh *Mesh
	cfg  Config
	log  zerolog.Logger
	srv  *http.Server
	ln   net.Listener
	port int
	gate *readGate // stalls reads while Faults.NoRead or Faults.Hang is set
	hold readGate  // stalls writes while Faults.Hang is set

	delay atomic.Int64 // time.Duration
	live  atomic.Bool  // in the mesh: receives publishes, listed in topologies

	mu        sync.Mutex
	state     state
	stopping  bool
	faults    Faults
	onHello   func(wire.Hello)
	conns     map[*conn]struct{}
	children  map[string]*conn // registered (welcomed) children by node id
	hellod    map[string]*conn // latest connection to send a hello, by node id
	forwarded map[string]int

	imu   sync.Mutex
	inbox []delivery
	wake  chan struct{}

	stop chan struct{} // closed when the substrate stops
	done chan struct{} // closed when every goroutine has ended
	wg   sync.WaitGroup
}

type delivery struct {
	msg wire.Message
	due time.Time
}

type rawConnKey struct{}

// Start starts a substrate in the mesh, listening on 127.0.0.1 on a free
// port. An id whose substrate was stopped may be started again: the new
// substrate replaces it.
func (m *Mesh) Start(cfg Config) (*Server, error) {
	if cfg.ID == "" {
		return nil, errors.New("substratetest: Config.ID is required")
	}
	if cfg.Enclave == "" {
		cfg.Enclave = DefaultEnclave
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrMeshClosed
	}
	if old := m.subs[cfg.ID]; old != nil && old.live.Load() {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateID, cfg.ID)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("substratetest: listen on loopback for %q: %w", cfg.ID, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if cfg.SendBuffer > 0 {
		ln = sendBufferListener{ln, cfg.SendBuffer, m.log}
	}
	gate := &readGate{}
	ln = gate.listener(ln)
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS.Clone())
	}
	s := &Server{
		mesh:      m,
		cfg:       cfg,
		log:       m.log.With().Str("substrate", cfg.ID).Logger(),
		ln:        ln,
		port:      port,
		gate:      gate,
		conns:     make(map[*conn]struct{}),
		children:  make(map[string]*conn),
		hellod:    make(map[string]*conn),
		forwarded: make(map[string]int),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	s.delay.Store(int64(cfg.Delay))
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serveWS)
	mux.HandleFunc("PUT "+DataPath+"{key}", s.servePut)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn() // Kill drops TCP, with no TLS close_notify
			}
			return context.WithValue(ctx, rawConnKey{}, c)
		},
	}
	s.live.Store(true)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln) // returns when halt closes the server
	}()
	go s.inboxLoop()
	m.subs[cfg.ID] = s
	m.all = append(m.all, s)
	s.log.Debug().Str("url", s.URL()).Msg("substrate started")
	return s, nil
}

// sendBufferListener sets the kernel send buffer of each TCP connection it
// accepts.
type sendBufferListener struct {
	net.Listener
	size int
	log  zerolog.Logger
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		if serr := tc.SetWriteBuffer(l.size); serr != nil {
			// The default stays: writes to a deaf child block later.
			l.log.Warn().Err(serr).Int("send_buffer", l.size).Msg("cannot set the send buffer; keeping the default")
		}
	}
	return c, err
}

// URL returns the WebSocket URL, ws://127.0.0.1:PORT/v1/ws, or wss://
// when the substrate serves TLS.
func (s *Server) URL() string {
	if s.cfg.TLS != nil {
		return "wss://" + s.Addr() + Path
	}
	return "ws://" + s.Addr() + Path
}

// Addr returns the listener's address, 127.0.0.1:PORT.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// ID returns the substrate's node id.
func (s *Server) ID() string { return s.cfg.ID }

// Enclave returns the substrate's enclave.
func (s *Server) Enclave() string { return s.cfg.Enclave }

// Parent returns the substrate as a goodbye names it among
// alternative_parents: id, address 127.0.0.1, http_port the listener's
// port, enclave.
func (s *Server) Parent() wire.Parent {
	return wire.Parent{ID: s.cfg.ID, Address: "127.0.0.1", HTTPPort: s.port, Enclave: s.cfg.Enclave}
}

// nodeInfo is the substrate in a topology SYNC. It has no separate gossip
// port, so port and http_port are both the listener's port.
func (s *Server) nodeInfo() wire.NodeInfo {
	return wire.NodeInfo{ID: s.cfg.ID, Address: "127.0.0.1", Port: s.port, HTTPPort: s.port, Enclave: s.cfg.Enclave}
}

// Delay returns the mesh's current propagation delay to the substrate.
func (s *Server) Delay() time.Duration { return time.Duration(s.delay.Load()) }

// SetDelay changes the propagation delay for messages published from now
// on. Delivery stays in publication order: a message never overtakes one
// published before it, even when the delay shrinks.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// SetOnHello installs fn to be called with every hello the substrate
// accepts (signature valid), before any fault applies; nil removes it. fn
// runs on the connection's reader and must not block.
func (s *Server) SetOnHello(fn func(wire.Hello)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onHello = fn
}

// Children returns the node ids of the currently registered children: those
// welcomed and not gone, sorted. Registration follows REPRAM: a second
// hello from the same node id on another connection replaces the first
// connection's registration (the first stays open but receives no more
// gossip), and when either connection of that id closes the registration is
// removed, so forwarding silently stops on the one still open.
func (s *Server) Children() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.children))
}

// Forwarded returns how many valid put frames this substrate wrote to
// connections registered under childID.
func (s *Server) Forwarded(childID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forwarded[childID]
}

// Send writes one valid frame of type t around payload (signed with the
// mesh secret) to the latest connection that sent a hello as childID, after
// the frames already queued for it, and waits until it is written. Use it
// to send a goodbye, an ack or any frame out of band.
func (s *Server) Send(childID string, t wire.Type, payload any) error {
	f, err := s.mesh.encode(t, payload, CorruptNone)
	if err != nil {
		return err
	}
	return s.sendTo(childID, f)
}

// SendRaw writes frame as it is, as a WebSocket message of type typ, to the
// latest connection that sent a hello as childID, and waits until it is
// written: for hostile-peer tests.
func (s *Server) SendRaw(childID string, typ websocket.MessageType, frame []byte) error {
	return s.sendTo(childID, outFrame{typ: typ, data: slices.Clone(frame)})
}

func (s *Server) sendTo(childID string, f outFrame) error {
	s.mu.Lock()
	c := s.hellod[childID]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %q on substrate %q", ErrUnknownChild, childID, s.cfg.ID)
	}
	if err := c.sendWait(f); err != nil {
		return fmt.Errorf("substratetest: send to %q on substrate %q: %w", childID, s.cfg.ID, err)
	}
	return nil
}

// servePut is REPRAM's write API, PUT /v1/data/KEY with the value as the
// body and its ttl in seconds in the X-TTL header: the write enters the
// mesh as written on this substrate ([Mesh.PublishVia]), so it reaches the
// other substrates' children but not this one's.
func (s *Server) servePut(w http.ResponseWriter, r *http.Request) {
	ttl := DefaultTTL
	if h := r.Header.Get("X-TTL"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n <= 0 {
			http.Error(w, "X-TTL must be a positive number of seconds", http.StatusBadRequest)
			return
		}
		ttl = n
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxValue+1))
	if err != nil {
		http.Error(w, "reading the value: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(data) > MaxValue {
		http.Error(w, "value too large", http.StatusRequestEntityTooLarge)
		return
	}
	if _, err := s.mesh.PublishVia(s.cfg.ID, wire.Message{Key: r.PathValue("key"), Data: data, TTL: ttl}); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// serveWS is the /v1/ws handler: it upgrades and then runs the connection
// until it ends.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered with an HTTP error
	}
	raw, _ := r.Context().Value(rawConnKey{}).(net.Conn)
	c := newConn(s, ws, raw)
	s.mu.Lock()
	if s.state != running {
		s.mu.Unlock()
		c.closeNow()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	c.serve()
}

// forget removes an ended connection. Like REPRAM, it unregisters the
// connection's child id even when a later hello on another connection
// registered that id since.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if c.childID != "" {
		delete(s.children, c.childID)
	}
	if c.nodeID != "" && s.hellod[c.nodeID] == c {
		delete(s.hellod, c.nodeID)
	}
}

// deliver queues a mesh message for fan-out after the substrate's delay.
func (s *Server) deliver(msg wire.Message) {
	s.imu.Lock()
	s.inbox = append(s.inbox, delivery{msg: msg, due: time.Now().Add(s.Delay())})
	s.imu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Pending returns how many messages the mesh delivered to the substrate
// that it has not yet handed to its children's queues (waiting out the
// delay, or being fanned out). Zero means every message published so far
// is either queued for its children or was never meant for them.
func (s *Server) Pending() int {
	s.imu.Lock()
	defer s.imu.Unlock()
	return len(s.inbox)
}

// inboxLoop hands mesh messages to fanout in order, each when due, until
// the substrate stops.
func (s *Server) inboxLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.imu.Lock()
		if len(s.inbox) == 0 {
			s.imu.Unlock()
			select {
			case <-s.stop:
				return
			case <-s.wake:
				continue
			}
		}
		next := s.inbox[0]
		s.imu.Unlock()
		if wait := time.Until(next.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-s.stop:
				return
			case <-timer.C:
			}
		}
		s.fanout(next.msg)
		s.imu.Lock()
		s.inbox[0] = delivery{}
		s.inbox = s.inbox[1:]
		s.imu.Unlock()
	}
}

// fanout forwards a mesh message as a put to every registered child whose
// hello named exactly the substrate's enclave, unless NoForward is set.
func (s *Server) fanout(msg wire.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stopped || s.faults.NoForward {
		return
	}
	var frame outFrame
	built := false
	for id, c := range s.children {
		if c.enclave != s.cfg.Enclave {
			continue
		}
		if !built {
			var err error
			if frame, err = s.mesh.encode(wire.TypePut, msg, s.faults.Corrupt); err != nil {
				s.log.Error().Err(err).Str("message_id", msg.MessageID).Msg("cannot encode put")
				return
			}
			built = true
		}
		f := frame
		f.put, f.child = true, id
		c.enqueue(f)
	}
}

func (s *Server) countForward(childID string) {
	s.mu.Lock()
	s.forwarded[childID]++
	s.mu.Unlock()
	s.mesh.countForward(childID)
}

// beginStop reports whether the caller is the first to stop the substrate;
// a later caller waits until the first has finished.
func (s *Server) beginStop() bool {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.done
		return false
	}
	s.stopping = true
	s.mu.Unlock()
	s.hold.set(false) // stopping ends a hang: queued frames, goodbyes and close frames go out
	return true
}

// Close stops the substrate: it leaves the mesh, stops listening, closes
// every connection with status 1001 (going away) and no goodbye, and waits
// for all its goroutines. A peer that does not finish the close handshake
// within the mesh's WriteTimeout has its TCP connection closed.
func (s *Server) Close() {
	if s.beginStop() {
		s.halt(true)
	}
}

// Kill makes the substrate die abruptly, like a crashed process: it leaves
// the mesh, and closes its listener and every TCP connection without a close
// frame or goodbye. It waits for all its goroutines.
func (s *Server) Kill() {
	if s.beginStop() {
		s.log.Debug().Msg("killed")
		s.halt(false)
	}
}

// Shutdown stops the substrate gracefully, as REPRAM TS v2.1 does: it stops
// listening, sends every registered child a goodbye of reason "shutdown"
// naming alternatives (nil: its live peers, same enclave first, at most
// [MaxAlternatives]), and, if twice, the same goodbye again after the
// mesh's GoodbyeGap; then it closes every connection with status 1001 and
// waits for its goroutines. It keeps forwarding gossip until it closes.
// It returns within about GoodbyeGap plus three WriteTimeouts.
func (s *Server) Shutdown(alternatives []wire.Parent, twice bool) {
	if !s.beginStop() {
		return
	}
	s.mu.Lock()
	s.state = shuttingDown
	s.mu.Unlock()
	_ = s.srv.Close() // no new connections
	if alternatives == nil {
		alternatives = s.mesh.alternatives(s)
	}
	gb := wire.Goodbye{Reason: "shutdown", AlternativeParents: nonNil(alternatives)}
	s.goodbyeAll(gb)
	if twice {
		time.Sleep(s.mesh.cfg.GoodbyeGap)
		s.goodbyeAll(gb)
	}
	s.halt(true)
}

// goodbyeAll sends gb to every registered child and waits for the writes.
func (s *Server) goodbyeAll(gb wire.Goodbye) {
	s.mu.Lock()
	f, err := s.mesh.encode(wire.TypeGoodbye, gb, s.faults.Corrupt)
	children := slices.Collect(maps.Values(s.children))
	s.mu.Unlock()
	if err != nil {
		s.log.Error().Err(err).Msg("cannot encode goodbye")
		return
	}
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(func() { _ = c.sendWait(f) })
	}
	wg.Wait()
}

// halt takes the substrate out of the mesh and ends every goroutine. With
// graceful, connections get a 1001 close; without, their TCP connections
// are just closed.
func (s *Server) halt(graceful bool) {
	s.live.Store(false)
	s.gate.set(false) // a stopping substrate reads again, so its close handshakes complete
	s.mu.Lock()
	s.state = stopped
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	_ = s.srv.Close()
	_ = s.ln.Close() // in case Serve had not started yet
	var wg sync.WaitGroup
	for _, c := range conns {
		if graceful {
			wg.Go(func() { c.closeWith(websocket.StatusGoingAway, "shutdown") })
		} else {
			c.drop()
		}
	}
	wg.Wait()
	close(s.stop)
	s.wg.Wait()
	s.log.Debug().Msg("substrate stopped")
	close(s.done)
}

// crash emulates REPRAM TS, which crashes on a frame that is the JSON
// literal null: the substrate dies as by Kill.
func (s *Server) crash() {
	s.log.Error().Msg("received the JSON literal null: a REPRAM TS substrate crashes on it; killing the substrate")
	s.mesh.wg.Go(s.Kill)
}

func nonNil(ps []wire.Parent) []wire.Parent {
	if ps == nil {
		return []wire.Parent{}
	}
	return ps
}
