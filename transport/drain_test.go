package transport

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// TestCleanStopReportsFramesAlreadyRead: a link stopped cleanly (the old
// primary at the switch) while its reader waits for a delivery credit, with
// frames its substrate sent before the stop already read into its buffers,
// still reports them before the close handshake (which would discard
// them): the engine delivers them through dedup. An abrupt stop does not
// wait for them: its reader gives up its wait for a credit and reports the
// link closed.
func TestCleanStopReportsFramesAlreadyRead(t *testing.T) {
	const n = 20
	for _, tc := range []struct {
		name string
		code websocket.StatusCode
		want int
	}{
		{"clean stop: every frame read is reported", websocket.StatusNormalClosure, n},
		{"abrupt stop: the reader stops waiting for a credit at once", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			written := make(chan struct{})
			srv := rawSubstrate(t, n, written)
			defer srv.Close()

			var wg sync.WaitGroup
			ready, loopDone := make(chan *link, 64), make(chan struct{})
			credits := make(chan struct{}, 1)
			credits <- struct{}{} // none left: the reader parks on its first gossip
			env := linkEnv{cfg: &Config{ReadLimit: 1 << 20}, hello: []byte(`{}`), ready: ready, loopDone: loopDone, credits: credits, wg: &wg}
			l := newLink(context.Background(), 1, Substrate{URL: "ws://" + srv.Addr().String() + "/"})
			wg.Add(1)
			go l.run(env)
			defer func() {
				close(loopDone)
				select { // a reader still waiting for a credit (a failed test) takes it and ends
				case <-credits:
				default:
				}
				wg.Wait()
			}()

			select {
			case <-written: // all n frames are in the link's socket before it reads any
			case <-time.After(10 * time.Second):
				t.Fatal("the substrate did not write its frames within 10s")
			}
			l.sendHello()
			for i := 0; !l.starved.Load(); i++ {
				if i == 1000 {
					t.Fatal("the reader did not park on a delivery credit within 10s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			l.stop(tc.code)
			if tc.code != 0 {
				<-credits // the loop returns the credit the reader waits for
			}

			got := 0
			deadline := time.After(10 * time.Second)
			for closed := false; !closed; {
				select {
				case lk := <-ready:
					batch := lk.take()
					for _, r := range batch {
						switch r.in.(type) {
						case nil:
							got++
							<-credits
						case engine.LinkClosed:
							closed = true
						}
					}
					lk.done(batch)
				case <-deadline:
					t.Fatalf("no LinkClosed within 10s of the stop; %d gossip reported", got)
				}
			}
			if got != tc.want {
				t.Errorf("%d gossip reported after the stop, want %d", got, tc.want)
			}
		})
	}
}

// rawSubstrate accepts one WebSocket and writes its handshake response and
// n gossip frames in one write, so the link reads them all at once; it then
// answers the close handshake. It closes written after the write.
func rawSubstrate(t *testing.T, n int, written chan<- struct{}) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Errorf("handshake: %v", err)
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		out := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		for i := range n {
			msg := wire.Message{Type: "PUT", From: "pub", Timestamp: time.Now().Unix(), MessageID: fmt.Sprint("m", i)}
			frame, err := wire.Encode(wire.TypePut, msg, nil)
			if err != nil || len(frame) > 0xffff {
				t.Errorf("encode m%d: %v", i, err)
				return
			}
			out = append(out, 0x81, 126, byte(len(frame)>>8), byte(len(frame)))
			out = append(out, frame...)
		}
		if _, err := c.Write(out); err != nil {
			t.Errorf("write: %v", err)
			return
		}
		close(written)
		// The link's frames (masked): the hello, then its close, answered.
		for {
			var h [2]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return
			}
			size := int(h[1] & 0x7f)
			if size == 126 {
				var ext [2]byte
				if _, err := io.ReadFull(br, ext[:]); err != nil {
					return
				}
				size = int(ext[0])<<8 | int(ext[1])
			}
			if _, err := io.CopyN(io.Discard, br, int64(4+size)); err != nil { // mask key and payload
				return
			}
			if h[0]&0x0f == 0x8 {
				_, _ = c.Write([]byte{0x88, 2, 0x03, 0xe8})
				return
			}
		}
	}()
	return ln
}
