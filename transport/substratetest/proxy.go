package substratetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Proxy defaults for [ProxyConfig] fields left zero.
const (
	// DefaultRetransmitTimeout is the stall a lost chunk costs: Linux's
	// minimum TCP retransmission timeout.
	DefaultRetransmitTimeout = 200 * time.Millisecond
	// proxyChunk is the most a proxy reads at once; one chunk gets one
	// release time.
	proxyChunk = 16 << 10
	// proxyQueue is how many chunks wait per direction of a connection:
	// with proxyChunk it bounds a direction's buffer at 1 MiB. A full
	// queue stops the proxy reading, so TCP pushes back on the sender.
	proxyQueue = 64
)

// ProxyConfig configures a [Proxy].
type ProxyConfig struct {
	// Target is the host:port every accepted connection is forwarded to,
	// e.g. [Server.Addr]. Required.
	Target string
	// Delay is added to every chunk of bytes in each direction: a one-way
	// delay, so a round trip through the proxy costs 2×Delay.
	Delay time.Duration
	// Jitter adds a uniformly random extra in [0, Jitter) to each chunk's
	// delay. It never reorders bytes: a chunk is never released before
	// the one read before it.
	Jitter time.Duration
	// Loss is the probability, in [0, 1), that a chunk is "lost". TCP does
	// not lose bytes, it retransmits them: a lost chunk is delivered late,
	// after an extra RetransmitTimeout, and everything behind it waits
	// (head-of-line blocking), which is what loss costs a TCP stream. The
	// connection is never dropped for it; stop the substrate for that.
	Loss float64
	// RetransmitTimeout is the extra delay of a lost chunk
	// (default [DefaultRetransmitTimeout]).
	RetransmitTimeout time.Duration
	// Seed seeds the jitter and loss draws, for reproducible runs.
	Seed int64
}

// Proxy is a loopback TCP proxy in front of a substrate (or any TCP
// server) that adds one-way delay, jitter and loss in both directions, in
// user space, for tests that need measurable latency without kernel netem.
// Bytes keep their order in each direction; each direction of a
// connection buffers at most 1 MiB. Its methods are safe for concurrent use.
type Proxy struct {
	cfg  ProxyConfig
	ln   net.Listener
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	rnd    *rand.Rand
	delay  time.Duration
	jitter time.Duration
	loss   float64
	pipes  map[*pipe]struct{}
	closed bool
}

// NewProxy starts a proxy listening on 127.0.0.1 on a free port. Close it
// when done.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("substratetest: ProxyConfig.Target is required: give the host:port to forward to, e.g. Substrate.Addr()")
	}
	if err := checkShaping(cfg.Delay, cfg.Jitter, cfg.Loss); err != nil {
		return nil, err
	}
	if cfg.RetransmitTimeout < 0 {
		return nil, fmt.Errorf("substratetest: proxy RetransmitTimeout %v is negative", cfg.RetransmitTimeout)
	}
	if cfg.RetransmitTimeout == 0 {
		cfg.RetransmitTimeout = DefaultRetransmitTimeout
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("substratetest: proxy listen on loopback: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	seed := uint64(cfg.Seed)
	p := &Proxy{
		cfg: cfg, ln: ln, ctx: ctx, stop: stop,
		rnd:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		delay: cfg.Delay, jitter: cfg.Jitter, loss: cfg.Loss,
		pipes: make(map[*pipe]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func checkShaping(delay, jitter time.Duration, loss float64) error {
	if delay < 0 || jitter < 0 {
		return fmt.Errorf("substratetest: proxy delay %v and jitter %v must not be negative", delay, jitter)
	}
	if !(loss >= 0 && loss < 1) {
		return fmt.Errorf("substratetest: proxy loss %v must be in [0, 1)", loss)
	}
	return nil
}

// Addr returns the proxy's address, 127.0.0.1:PORT.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns the substrate WebSocket URL through the proxy,
// ws://127.0.0.1:PORT/v1/ws. For a substrate serving TLS use
// "wss://"+Addr()+Path: the proxy forwards bytes and does not care.
func (p *Proxy) URL() string { return "ws://" + p.Addr() + Path }

// SetDelay changes the one-way delay for bytes read from now on. Bytes
// already queued keep their release time, and a shorter delay never lets
// new bytes overtake them.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = max(d, 0)
}

// SetJitter changes the jitter for bytes read from now on.
func (p *Proxy) SetJitter(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jitter = max(d, 0)
}

// SetLoss changes the loss probability for bytes read from now on; it is
// clamped to [0, 1).
func (p *Proxy) SetLoss(loss float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loss = min(max(loss, 0), 0.99)
}

// Delay returns the current one-way delay.
func (p *Proxy) Delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay
}

// Close stops listening, closes every proxied connection on both sides and
// waits for all the proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	pipes := make([]*pipe, 0, len(p.pipes))
	for pp := range p.pipes {
		pipes = append(pipes, pp)
	}
	p.mu.Unlock()
	p.stop()
	_ = p.ln.Close()
	for _, pp := range pipes {
		pp.close()
	}
	p.wg.Wait()
}

// hold returns how long a chunk read now waits before it is forwarded.
func (p *Proxy) hold() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.delay
	if p.jitter > 0 {
		d += time.Duration(p.rnd.Int64N(int64(p.jitter)))
	}
	if p.loss > 0 && p.rnd.Float64() < p.loss {
		d += p.cfg.RetransmitTimeout
	}
	return d
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target for one accepted connection and pumps both ways.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	var d net.Dialer
	server, err := d.DialContext(p.ctx, "tcp", p.cfg.Target)
	if err != nil {
		_ = client.Close()
		return
	}
	pp := &pipe{a: client, b: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pp.close()
		return
	}
	p.pipes[pp] = struct{}{}
	p.mu.Unlock()

	var dirs sync.WaitGroup
	for _, d := range [][2]net.Conn{{client, server}, {server, client}} {
		q := make(chan chunk, proxyQueue)
		dirs.Add(2)
		go func() { defer dirs.Done(); p.read(pp, d[0], q) }()
		go func() { defer dirs.Done(); p.write(pp, d[1], q) }()
	}
	dirs.Wait()
	pp.close()
	p.mu.Lock()
	delete(p.pipes, pp)
	p.mu.Unlock()
}

// pipe is one proxied connection: a, the accepted side, and b, the target.
type pipe struct {
	a, b net.Conn
	once sync.Once
	done chan struct{}
}

func (pp *pipe) close() {
	pp.once.Do(func() {
		close(pp.done)
		_ = pp.a.Close()
		_ = pp.b.Close()
	})
}

// chunk is bytes read from one side, released to the other at at. A nil
// data with eof set ends the direction cleanly.
type chunk struct {
	data []byte
	at   time.Time
	eof  bool
}

// read queues what src sends with release times that never decrease, so
// jitter cannot reorder bytes. A full queue blocks it: back-pressure.
func (p *Proxy) read(pp *pipe, src net.Conn, q chan<- chunk) {
	defer close(q)
	var last time.Time
	for {
		buf := make([]byte, proxyChunk)
		n, err := src.Read(buf)
		if n > 0 {
			at := time.Now().Add(p.hold())
			if at.Before(last) {
				at = last
			}
			last = at
			select {
			case q <- chunk{data: buf[:n], at: at}:
			case <-pp.done:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				select {
				case q <- chunk{at: last, eof: true}:
				case <-pp.done:
				}
			} else {
				pp.close()
			}
			return
		}
	}
}

// write forwards queued chunks to dst, each at its release time. A clean
// end of the source half-closes dst; any failure closes the whole pipe.
func (p *Proxy) write(pp *pipe, dst net.Conn, q <-chan chunk) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for c := range q {
		if wait := time.Until(c.at); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-pp.done:
				return
			}
		}
		if c.eof {
			if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
				continue
			}
			pp.close()
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			pp.close()
			return
		}
	}
}
