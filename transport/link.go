package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// link is one WebSocket to one substrate. Its goroutines carry out what the
// engine asked of it (dial, hello, pings, close) and report what happened;
// they decide nothing.
type link struct {
	id     engine.LinkID
	target Substrate

	// ctx ends when the link is stopped: it bounds the dial, the writes
	// and the wait for a delivery credit. Pings run under root (the
	// node's), because cancelling them makes the WebSocket library drop the
	// connection without the close handshake a clean stop needs; reads run
	// under no context at all (a context costs the library a watcher per
	// frame) and end when run closes the connection, which every stop does.
	ctx    context.Context
	cancel context.CancelFunc
	root   context.Context

	closeOnce sync.Once
	closeCode atomic.Int32 // status for a clean close; 0 closes abruptly

	conn atomic.Pointer[websocket.Conn] // set once dialled; used by Send
	// A clean stop lets the reader report what it has already read (see
	// run): socketWait is set while it waits on the socket, drained is
	// closed once it has waited there after the stop, and quit ends its
	// wait for a delivery credit.
	socketWait atomic.Bool
	drainOnce  sync.Once
	drained    chan struct{}
	quit       chan struct{}
	starved    atomic.Bool        // the reader waits for a delivery credit
	parks      atomic.Uint64      // how many times the reader has waited for one
	hello      chan struct{}      // closed by sendHello
	pings      chan time.Duration // ping requests, with their timeout

	// starvedPings counts the pings reported Starved, for tests that must
	// wait until back-pressure has outlasted some pings.
	starvedPings atomic.Uint64

	mb mailbox // the link's reports, on their way to the loop
}

// mailboxMax bounds the reports a link's mailbox holds: a full one stops
// its reader (and, through TCP, the substrate) and its pinger.
const mailboxMax = 256

// signalEvery is how many reports the reader appends, at most, before it
// signals the loop while its socket still has data buffered. It is below
// mailboxMax (the array's length would be negative otherwise), so a full
// mailbox has always been signalled.
const signalEvery = 64

var _ [mailboxMax - signalEvery - 1]struct{}

// mailbox carries one link's reports to the event loop, in order, in
// batches: the reader and the pinger append, the loop is signalled (the
// link sent on ready) once per batch, and it then takes every report there
// at once. The pinger's reports signal at once. The reader's wait while it
// has frames buffered: it signals after signalEvery reports, and before
// anything that may block it (a read from the socket, a delivery credit
// that is not there, a full mailbox), so no report waits on the reader.
// A burst then costs one signal and one wakeup of the loop per batch
// instead of a channel send per frame.
type mailbox struct {
	mu       sync.Mutex
	q        []report
	signaled bool          // the loop has been signalled for the reports in q
	spare    []report      // the loop's previous batch, emptied, for reuse
	room     chan struct{} // while reporters wait for room: closed when the loop takes the reports
}

// report is one report of a link: a gossip frame decoded, or any other
// input. Gossip is kept by value so that queueing it allocates nothing.
type report struct {
	in     engine.Input // nil for gossip
	gossip engine.GossipReceived
}

// linkEnv is what a link needs from its node; kept narrow so links never
// touch the loop's state.
type linkEnv struct {
	cfg      *Config
	hello    []byte
	ready    chan<- *link    // a link whose mailbox has reports, signalled once per batch
	loopDone <-chan struct{} // closed when the event loop exits
	credits  chan struct{}   // delivery credits: send to take, receive to return
	wg       *sync.WaitGroup
}

func newLink(root context.Context, id engine.LinkID, target Substrate) *link {
	ctx, cancel := context.WithCancel(root)
	return &link{id: id, target: target, ctx: ctx, cancel: cancel, root: root,
		hello: make(chan struct{}), pings: make(chan time.Duration, 1), drained: make(chan struct{}), quit: make(chan struct{})}
}

// post hands one report to the loop, waiting while the mailbox is full; it
// signals the loop now if signal is set, or once signalEvery reports wait,
// and otherwise leaves that to [link.flush]. False once the loop has
// exited.
func (l *link) post(env linkEnv, r *report, signal bool) bool {
	mb := &l.mb
	for {
		mb.mu.Lock()
		if len(mb.q) < mailboxMax {
			mb.q = append(mb.q, *r)
			send := !mb.signaled && (signal || len(mb.q) >= signalEvery)
			mb.signaled = mb.signaled || send
			mb.mu.Unlock()
			return !send || l.signal(env)
		}
		// Full, so signalled: signalEvery < mailboxMax.
		if mb.room == nil {
			mb.room = make(chan struct{})
		}
		room := mb.room
		mb.mu.Unlock()
		select {
		case <-room:
		case <-env.loopDone:
			return false
		}
	}
}

// flush signals the loop if reports wait unsignalled; false once the loop
// has exited.
func (l *link) flush(env linkEnv) bool {
	mb := &l.mb
	mb.mu.Lock()
	send := !mb.signaled && len(mb.q) > 0
	mb.signaled = mb.signaled || send
	mb.mu.Unlock()
	return !send || l.signal(env)
}

// signal tells the loop that l's mailbox has reports.
func (l *link) signal(env linkEnv) bool {
	select {
	case env.ready <- l:
		return true
	case <-env.loopDone:
		return false
	}
}

// postInput posts a report that is not gossip and signals the loop.
func (l *link) postInput(env linkEnv, in engine.Input) bool {
	return l.post(env, &report{in: in}, true)
}

// take hands the loop every report in the mailbox, in order, and returns
// the previous batch's memory for reuse; the loop calls [link.done] with the
// batch once it has stepped through it.
func (l *link) take() []report {
	mb := &l.mb
	mb.mu.Lock()
	batch := mb.q
	mb.q, mb.spare, mb.signaled = mb.spare[:0], nil, false
	room := mb.room
	mb.room = nil
	mb.mu.Unlock()
	if room != nil {
		close(room) // every waiting reporter: the reader and the pinger
	}
	return batch
}

// done gives back a batch from take, emptied of its references.
func (l *link) done(batch []report) {
	clear(batch)
	l.mb.mu.Lock()
	l.mb.spare = batch[:0]
	l.mb.mu.Unlock()
}

// sendHello lets the link send hello once it is connected.
func (l *link) sendHello() {
	select {
	case <-l.hello:
	default:
		close(l.hello)
	}
}

// ping asks for one ping; the engine never has two outstanding on a link.
func (l *link) ping(timeout time.Duration) {
	select {
	case l.pings <- timeout:
	default:
	}
}

// stop closes the link: cleanly with code, or abruptly when code is 0. It
// never blocks; the close handshake runs on the link's own goroutine.
func (l *link) stop(code websocket.StatusCode) {
	l.closeOnce.Do(func() {
		l.closeCode.Store(int32(code))
		l.cancel()
	})
}

// drainMax bounds how long a clean stop waits for the reader to report the
// frames it has already read (see run).
const drainMax = time.Second

// socketRead is called with true before the connection reads from its
// socket, which may block, and with false after: the reports the reader left
// unsignalled are signalled first, and a stopped link's reader has then
// reported everything it had read.
func (l *link) socketRead(env linkEnv, waiting bool) {
	if !waiting {
		l.socketWait.Store(false)
		return
	}
	l.flush(env)
	// Stored before ctx is read, and read by run after ctx ended: one of
	// the two sees the other.
	l.socketWait.Store(true)
	if l.ctx.Err() != nil {
		l.drainOnce.Do(func() { close(l.drained) })
	}
}

// run dials, sends hello when asked, starts the reader and the pinger, and
// closes the connection when the link is stopped or the reader ends.
func (l *link) run(env linkEnv) {
	defer env.wg.Done()
	defer l.drainOnce.Do(func() { close(l.drained) })
	conn, resp, err := websocket.Dial(l.ctx, l.target.URL, dialOptions(env.cfg, func(waiting bool) { l.socketRead(env, waiting) }))
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		l.postInput(env, engine.LinkClosed{Link: l.id, Err: fmt.Errorf("dial %s: %w", l.target.URL, err)})
		return
	}
	// The library closes the link on frames past the hard limit; frames
	// between ReadLimit and it are drained and rejected by read.
	conn.SetReadLimit(8 * env.cfg.ReadLimit)
	l.conn.Store(conn)
	select {
	case <-l.hello:
		if err := conn.Write(l.ctx, websocket.MessageText, env.hello); err != nil {
			conn.CloseNow()
			l.postInput(env, engine.LinkClosed{Link: l.id, Err: fmt.Errorf("send hello to %s: %w", l.target.URL, err)})
			return
		}
	case <-l.ctx.Done():
		conn.CloseNow()
		return
	}
	readerDone, pingerDone := make(chan struct{}), make(chan struct{})
	env.wg.Add(2)
	go l.read(env, conn, readerDone)
	go func() {
		defer env.wg.Done()
		defer close(pingerDone)
		l.pinger(env, conn, readerDone)
	}()
	select {
	case <-l.ctx.Done():
	case <-readerDone:
	}
	if code := websocket.StatusCode(l.closeCode.Load()); code != 0 {
		// The frames the reader has already read (buffered, or waiting
		// for a delivery credit) are reported first, within drainMax: the
		// close handshake would discard them, and the engine still
		// delivers the old primary's once it has switched away from it.
		if l.socketWait.Load() {
			l.drainOnce.Do(func() { close(l.drained) })
		}
		t := time.NewTimer(drainMax)
		select {
		case <-l.drained:
		case <-readerDone:
		case <-env.loopDone:
		case <-t.C:
		}
		t.Stop()
		close(l.quit)
		// The close handshake: the reader gets the peer's close frame and
		// ends, and what we sent before it is processed by the substrate.
		_ = conn.Close(code, "handover: link closed")
	} else {
		close(l.quit)
		_ = conn.CloseNow()
	}
	<-readerDone
	<-pingerDone
}

// pinger sends the pings the engine asks for and reports each outcome.
func (l *link) pinger(env linkEnv, conn *websocket.Conn, readerDone <-chan struct{}) {
	for {
		var timeout time.Duration
		select {
		case <-l.ctx.Done():
			return
		case <-readerDone:
			return
		case timeout = <-l.pings:
		}
		// Under root, not l.ctx: a ping cut off by a stop would make the
		// library drop the connection before the close handshake. A stop
		// ends a ping in flight by closing the connection.
		ctx, cancel := context.WithTimeout(l.root, timeout)
		parks := l.parks.Load()
		start := time.Now()
		err := conn.Ping(ctx)
		rtt := time.Since(start)
		cancel()
		if l.ctx.Err() != nil {
			return
		}
		// A reader parked on back-pressure, now or at any time during the
		// ping, cannot have read the pong: an unanswered ping then proves
		// nothing.
		starved := err != nil && (l.starved.Load() || l.parks.Load() != parks)
		if starved {
			l.starvedPings.Add(1)
		}
		if !l.postInput(env, engine.PingDone{Link: l.id, RTT: rtt, Err: err, Starved: starved}) {
			return
		}
	}
}

// read decodes frames and reports them. It takes a delivery credit before
// reporting gossip, so a slow handler stops this reader (and, through TCP,
// the substrate) instead of growing a queue.
func (l *link) read(env linkEnv, conn *websocket.Conn, done chan<- struct{}) {
	defer env.wg.Done()
	defer close(done)
	var (
		buf   []byte // reused: the decoded frame keeps nothing of it
		frame wire.Frame
		rep   report
		dec   = wire.NewDecoder(env.cfg.Secret)
	)
	for {
		typ, r, err := conn.Reader(context.Background())
		if err != nil {
			l.postInput(env, engine.LinkClosed{Link: l.id, Err: closeCause(err)})
			return
		}
		var over bool
		buf, over, err = readMessage(r, buf, env.cfg.ReadLimit)
		if err != nil {
			l.postInput(env, engine.LinkClosed{Link: l.id, Err: closeCause(err)})
			return
		}
		switch {
		case over:
			rep = report{in: engine.FrameRejected{Link: l.id, Err: fmt.Errorf("%w: over %d bytes", wire.ErrTooLarge, env.cfg.ReadLimit)}}
		case typ != websocket.MessageText:
			rep = report{in: engine.FrameRejected{Link: l.id, Err: fmt.Errorf("%w: binary frame", wire.ErrMalformed)}}
		default:
			decodeReport(l.id, dec, buf, &frame, &rep)
		}
		if rep.in == nil && !l.takeCredit(env) {
			l.postInput(env, engine.LinkClosed{Link: l.id, Err: errors.New("stopped while waiting for a delivery credit")})
			return
		}
		if !l.post(env, &rep, false) { // signalled by flush before the reader may block
			return
		}
	}
}

// readMessage reads one message into buf's memory, growing it as needed
// (to at most a little over limit), and returns it. A message over limit
// bytes is read to its end and dropped: over is then true.
func readMessage(r io.Reader, buf []byte, limit int64) (msg []byte, over bool, err error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				_, err := io.Copy(io.Discard, r)
				return buf[:0], true, err
			}
			buf = slices.Grow(buf, int(min(max(2*int64(cap(buf)), 4096), limit+1))-len(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			if int64(len(buf)) > limit {
				return buf[:0], true, nil
			}
			return buf, false, nil
		case err != nil:
			return buf[:0], false, err
		}
	}
}

// takeCredit waits for a delivery credit, marking the link starved while
// it waits; false when the link was stopped meanwhile (after the drain of a
// clean stop).
func (l *link) takeCredit(env linkEnv) bool {
	credits := env.credits
	select {
	case credits <- struct{}{}:
		return true
	default:
	}
	if !l.flush(env) { // the reports waiting may be what returns credits
		return false
	}
	l.parks.Add(1)
	l.starved.Store(true)
	defer l.starved.Store(false)
	select {
	case credits <- struct{}{}:
		return true
	case <-l.quit:
		return false
	}
}

// decodeReport turns one frame into the engine's input, decoding it in one
// pass into f (reused from frame to frame), and writes it to *r.
func decodeReport(id engine.LinkID, dec *wire.Decoder, frame []byte, f *wire.Frame, r *report) {
	*r = report{}
	if err := dec.Decode(frame, f); err != nil {
		r.in = engine.FrameRejected{Link: id, Err: err}
		return
	}
	switch {
	case f.Type == wire.TypeWelcome:
		r.in = engine.Welcomed{Link: id, Welcome: f.Welcome}
	case f.Type == wire.TypeGoodbye:
		r.in = engine.GoodbyeReceived{Link: id, Goodbye: f.Goodbye}
	case f.Type.IsGossip():
		if f.Message.Type == "PUT" && f.Message.MessageID == "" {
			r.in = engine.FrameRejected{Link: id, Err: fmt.Errorf("%w: PUT without message_id cannot be deduplicated", wire.ErrMalformed)}
			return
		}
		r.gossip = engine.GossipReceived{Link: id, Type: f.Type, Message: f.Message}
	default:
		r.in = engine.FrameRejected{Link: id, Err: fmt.Errorf("%w: a substrate never sends %s", wire.ErrMalformed, f.Type)}
	}
}

// closeCause turns a read error into the reason reported with LinkClosed.
func closeCause(err error) error {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		// Our side hit the hard limit: the library closed the link (1009).
		return fmt.Errorf("%w: closed by the library: %v", wire.ErrTooLarge, err)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusMessageTooBig {
			return fmt.Errorf("%w: closed by the library: %v", wire.ErrTooLarge, err)
		}
		return fmt.Errorf("closed by substrate (%d %s)", ce.Code, ce.Reason)
	}
	return err
}

// dialOptions dials through an HTTP transport of its own, so a connection
// it dials can never be handed to another link's request, and keeps none
// idle once a handshake is refused (a WebSocket takes its connection over).
// With socketRead, the connection reads through a buffer of
// readBufferSize and, whenever that buffer is empty, calls socketRead with
// true before it reads from the socket and with false after.
func dialOptions(cfg *Config, socketRead func(waiting bool)) *websocket.DialOptions {
	tr := baseTransport()
	tr.TLSClientConfig = cfg.TLSConfig
	tr.DisableKeepAlives = true
	if socketRead != nil {
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &readBufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize), socketRead: socketRead}, nil
		}
	}
	return &websocket.DialOptions{HTTPHeader: cfg.HTTPHeader, HTTPClient: &http.Client{Transport: tr}}
}

// baseTransport returns a fresh HTTP transport for one dial: a clone of
// http.DefaultTransport when it is a *http.Transport, else (an embedder
// wrapped it, e.g. for tracing) one with a plain dialer that takes the
// proxy from the environment; every dial is bounded by its ctx (the
// handshake deadline) either way. The wrapper itself is not used: dialOptions must own the
// transport's dialer and keep-alive setting.
func baseTransport() *http.Transport {
	if def, ok := http.DefaultTransport.(*http.Transport); ok {
		return def.Clone()
	}
	return &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: (&net.Dialer{}).DialContext}
}

// readBufferSize is how much of a link's stream one read from the socket
// may take at once. The WebSocket library reads through a 4 KiB buffer: a
// burst of gossip then costs a system call every few frames.
const readBufferSize = 64 << 10

// readBufferedConn is a connection whose reads go through a larger buffer.
type readBufferedConn struct {
	net.Conn
	r          *bufio.Reader
	socketRead func(waiting bool) // called with true before a read from the socket, with false after
}

func (c *readBufferedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	c.socketRead(true)
	defer c.socketRead(false)
	return c.r.Read(p)
}
