package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit: a frame nested deeper is
// malformed, as it is for the decoder this one replaced.
const maxDepth = 10000

// errSyntax marks a frame that is not valid JSON. It is wrapped in
// ErrMalformed before it leaves the package.
var errSyntax = errors.New("invalid JSON")

// scanner reads one JSON text in a single pass. It follows RFC 8259 exactly
// as encoding/json's checkValid does (same whitespace, number grammar,
// control characters refused in strings, invalid UTF-8 allowed in strings
// and replaced by U+FFFD when unescaped, nesting limit 10000).
//
// Errors come in two kinds. A syntax error (err) ends the scan: nothing of
// the frame can be trusted. A type error (typeErr: a value of the wrong
// JSON kind for its field, a number out of range, bad base64, a duplicate or
// case-folded key) is recorded and the value is skipped, so the rest of the
// frame is still checked and the caller can rank the errors as Decode does.
type scanner struct {
	buf     []byte
	pos     int
	depth   int
	err     error // first syntax error
	typeErr error // first type error
	tmp     []byte
	stack   []uint64 // skip's container kinds past the first 64 levels
	from    string   // the last message sender read, reused while it repeats
}

func (s *scanner) reset(buf []byte) {
	s.buf, s.pos, s.depth, s.err, s.typeErr = buf, 0, 0, nil, nil
}

func (s *scanner) syntax(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s at offset %d", errSyntax, what, s.pos)
	}
	s.pos = len(s.buf) // every later read fails fast
}

func (s *scanner) mistype(format string, args ...any) {
	if s.typeErr == nil {
		s.typeErr = fmt.Errorf(format, args...)
	}
}

// ws skips JSON whitespace and returns the next byte, or 0 at the end.
func (s *scanner) ws() byte {
	for s.pos < len(s.buf) {
		switch c := s.buf[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// enter accounts for one more level of nesting at an opening bracket.
func (s *scanner) enter() bool {
	s.depth++
	if s.depth > maxDepth {
		s.syntax("nesting deeper than 10000")
		return false
	}
	s.pos++
	return true
}

// beginObject consumes '{' and reports whether the object has members.
// s.pos must be at '{'.
func (s *scanner) beginObject() bool {
	if !s.enter() {
		return false
	}
	if s.ws() == '}' {
		s.pos++
		s.depth--
		return false
	}
	return true
}

// key reads a member's key and the colon after it. The returned bytes are
// the unescaped key, valid until the next key or string is read.
func (s *scanner) key() []byte {
	if s.ws() != '"' {
		s.syntax("want a string key")
		return nil
	}
	k, _ := s.str()
	if s.ws() != ':' {
		s.syntax("want ':' after a key")
		return nil
	}
	s.pos++
	s.ws()
	return k
}

// more moves past a member or element and reports whether another follows.
func (s *scanner) more(closer byte) bool {
	switch s.ws() {
	case ',':
		s.pos++
		return true
	case closer:
		s.pos++
		s.depth--
		return false
	}
	s.syntax("want ',' or '" + string(closer) + "'")
	return false
}

// moreMembers reports whether another member follows in an object.
func (s *scanner) moreMembers() bool {
	return s.err == nil && s.more('}')
}

// strTable flags the bytes that end the fast path of a string scan: the
// quote, the backslash, control characters and non-ASCII bytes.
var strTable = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// str reads the string at s.pos (at its opening quote). It returns its
// content and whether that content is the raw bytes of the frame (no escape,
// valid UTF-8). Otherwise the content is unescaped into s.tmp the way
// encoding/json does it: invalid UTF-8 and lone surrogates become U+FFFD.
func (s *scanner) str() ([]byte, bool) {
	s.pos++ // opening quote
	start := s.pos
	b := s.buf
	i := s.pos
	// Eight bytes at a time while none of them is special: a quote, a
	// backslash, a control character or a non-ASCII byte (SWAR tests, exact
	// as to whether the word holds one).
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(lsb*'"'), x^(lsb*'\\')
		if ((x-lsb*0x20)&^x|(q-lsb)&^q|(bs-lsb)&^bs|x)&msb != 0 {
			break
		}
	}
	for i < len(b) && !strTable[b[i]] {
		i++
	}
	if i < len(b) && b[i] == '"' {
		s.pos = i + 1
		return b[start:i], true
	}
	// Slow path: non-ASCII, escapes or an error.
	raw := true
	out := append(s.tmp[:0], b[start:i]...)
	for {
		if i >= len(b) {
			s.pos = i
			s.syntax("unterminated string")
			return nil, false
		}
		c := b[i]
		switch {
		case c == '"':
			s.pos = i + 1
			s.tmp = out
			if raw {
				return b[start:i], true
			}
			return out, false
		case c < 0x20:
			s.pos = i
			s.syntax("control character in string")
			return nil, false
		case c == '\\':
			raw = false
			if i+1 >= len(b) {
				s.pos = i
				s.syntax("unterminated escape")
				return nil, false
			}
			switch e := b[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
				i += 2
			case 'b':
				out = append(out, '\b')
				i += 2
			case 'f':
				out = append(out, '\f')
				i += 2
			case 'n':
				out = append(out, '\n')
				i += 2
			case 'r':
				out = append(out, '\r')
				i += 2
			case 't':
				out = append(out, '\t')
				i += 2
			case 'u':
				r, ok := hex4(b, i+2)
				if !ok {
					s.pos = i
					s.syntax("bad \\u escape")
					return nil, false
				}
				i += 6
				if 0xD800 <= r && r < 0xE000 {
					// A surrogate: only a high one followed by an escaped low
					// one makes a rune; anything else is U+FFFD, and whatever
					// follows is read on its own.
					hi := r
					r = utf8.RuneError
					if hi < 0xDC00 && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if lo, ok := hex4(b, i+2); ok && 0xDC00 <= lo && lo < 0xE000 {
							r = (hi-0xD800)<<10 | (lo - 0xDC00) + 0x10000
							i += 6
						}
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				s.pos = i
				s.syntax("bad escape")
				return nil, false
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				raw = false
			}
			out = utf8.AppendRune(out, r)
			i += n
		}
	}
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads the number at s.pos and returns its text.
func (s *scanner) number() []byte {
	b, start, i := s.buf, s.pos, s.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		s.syntax("bad number")
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			s.syntax("bad number")
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			s.syntax("bad number")
			return nil
		}
	}
	s.pos = i
	return b[start:i]
}

// literal reads true, false or null at s.pos.
func (s *scanner) literal() byte {
	if s.pos >= len(s.buf) {
		s.syntax("unexpected end of JSON input")
		return 0
	}
	c := s.buf[s.pos]
	var want string
	switch c {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	case 'n':
		want = "null"
	default:
		s.syntax("invalid character " + strconv.QuoteRune(rune(c)))
		return 0
	}
	if len(s.buf)-s.pos < len(want) || string(s.buf[s.pos:s.pos+len(want)]) != want {
		s.syntax("bad literal")
		return 0
	}
	s.pos += len(want)
	return c
}

// skip checks and steps over the value at s.pos, whatever it is, within
// the nesting limit. It keeps its own stack of container kinds (one bit
// each) instead of recursing, so a deep frame costs no goroutine stack.
func (s *scanner) skip() {
	var small uint64 // kinds of the first 64 open containers; 1 = object
	base := s.depth
	push := func(obj bool) {
		n := s.depth - base - 1
		if n < 64 {
			small = small&^(1<<n) | b2u(obj)<<n
			return
		}
		n -= 64
		for len(s.stack) <= n/64 {
			s.stack = append(s.stack, 0)
		}
		s.stack[n/64] = s.stack[n/64]&^(1<<(n%64)) | b2u(obj)<<(n%64)
	}
	top := func() bool { // the innermost open container is an object
		n := s.depth - base - 1
		if n < 64 {
			return small&(1<<n) != 0
		}
		n -= 64
		return s.stack[n/64]&(1<<(n%64)) != 0
	}
	for s.err == nil {
		// At a value.
		switch c := s.ws(); c {
		case '{':
			if !s.enter() {
				return
			}
			push(true)
			if s.ws() == '}' {
				s.pos++
				s.depth--
				break
			}
			s.key()
			continue
		case '[':
			if !s.enter() {
				return
			}
			push(false)
			if s.ws() == ']' {
				s.pos++
				s.depth--
				break
			}
			continue
		case '"':
			s.str()
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			s.number()
		case 0:
			if s.pos >= len(s.buf) {
				s.syntax("unexpected end of JSON input")
				return
			}
			s.literal()
		default:
			s.literal()
		}
		// After a value: close containers until one has another member.
		for s.err == nil && s.depth > base {
			obj := top()
			closer := byte(']')
			if obj {
				closer = '}'
			}
			if s.more(closer) {
				if obj {
					s.key()
				}
				break
			}
		}
		if s.depth == base {
			return
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// kind names the JSON kind of the value at s.pos, for type errors.
func (s *scanner) kind() string {
	if s.pos >= len(s.buf) {
		return "nothing"
	}
	switch s.buf[s.pos] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// wrongKind records that field wants another kind and skips the value.
func (s *scanner) wrongKind(field, want string) {
	s.mistype("%s: want %s, got %s", field, want, s.kind())
	s.skip()
}

// stringInto reads a JSON string into *dst; null leaves *dst as it is (as
// encoding/json does).
func (s *scanner) stringInto(dst *string, field string) {
	switch s.peek() {
	case '"':
		v, _ := s.str()
		if s.err == nil {
			*dst = string(v)
		}
	case 'n':
		s.literal()
	case 0:
	default:
		s.wrongKind(field, "a string")
	}
}

// intInto reads a JSON integer into *dst, refusing fractions, exponents and
// values that do not fit in bits (encoding/json's rules for Go integers).
// null leaves *dst as it is.
func intInto[T int | int64](s *scanner, dst *T, field string, bits int) {
	switch c := s.peek(); {
	case c == '-' || '0' <= c && c <= '9':
		num := s.number()
		if s.err != nil {
			return
		}
		v, ok := parseInt(num, bits)
		if !ok {
			s.mistype("%s: %.40s is not an integer of %d bits", field, num, bits)
			return
		}
		*dst = T(v)
	case c == 'n':
		s.literal()
	case c == 0:
	default:
		s.wrongKind(field, "a number")
	}
}

// parseInt parses a JSON number that must be a plain decimal integer
// fitting in a signed integer of the given size.
func parseInt(num []byte, bits int) (int64, bool) {
	neg := len(num) > 0 && num[0] == '-'
	if neg {
		num = num[1:]
	}
	limit := uint64(1) << (bits - 1) // |min|; max is limit-1
	var u uint64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false // fraction or exponent
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
		if u > limit {
			return 0, false
		}
	}
	if len(num) == 0 || (!neg && u == limit) {
		return 0, false
	}
	if neg {
		return -int64(u-1) - 1, true
	}
	return int64(u), true
}

// field looks key up in names and returns its index, or -1 for a key that
// is none of them (to be skipped). A key that differs from a name only in
// case (as encoding/json's case folding would match it) or that repeats a
// name already seen is a type error, and -1: see [Frame] for why.
func (s *scanner) field(key []byte, names []string, seen *uint32, where string) int {
	for i, n := range names {
		if string(key) == n {
			if *seen&(1<<i) != 0 {
				s.mistype("%s: duplicate key %q", where, n)
				return -1
			}
			*seen |= 1 << i
			return i
		}
	}
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			s.mistype("%s: key %.40q is %q in another case", where, key, n)
			return -1
		}
	}
	return -1
}
