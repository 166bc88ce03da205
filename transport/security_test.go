package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// forged builds a frame of type t around payload: unsigned when secret is
// nil, else signed with it.
func forged(t *testing.T, typ wire.Type, payload any, secret []byte) []byte {
	t.Helper()
	f, err := wire.Encode(typ, payload, secret)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// With a cluster secret, unsigned and badly signed frames from the primary
// are counted and dropped: a put is never delivered, a goodbye never starts
// a migration, a welcome changes nothing. A properly signed goodbye then
// does migrate, so the test can tell the two apart.
func TestUnsignedFramesFromPrimaryAreNeverActedOn(t *testing.T) {
	t.Parallel()
	// Two substrates as close as each other, so the overlap that follows
	// the signed goodbye is short.
	h := newHarness(t, fastConfig())
	a, b := h.start("sub-a", 0), h.start("sub-b", 0)
	h.attach(a)
	stop := h.publishing(2 * time.Millisecond)
	wrong := []byte("not-the-cluster-secret")
	put := func(id string) wire.Message {
		return wire.Message{Type: "PUT", From: "attacker", Key: "k", Data: []byte("x"), TTL: 300,
			Timestamp: time.Now().Unix(), MessageID: id}
	}
	gb := wire.Goodbye{Reason: "shutdown", AlternativeParents: []wire.Parent{b.Parent()}}
	wel := wire.Welcome{YourPosition: wire.Position{Depth: 1, ParentID: a.ID()}}
	// A genuine signature moved onto another payload.
	var env struct {
		Type      string          `json:"type"`
		Signature string          `json:"signature"`
		Payload   json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(forged(t, wire.TypePut, put("genuine"), testSecret), &env); err != nil {
		t.Fatal(err)
	}
	env.Payload, _ = wire.Marshal(put("forged-replayed"))
	replayed, _ := wire.Marshal(env)

	frames := [][]byte{
		forged(t, wire.TypePut, put("forged-unsigned"), nil),
		forged(t, wire.TypePut, put("forged-badsig"), wrong),
		replayed,
		forged(t, wire.TypeGoodbye, gb, nil),
		forged(t, wire.TypeGoodbye, gb, wrong),
		forged(t, wire.TypeWelcome, wel, nil),
		forged(t, wire.TypeWelcome, wel, wrong),
	}
	for _, f := range frames {
		if err := a.SendRaw("t1", websocket.MessageText, f); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("every forged frame rejected", func() bool { return h.node.Status().Stats.FramesRejected == len(frames) })
	// Control events go through the loop in order: one more round trip
	// proves nothing is still pending.
	h.observe(nil)
	st := h.node.Status()
	if st.State != fsm.Attached || st.Primary.ID != "sub-a" || len(st.Candidates) != 0 || st.Stats.Forced != 0 ||
		h.took(fsm.Goodbye, fsm.Handshaking) {
		t.Fatalf("a forged frame moved the node: %+v\n%s", st, h.timeline())
	}
	h.mu.Lock()
	for _, id := range []string{"forged-unsigned", "forged-badsig", "forged-replayed"} {
		if h.delivered[id] != 0 {
			t.Errorf("forged message %s was delivered", id)
		}
	}
	h.mu.Unlock()

	// The same goodbye, properly signed, is acted on at once.
	if err := a.Send("t1", wire.TypeGoodbye, gb); err != nil {
		t.Fatal(err)
	}
	h.waitAttached("sub-b")
	stop()
	if st := h.node.Status().Stats; st.Forced != 1 {
		t.Fatalf("stats %+v: want the signed goodbye to force one migration", st)
	}
}

// A candidate whose welcome is unsigned or signed with another secret is
// never promoted, whether the node is migrating or joining.
func TestUnsignedWelcomeIsNeverPromoted(t *testing.T) {
	t.Parallel()
	for _, c := range []substratetest.Corruption{substratetest.CorruptUnsigned, substratetest.CorruptBadSignature} {
		t.Run("migrating/"+c.String(), func(t *testing.T) {
			t.Parallel()
			h, _, b, stop := setup(t, fastConfig())
			b.UpdateFaults(func(f *substratetest.Faults) { f.Corrupt = c })
			h.tryMigrate(b)
			h.eventually("candidate dropped", func() bool { return h.took(fsm.NewFailed, fsm.Attached) })
			stop()
			if h.took(fsm.HandshakeOK, fsm.Overlapping) || h.node.Status().Primary.ID != "sub-a" {
				t.Fatalf("a candidate with a forged welcome was promoted:\n%s", h.timeline())
			}
		})
		t.Run("joining/"+c.String(), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, fastConfig())
			s := h.start("sub-forged", 0)
			s.UpdateFaults(func(f *substratetest.Faults) { f.Corrupt = c })
			if err := h.node.Attach(context.Background(), sub(s)); err != nil {
				t.Fatal(err)
			}
			h.eventually("several failed joins", func() bool { return h.node.Status().Stats.Rejoins >= 2 })
			if st := h.node.Status(); st.Stats.Joins != 0 || h.took(fsm.HandshakeOK, fsm.Attached) {
				t.Fatalf("joined a substrate whose welcome is forged: %+v\n%s", st.Stats, h.timeline())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the node's concurrent loggers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secretForms are the ways a secret could leak into text.
func secretForms(secret []byte) map[string]string {
	return map[string]string{
		"raw":          string(secret),
		"hex":          hex.EncodeToString(secret),
		"HEX":          strings.ToUpper(hex.EncodeToString(secret)),
		"base64":       base64.StdEncoding.EncodeToString(secret),
		"base64 raw":   base64.RawStdEncoding.EncodeToString(secret),
		"base64 url":   base64.RawURLEncoding.EncodeToString(secret),
		"decimal list": strings.Trim(fmt.Sprint([]byte(secret)), "[]"),
	}
}

func assertNoSecret(t *testing.T, where, text string, secret []byte) {
	t.Helper()
	for form, s := range secretForms(secret) {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret (%s form)", where, form)
		}
	}
}

// The secret never reaches the logs, at the most verbose level, through a
// migration, rejected frames, a forged candidate, a dial error and the
// primary's death; nor any printed or marshalled form of the Config.
func TestSecretNeverLogged(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cr3t-cluster-key-0123456789")
	tests := []struct {
		name  string
		set   func(cfg *Config, w io.Writer)
		debug string // how a debug line shows its level
	}{
		{"zerolog", func(cfg *Config, w io.Writer) {
			l := zerolog.New(w).Level(zerolog.TraceLevel)
			cfg.Logger = &l
		}, `"level":"debug"`},
		{"slog", func(cfg *Config, w io.Writer) {
			cfg.SlogLogger = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
		}, `"level":"DEBUG"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			cfg := fastConfig()
			cfg.Secret = secret
			tc.set(&cfg, &logs)
			secretScenario(t, cfg, &logs, tc.debug)
		})
	}
}

// secretScenario runs a node through rejected frames, forged and dead
// candidates, a migration and a reattach, and checks that the logs it
// wrote into logs exercised all that without the secret.
func secretScenario(t *testing.T, cfg Config, logs *syncBuffer, debug string) {
	secret := []byte(cfg.Secret)
	h, a, _, stop := setup(t, cfg)
	b := h.start("sub-near", 0) // as close as sub-a: a short overlap
	c := h.start("sub-c", 0)
	gone := h.start("sub-gone", 0)
	gone.Kill() // a candidate that cannot be dialed

	for _, f := range []string{`{"type":"put","payload":`, `null`, `{"type":"put","payload":{},"signature":"00"}`} {
		if err := a.SendRaw("t1", websocket.MessageText, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SendRaw("t1", websocket.MessageText, forged(t, wire.TypeGoodbye, wire.Goodbye{Reason: "x"}, []byte("wrong"))); err != nil {
		t.Fatal(err)
	}
	c.UpdateFaults(func(f *substratetest.Faults) { f.Corrupt = substratetest.CorruptBadSignature })
	h.tryMigrate(c)
	h.eventually("forged candidate dropped", func() bool { return h.took(fsm.NewFailed, fsm.Attached) })
	h.tryMigrate(gone)
	h.eventually("dead candidate dropped", func() bool { return h.node.Status().Stats.Cancelled >= 2 })
	h.tryMigrate(b)
	h.waitAttached(b.ID())
	b.Kill()
	h.eventually("rejoined after the primary died", func() bool {
		st := h.node.Status()
		return st.Stats.Reattached >= 1 && st.Stats.Joins >= 2
	})
	stop()

	out := logs.String()
	for _, want := range []string{"frame rejected", "dial", "transition", debug, `"node":"t1"`, `"event":"new_failed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q: the scenario did not exercise what it claims\n%s", want, out)
		}
	}
	assertNoSecret(t, "the logs", out, secret)

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		assertNoSecret(t, "Config printed with "+verb, fmt.Sprintf(verb, cfg), secret)
		assertNoSecret(t, "*Config printed with "+verb, fmt.Sprintf(verb, &cfg), secret)
	}
	j, err := json.Marshal(struct{ Secret Secret }{cfg.Secret})
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "JSON", string(j), secret)
	var zl syncBuffer
	zlog := zerolog.New(&zl)
	zlog.Info().Interface("secret", cfg.Secret).Msg("")
	assertNoSecret(t, "zerolog Interface", zl.String(), secret)
	var sl syncBuffer
	slog.New(slog.NewJSONHandler(&sl, nil)).Info("", "secret", cfg.Secret)
	assertNoSecret(t, "slog", sl.String(), secret)
	// The redaction is only in printing: the bytes are the secret.
	if !bytes.Equal(cfg.Secret, secret) {
		t.Fatal("Secret does not hold the secret's bytes")
	}
}

// testCA is a throwaway certificate authority and a server certificate it
// issued for 127.0.0.1.
type testCA struct {
	pool   *x509.CertPool
	server tls.Certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "handover test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testCA{pool: pool, server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

func (h *harness) startTLS(id string, ca testCA) *substratetest.Server {
	h.t.Helper()
	s, err := h.mesh.Start(substratetest.Config{ID: id,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// A node given the CA attaches over wss:// and migrates between two TLS
// substrates with no gossip lost or duplicated; a probe works too.
func TestWSSWithCustomCA(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cfg := fastConfig()
	cfg.TLSConfig = &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
	// A bound, not the subject: a TLS handshake, the upgrade and hello under
	// -race on a loaded machine outlasted fastConfig's 1s (handshake_timeout,
	// 2 runs in 8 at load 12).
	cfg.Tuning.HandshakeTimeout = 5 * time.Second
	h := newHarness(t, cfg)
	a, b := h.startTLS("sub-a", ca), h.startTLS("sub-b", ca)
	if !strings.HasPrefix(a.URL(), "wss://") {
		t.Fatalf("TLS substrate URL %q, want wss://", a.URL())
	}
	h.attach(a)
	h.settle()
	stop := h.publishing(2 * time.Millisecond)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rtt, err := Probe(ctx, sub(b), ProbeOptions{TLSConfig: cfg.TLSConfig})
	if err != nil || rtt <= 0 {
		t.Fatalf("probe over wss: %v, %v", rtt, err)
	}
	h.tryMigrate(b)
	h.waitAttached("sub-b")
	stop()
	h.exactlyOnce()
	if st := h.node.Status().Stats; st.Migrations != 1 {
		t.Fatalf("stats %+v: want one migration over wss", st)
	}
	// The primary dies: the node rejoins the other TLS substrate, over wss.
	b.Kill()
	h.waitAttached("sub-a")
	if st := h.node.Status(); st.Stats.Reattached != 1 || !strings.HasPrefix(st.Primary.URL, "wss://") {
		t.Fatalf("rejoin over wss: primary %q, stats %+v", st.Primary.URL, st.Stats)
	}
}

// Without the CA the TLS handshake fails: the node never attaches, keeps
// rejoining, and says why.
func TestWSSWithoutCAFailsClearly(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	h := newHarness(t, fastConfig())
	s := h.startTLS("sub-tls", ca)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Probe(ctx, sub(s), ProbeOptions{})
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, ErrProbe) || !errors.As(err, &unknown) {
		t.Fatalf("probe without the CA: %v, want ErrProbe wrapping x509.UnknownAuthorityError", err)
	}
	if err := h.node.Attach(ctx, sub(s)); err != nil {
		t.Fatal(err)
	}
	h.eventually("several failed joins", func() bool { return h.node.Status().Stats.Rejoins >= 2 })
	if st := h.node.Status(); st.Stats.Joins != 0 || st.Primary.ID != "" {
		t.Fatalf("attached without trusting the certificate: %+v", st)
	}
	if tl := h.timeline(); !strings.Contains(tl, "certificate signed by unknown authority") {
		t.Fatalf("the failed joins do not say the certificate is untrusted:\n%s", tl)
	}
}
