package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/rs/zerolog"
)

// slogLevels maps zerolog's levels onto slog's; trace sits below debug and
// fatal and panic above error, four apart as slog's own levels are.
var slogLevels = map[zerolog.Level]slog.Level{
	zerolog.TraceLevel: slog.LevelDebug - 4,
	zerolog.DebugLevel: slog.LevelDebug,
	zerolog.InfoLevel:  slog.LevelInfo,
	zerolog.WarnLevel:  slog.LevelWarn,
	zerolog.ErrorLevel: slog.LevelError,
	zerolog.FatalLevel: slog.LevelError + 4,
	zerolog.PanicLevel: slog.LevelError + 8,
}

// zerologToSlog returns a zerolog.Logger whose events become records of
// h: the level maps onto slog's, "message" is the record's message and
// every other field an attribute, in order. The logger's level is the
// lowest h enables, so disabled events are not even formatted.
func zerologToSlog(h slog.Handler) zerolog.Logger {
	level := zerolog.Disabled
	for _, l := range []zerolog.Level{zerolog.PanicLevel, zerolog.FatalLevel, zerolog.ErrorLevel,
		zerolog.WarnLevel, zerolog.InfoLevel, zerolog.DebugLevel, zerolog.TraceLevel} {
		if h.Enabled(context.Background(), slogLevels[l]) {
			level = l
		}
	}
	return zerolog.New(slogWriter{h}).Level(level)
}

// slogWriter turns zerolog's JSON events into slog records.
type slogWriter struct{ h slog.Handler }

// Write takes an event without a level as info.
func (w slogWriter) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.InfoLevel, p) }

// WriteLevel decodes one event and hands it to the handler.
func (w slogWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	level, ok := slogLevels[l]
	if !ok {
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if !w.h.Enabled(ctx, level) {
		return len(p), nil
	}
	var msg string
	var attrs []slog.Attr
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, fmt.Errorf("transport: slog bridge: not a zerolog JSON event: %q", p)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, fmt.Errorf("transport: slog bridge: %w", err)
		}
		key, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return 0, fmt.Errorf("transport: slog bridge: field %q: %w", key, err)
		}
		switch key {
		case zerolog.LevelFieldName:
			continue // the level came with the call
		case zerolog.MessageFieldName:
			msg, _ = v.(string)
			continue
		}
		attrs = append(attrs, slog.Attr{Key: key, Value: slogValue(v)})
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	if err := w.h.Handle(ctx, r); err != nil {
		return 0, err
	}
	return len(p), nil
}

// slogValue converts a decoded JSON value, keeping integers integral.
func slogValue(v any) slog.Value {
	switch v := v.(type) {
	case string:
		return slog.StringValue(v)
	case bool:
		return slog.BoolValue(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return slog.Int64Value(i)
		}
		f, _ := v.Float64()
		return slog.Float64Value(f)
	case map[string]any:
		attrs := make([]slog.Attr, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			attrs = append(attrs, slog.Attr{Key: k, Value: slogValue(v[k])})
		}
		return slog.GroupValue(attrs...)
	}
	return slog.AnyValue(v) // arrays and null
}
