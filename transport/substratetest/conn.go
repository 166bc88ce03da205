package substratetest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/repram/handover/transport/wire"
)

const (
	// readLimit is the largest frame a substrate reads from a child.
	readLimit = 1 << 20
	// idleQueueCap is the most frame slots a writer keeps between bursts.
	idleQueueCap = 256
)

var errConnClosed = errors.New("connection closed")

// outFrame is one queued WebSocket message to a child.
type outFrame struct {
	typ   websocket.MessageType
	data  []byte
	valid bool       // an intact frame, not corrupted
	put   bool       // a forwarded put: counts toward Forwarded once written
	child string     // for put: the child id it counts for
	done  chan error // if set, gets the write's outcome
}

// conn is one accepted WebSocket connection. Its reader runs on the HTTP
// handler's goroutine; a writer goroutine drains its queue in order, and a
// heartbeat goroutine pings it when the substrate has a heartbeat.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	raw    net.Conn
	log    zerolog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	// The outgoing queue: a slice that grows with the backlog, bounded by
	// the mesh's QueueSize, so an idle child holds little queue memory.
	qmu     sync.Mutex
	queue   []outFrame
	pending int           // queued plus taken by the writer and not yet written
	wake    chan struct{} // one token: the queue went from empty to not

	// guarded by s.mu
	nodeID  string // from the latest hello on this connection
	childID string // registered under this id once welcomed
	enclave string // the welcomed hello's enclave
}

func newConn(s *Server, ws *websocket.Conn, raw net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{s: s, ws: ws, raw: raw, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	c.log = s.log
	if raw != nil {
		c.log = s.log.With().Str("remote", raw.RemoteAddr().String()).Logger()
	}
	ws.SetReadLimit(readLimit)
	return c
}

// serve runs the connection until it ends, then unregisters it.
func (c *conn) serve() {
	c.s.wg.Add(1)
	go c.writeLoop()
	if hb := c.s.cfg.Heartbeat; hb > 0 {
		c.s.wg.Add(1)
		go c.heartbeat(hb)
	}
	c.readLoop()
	c.closeNow()
	c.s.forget(c)
	c.log.Debug().Msg("connection ended")
}

// drop ends the connection abruptly: no close frame.
func (c *conn) drop() {
	c.cancel()
	if c.raw != nil {
		_ = c.raw.Close()
	}
}

// closeNow drops the connection and lets the WebSocket library release it.
func (c *conn) closeNow() {
	c.drop()
	_ = c.ws.CloseNow()
}

// closeWith closes with code, closing the TCP connection if the peer does
// not complete the close handshake within the mesh's WriteTimeout.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(code, reason)
	}()
	t := time.NewTimer(c.s.mesh.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.drop()
		<-done
	}
	c.cancel()
}

// enqueue queues f without blocking. A child whose queue is full is too slow
// to keep: it is dropped, as a real server drops a peer after write
// timeouts.
func (c *conn) enqueue(f outFrame) bool {
	if c.ctx.Err() != nil {
		return false
	}
	c.qmu.Lock()
	if c.pending >= c.s.mesh.cfg.QueueSize {
		c.qmu.Unlock()
		if c.s.hold.wait() != nil {
			return false // a hung process drops nothing: its backlog just stops growing
		}
		c.log.Warn().Int("queue", c.s.mesh.cfg.QueueSize).Msg("outgoing queue full: dropping the connection")
		c.drop()
		return false
	}
	c.queue = append(c.queue, f)
	c.pending++
	first := len(c.queue) == 1
	c.qmu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// sendWait queues f and waits until it is written or the connection ends.
func (c *conn) sendWait(f outFrame) error {
	f.done = make(chan error, 1)
	if !c.enqueue(f) {
		return errConnClosed
	}
	select {
	case err := <-f.done:
		return err
	case <-c.ctx.Done():
		return errConnClosed
	}
}

// writeLoop writes the queued frames in order, taking the whole backlog at
// each wake-up.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	var batch []outFrame
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		c.qmu.Lock()
		batch, c.queue = c.queue, batch[:0]
		c.qmu.Unlock()
		for i, f := range batch {
			ok := c.held() && c.write(f)
			batch[i] = outFrame{} // release the frame's bytes
			c.qmu.Lock()
			c.pending--
			c.qmu.Unlock()
			if !ok {
				return
			}
		}
		if cap(batch) > idleQueueCap {
			batch = nil // a past burst's array is not kept for good
		}
	}
}

// held waits while the substrate hangs; false when the connection ends.
func (c *conn) held() bool {
	for {
		w := c.s.hold.wait()
		if w == nil {
			return true
		}
		select {
		case <-w:
		case <-c.ctx.Done():
			return false
		}
	}
}

// write writes one frame; false when the connection had to be dropped.
func (c *conn) write(f outFrame) bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.mesh.cfg.WriteTimeout)
	err := c.ws.Write(ctx, f.typ, f.data)
	cancel()
	if f.done != nil {
		f.done <- err
	}
	if err != nil {
		c.log.Debug().Err(err).Msg("write failed: dropping the connection")
		c.drop()
		return false
	}
	if f.put && f.valid {
		c.s.countForward(f.child)
	}
	return true
}

// heartbeat pings every interval, each ping waiting at most one interval
// for its pong, and drops the connection after HeartbeatMisses misses in a
// row.
func (c *conn) heartbeat(interval time.Duration) {
	defer c.s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.s.hold.wait() != nil {
			continue // a hung substrate pings no one
		}
		ctx, cancel := context.WithTimeout(c.ctx, interval)
		err := c.ws.Ping(ctx)
		cancel()
		if c.ctx.Err() != nil {
			return
		}
		if err == nil {
			misses = 0
			continue
		}
		misses++
		if misses >= HeartbeatMisses {
			c.log.Debug().Int("misses", misses).Msg("heartbeat lost: dropping the connection")
			c.drop()
			return
		}
	}
}

// readLoop reads frames until the connection fails. Frames that do not
// decode or verify are dropped silently, as REPRAM does.
func (c *conn) readLoop() {
	secret := c.s.mesh.cfg.Secret
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			c.log.Debug().Err(err).Msg("read ended")
			return
		}
		if typ != websocket.MessageText {
			c.log.Debug().Msg("dropped a binary frame")
			continue
		}
		if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
			c.s.crash()
			return
		}
		env, err := wire.Decode(data, secret)
		if err != nil {
			c.log.Debug().Err(err).Msg("dropped a frame")
			continue
		}
		switch env.Type {
		case wire.TypeHello:
			c.onHello(env)
		case wire.TypePut:
			c.onPut(env)
		default:
			c.log.Debug().Str("type", string(env.Type)).Msg("ignored a frame")
		}
	}
}

func (c *conn) onHello(env wire.Envelope) {
	h, err := env.Hello()
	if err != nil {
		c.log.Debug().Err(err).Msg("dropped a hello")
		return
	}
	s := c.s
	s.mu.Lock()
	if s.state != running {
		s.mu.Unlock()
		return
	}
	f := s.faults.clone()
	hook := s.onHello
	c.nodeID = h.NodeID
	s.hellod[h.NodeID] = c
	s.mu.Unlock()
	c.log.Debug().Str("node", h.NodeID).Str("enclave", h.Enclave).Msg("hello")
	if hook != nil {
		hook(h)
	}
	switch {
	case f.MuteHello:
	case f.Refuse:
		c.refuse(f.RefuseAlternatives, f.Corrupt)
	case f.WelcomeDelay > 0:
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTimer(f.WelcomeDelay)
			defer t.Stop()
			select {
			case <-c.ctx.Done():
			case <-t.C:
				c.welcome(h)
			}
		}()
	default:
		c.welcome(h)
	}
}

// welcome registers the child and queues the welcome ahead of any gossip.
func (c *conn) welcome(h wire.Hello) {
	s := c.s
	f := s.Faults()
	parent := s.cfg.ID
	if f.WelcomeParentID != "" {
		parent = f.WelcomeParentID
	}
	w := wire.Welcome{Topology: s.mesh.topology(s.cfg.ID), YourPosition: wire.Position{Depth: 1, ParentID: parent}}
	frame, err := s.mesh.encode(wire.TypeWelcome, w, f.Corrupt)
	if err != nil {
		c.log.Error().Err(err).Msg("cannot encode welcome")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != running || c.ctx.Err() != nil {
		return
	}
	if c.childID != "" && c.childID != h.NodeID && s.children[c.childID] == c {
		delete(s.children, c.childID)
	}
	c.childID, c.enclave = h.NodeID, h.Enclave
	s.children[h.NodeID] = c
	c.enqueue(frame)
}

// refuse answers a hello with a goodbye "at capacity" and closes.
func (c *conn) refuse(alternatives []wire.Parent, corrupt Corruption) {
	if alternatives == nil {
		alternatives = c.s.mesh.alternatives(c.s)
	}
	gb := wire.Goodbye{Reason: "at capacity", AlternativeParents: nonNil(alternatives)}
	f, err := c.s.mesh.encode(wire.TypeGoodbye, gb, corrupt)
	if err != nil {
		c.log.Error().Err(err).Msg("cannot encode goodbye")
		return
	}
	if c.sendWait(f) == nil {
		c.closeWith(websocket.StatusNormalClosure, "at capacity")
	}
}

// onPut takes a put a child wrote: like a PUT made on this substrate, it
// enters the mesh (reaching the other substrates' children) and is acked to
// the child. A put on a connection not welcomed is dropped.
func (c *conn) onPut(env wire.Envelope) {
	msg, err := env.Message()
	if err != nil {
		c.log.Debug().Err(err).Msg("dropped a put")
		return
	}
	s := c.s
	s.mu.Lock()
	child, corrupt := c.childID, s.faults.Corrupt
	s.mu.Unlock()
	if child == "" {
		c.log.Debug().Msg("dropped a put from a connection not welcomed")
		return
	}
	msg, err = s.mesh.PublishVia(s.cfg.ID, msg)
	if err != nil {
		c.log.Debug().Err(err).Msg("put not published")
		return
	}
	ack := wire.Message{Type: "ACK", From: s.cfg.ID, Timestamp: time.Now().Unix(), MessageID: msg.MessageID, To: child, Key: msg.Key}
	if f, err := s.mesh.encode(wire.TypeAck, ack, corrupt); err == nil {
		c.enqueue(f)
	}
}
