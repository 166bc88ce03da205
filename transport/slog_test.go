package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// records is a slog.Handler that keeps what it is given.
type records struct {
	mu    sync.Mutex
	level slog.Level
	got   []slog.Record
}

func (r *records) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// attrs renders a record's attributes as key=value, in order.
func attrs(rec slog.Record) string {
	var b strings.Builder
	rec.Attrs(func(a slog.Attr) bool {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
		return true
	})
	return b.String()
}

func TestSlogBridgeKeepsLevelsAndFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		log   func(zerolog.Logger)
		level slog.Level
		msg   string
		attrs string
	}{
		{"trace", func(l zerolog.Logger) { l.Trace().Msg("t") }, slog.LevelDebug - 4, "t", ""},
		{"debug with fields in order", func(l zerolog.Logger) {
			l.Debug().Str("node", "t1").Uint64("link", 7).Bool("primary", true).Float64("ratio", 0.5).Msg("dial")
		}, slog.LevelDebug, "dial", "node=t1 link=7 primary=true ratio=0.5"},
		{"info with a logger field", func(l zerolog.Logger) {
			nl := l.With().Str("node", "t1").Logger()
			nl.Info().Str("event", "goodbye").Msg("transition")
		}, slog.LevelInfo, "transition", "node=t1 event=goodbye"},
		{"warn with an error", func(l zerolog.Logger) {
			l.Warn().Err(errors.New("bad signature")).Msg("frame rejected")
		}, slog.LevelWarn, "frame rejected", "error=bad signature"},
		{"error with a duration and a nested object", func(l zerolog.Logger) {
			l.Error().Dur("age", 1500*time.Millisecond).Interface("to", map[string]any{"id": "b", "port": 80}).Msg("x")
		}, slog.LevelError, "x", "age=1500 to=[id=b port=80]"},
		{"no message", func(l zerolog.Logger) { l.Info().Str("k", "v").Send() }, slog.LevelInfo, "", "k=v"},
		{"escapes, separators, arrays, null, floats", func(l zerolog.Logger) {
			l.Info().Str("s", `a "quoted", {braced} \ value`).Strs("list", []string{"x,y", "]"}).
				Interface("none", nil).Float64("neg", -2.5).Int("n", -3).Msg(`say "hi"`)
		}, slog.LevelInfo, `say "hi"`, `s=a "quoted", {braced} \ value list=[x,y ]] none=<nil> neg=-2.5 n=-3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &records{level: slog.LevelDebug - 4}
			tc.log(zerologToSlog(h))
			if len(h.got) != 1 {
				t.Fatalf("%d records, want 1", len(h.got))
			}
			r := h.got[0]
			if r.Level != tc.level || r.Message != tc.msg || attrs(r) != tc.attrs {
				t.Fatalf("record %v %q {%s}, want %v %q {%s}", r.Level, r.Message, attrs(r), tc.level, tc.msg, tc.attrs)
			}
		})
	}
}

// Events below the handler's level are dropped before zerolog formats them.
func TestSlogBridgeHonoursTheHandlersLevel(t *testing.T) {
	t.Parallel()
	h := &records{level: slog.LevelWarn}
	l := zerologToSlog(h)
	if l.GetLevel() != zerolog.WarnLevel {
		t.Fatalf("bridged logger level %v, want warn", l.GetLevel())
	}
	l.Debug().Msg("d")
	l.Info().Msg("i")
	l.Warn().Msg("w")
	l.Error().Msg("e")
	var msgs []string
	for _, r := range h.got {
		msgs = append(msgs, r.Message)
	}
	if strings.Join(msgs, ",") != "w,e" {
		t.Fatalf("records %v, want w,e", msgs)
	}
}

func TestSlogBridgeRedactsTheSecret(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := zerologToSlog(slog.NewJSONHandler(&buf, nil))
	secret := Secret("s3cr3t-cluster-key-0123456789")
	l.Info().Interface("secret", secret).Msg("")
	if strings.Contains(buf.String(), string(secret)) || !strings.Contains(buf.String(), `"secret":"[redacted]"`) {
		t.Fatalf("slog output %s: want the secret redacted", buf.String())
	}
}

func TestBothLoggersAreRefused(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	zl := zerolog.Nop()
	cfg.Logger, cfg.SlogLogger = &zl, slog.Default()
	if _, err := New(cfg); !errors.Is(err, ErrTwoLoggers) {
		t.Fatalf("New with both loggers: %v, want ErrTwoLoggers", err)
	}
}

// BenchmarkLogTransition logs one transition line, as the engine does,
// straight through zerolog (the baseline), through the slog bridge into
// slog's JSON handler, and through slog alone for comparison. Report the
// ratios to the zerolog baseline of the same run.
func BenchmarkLogTransition(b *testing.B) {
	zl := zerolog.New(io.Discard)
	bridged := zerologToSlog(slog.NewJSONHandler(io.Discard, nil))
	sl := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, bc := range []struct {
		name string
		log  func()
	}{
		{"zerolog", func() { logTransition(zl) }},
		{"slog-bridge", func() { logTransition(bridged) }},
		{"slog-direct", func() {
			sl.Info("transition", "from", "attached", "to", "handshaking", "event", "candidate_better", "link", 7, "reason", "policy")
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.log()
			}
		})
	}
}

func logTransition(l zerolog.Logger) {
	l.Info().Str("from", "attached").Str("to", "handshaking").Str("event", "candidate_better").
		Uint64("link", 7).Str("reason", "policy").Msg("transition")
}

// FuzzSlogBridge: any bytes zerolog could be made to write give a record
// or an error, never a panic; a valid object's string fields survive.
func FuzzSlogBridge(f *testing.F) {
	for _, seed := range []string{`{"level":"info","k":"v","message":"m"}`, `{"a":{"b":[1,"]",{}]},"c":null}`,
		`{"s":"\"\\}"}`, `{"a":`, `{"a"}`, `{`, `[]`, `{"n":-1.5e3,"t":true}`, "{\"k\":\"\u2028\"}\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		h := &records{level: slog.LevelDebug - 4}
		if _, err := (slogWriter{h}).WriteLevel(zerolog.InfoLevel, p); err != nil {
			return
		}
		if len(h.got) != 1 {
			t.Fatalf("accepted %q but made %d records", p, len(h.got))
		}
	})
}
