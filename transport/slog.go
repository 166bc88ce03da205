package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
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
	attrs := make([]slog.Attr, 0, 8)
	err := eachField(p, func(key string, raw []byte) error {
		switch key {
		case zerolog.LevelFieldName:
			return nil // the level came with the call
		case zerolog.MessageFieldName:
			v, err := jsonValue(raw)
			msg = v.String()
			return err
		}
		v, err := jsonValue(raw)
		attrs = append(attrs, slog.Attr{Key: key, Value: v})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("transport: slog bridge: %w in %q", err, p)
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	if err := w.h.Handle(ctx, r); err != nil {
		return 0, err
	}
	return len(p), nil
}

// eachField calls fn with each key and raw value of the flat JSON object
// zerolog writes, in order. Nested objects and arrays come whole.
func eachField(p []byte, fn func(key string, raw []byte) error) error {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return errors.New("not a JSON object")
	}
	i = skipSpace(p, i+1)
	for i < len(p) && p[i] != '}' {
		end, err := valueEnd(p, i)
		if err != nil || p[i] != '"' {
			return errors.New("bad key")
		}
		kv, err := jsonValue(p[i:end])
		if err != nil {
			return err
		}
		i = skipSpace(p, end)
		if i >= len(p) || p[i] != ':' {
			return errors.New("missing colon")
		}
		i = skipSpace(p, i+1)
		if end, err = valueEnd(p, i); err != nil {
			return err
		}
		if err := fn(kv.String(), p[i:end]); err != nil {
			return err
		}
		i = skipSpace(p, end)
		if i < len(p) && p[i] == ',' {
			i = skipSpace(p, i+1)
		}
	}
	if i >= len(p) {
		return errors.New("unterminated object")
	}
	return nil
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at p[i].
func valueEnd(p []byte, i int) (int, error) {
	if i >= len(p) {
		return 0, errors.New("missing value")
	}
	depth, inString := 0, false
	for j := i; j < len(p); j++ {
		c := p[j]
		switch {
		case inString:
			if c == '\\' {
				j++
			} else if c == '"' {
				inString = false
				if depth == 0 {
					return j + 1, nil
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return j, nil // the end of the enclosing object
			}
			if depth--; depth == 0 {
				return j + 1, nil
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\n'):
			return j, nil
		}
	}
	return 0, errors.New("unterminated value")
}

// jsonValue converts one raw JSON value, keeping integers integral.
func jsonValue(raw []byte) (slog.Value, error) {
	switch {
	case len(raw) == 0:
		return slog.Value{}, errors.New("empty value")
	case raw[0] == '"' && !bytes.ContainsRune(raw, '\\'):
		return slog.StringValue(string(raw[1 : len(raw)-1])), nil
	case string(raw) == "true" || string(raw) == "false":
		return slog.BoolValue(raw[0] == 't'), nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return slog.Int64Value(i), nil
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		return slog.Float64Value(f), err
	}
	dec := json.NewDecoder(bytes.NewReader(raw)) // escaped strings, objects, arrays, null
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return slog.Value{}, err
	}
	return slogValue(v), nil
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
