package substratetest

import (
	"net"
	"sync"
)

// readGate stops a substrate from reading its TCP connections while
// [Faults].NoRead is set. It sits under TLS and the WebSocket library, so a
// stalled substrate reads nothing at all: no frames, no pings, no close
// frames. What its children write piles up in the kernel's buffers until
// their writes block, as with a real peer that stopped reading.
type readGate struct {
	mu     sync.Mutex
	closed chan struct{} // non-nil while stalled; closed to reopen
}

// set stalls (on) or reopens the gate.
func (g *readGate) set(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case on && g.closed == nil:
		g.closed = make(chan struct{})
	case !on && g.closed != nil:
		close(g.closed)
		g.closed = nil
	}
}

// wait returns the channel to wait on before reading, nil when open.
func (g *readGate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// listener wraps ln so that every connection it accepts reads through g.
func (g *readGate) listener(ln net.Listener) net.Listener { return gatedListener{ln, g} }

type gatedListener struct {
	net.Listener
	g *readGate
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: l.g, done: make(chan struct{})}, nil
}

// gatedConn is an accepted connection whose reads wait while the gate is
// stalled; closing it wakes a waiting read.
type gatedConn struct {
	net.Conn
	g    *readGate
	once sync.Once
	done chan struct{}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	if !c.open() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	// A read already waiting when the gate closed must not hand over what
	// it got: hold it until the gate reopens, as if it were never read.
	if !c.open() {
		return 0, net.ErrClosed
	}
	return n, err
}

// open waits while the gate is closed; false when the connection closed.
func (c *gatedConn) open() bool {
	for {
		w := c.g.wait()
		if w == nil {
			return true
		}
		select {
		case <-w:
		case <-c.done:
			return false
		}
	}
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}
