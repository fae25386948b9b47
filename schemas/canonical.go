package schemas

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"
)

// The fast path. Decoding cdr.voice messages was the largest single CPU cost
// of the pipeline: about 900 ns per CDR and 780 ns per billing event in
// BenchmarkDecodeCDR and BenchmarkDecodeBilling, half of it in the JSON
// layer's tokenizer (ReadValue, the namespace that finds duplicate names,
// PeekKind) and in json.Unmarshal's set-up. Producers write these messages in
// one plain shape, so scanCanonical binds that shape directly and leaves
// every other message to the full path (unmarshal and decodeObject), which
// stays the authority.
//
// scanCanonical cannot accept a message that the full path would refuse or
// bind differently, because what it accepts is a strict subset of JSON on
// which the full path's work is trivial: one object; JSON whitespace between
// tokens; names and strings of printable ASCII without escapes (so no
// unescaping, no UTF-8 question); integers that strconv.ParseInt takes, the
// test readInt applies; null; true and false as the values of members the
// raw struct does not have, which decodeObject skips (producers add flags
// such as "roaming":false); no name twice; nothing after the object. A
// member of the raw struct must hold the kind decodeObject binds by hand (a
// string or null into an optString, an integer or null into an optInt): for
// any other kind the JSON layer words the refusal, so scanCanonical gives
// up. Giving up is always safe: the caller decodes the message again with
// the full path. The differential tests in canonical_test.go hold the two
// paths to the same results.

// Bounds on a canonical message: scanCanonical remembers the members it has
// read, and the names of the unknown ones, to refuse a repeated name.
const (
	maxCanonicalMembers = 16 // a raw struct's members (rawCDR has 9)
	maxCanonicalUnknown = 8  // unknown members in one message
)

// scanCanonical binds data into members, as decodeObject would, and reports
// whether data was a canonical message. When it returns false the members
// may hold part of the message; the caller decodes it again, from a zero
// raw struct, with the full path.
//
// The strings it binds share one allocation, as stringArena's do: it notes
// where each is in data, and copies them all at the end.
//
// The functions below take the index of the next byte to read and return
// the index after what they read, as the JSON layer's jsonwire does.
func scanCanonical(data []byte, members []member) bool {
	if len(members) > maxCanonicalMembers {
		return false
	}
	var seen uint16 // bit k: members[k] has been read
	next := 0       // the member expected next: producers keep the order of members
	var unknown [maxCanonicalUnknown][]byte
	nUnknown := 0
	var strs [maxCanonicalMembers]stringSpan
	nStrs := 0
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			k, name, end, ok := scanName(data, i, members, next)
			if !ok {
				return false
			}
			if i = skipSpace(data, end); i == len(data) || data[i] != ':' {
				return false
			}
			var dst any
			if k >= 0 {
				if seen&(1<<k) != 0 {
					return false
				}
				seen |= 1 << k
				next = k + 1
				dst = members[k].dst
			} else {
				if nUnknown == len(unknown) || containsName(unknown[:nUnknown], name) {
					return false
				}
				unknown[nUnknown] = name
				nUnknown++
			}
			var str stringSpan
			if i, str, ok = scanValue(data, skipSpace(data, i+1), dst); !ok {
				return false
			}
			if str.dst != nil {
				strs[nStrs] = str
				nStrs++
			}
			if i = skipSpace(data, i); i == len(data) {
				return false
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return false
			}
			i = skipSpace(data, i+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return false
	}
	bindStrings(data, strs[:nStrs])
	return true
}

// stringSpan says that data[start:end] is the value of *dst.
type stringSpan struct {
	dst        *optString
	start, end int
}

// bindStrings gives every span its value, all of them substrings of one new
// string: one allocation per message.
func bindStrings(data []byte, spans []stringSpan) {
	n := 0
	for _, sp := range spans {
		n += sp.end - sp.start
	}
	var b strings.Builder
	b.Grow(n) // exactly, so that b makes one allocation
	for _, sp := range spans {
		start := b.Len()
		b.Write(data[sp.start:sp.end])
		sp.dst.V, sp.dst.Set = b.String()[start:], true
	}
}

// skipSpace returns the index of the first byte from data[i] on that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the string that starts at data[i], if it is printable
// ASCII without escapes, and returns the index after it: what is between its
// quotes is data[i+1:end-1]. It looks at eight bytes at a time while it can:
// a byte at a time, strings took a quarter of the scanner's instructions.
func scanString(data []byte, i int) (end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	j := i + 1
	for j+8 <= len(data) {
		if m := notPlain8(binary.LittleEndian.Uint64(data[j:])); m != 0 {
			j += bits.TrailingZeros64(m) / 8
			break
		}
		j += 8
	}
	for j < len(data) && plain(data[j]) {
		j++
	}
	if j == len(data) || data[j] != '"' {
		return 0, false // the end of data, or a byte outside the subset
	}
	return j + 1, true
}

// plain reports whether c stands for itself in a canonical string: printable
// ASCII other than the quote and the backslash.
func plain(c byte) bool { return c-0x20 <= 0x7e-0x20 && c != '"' && c != '\\' }

// notPlain8 finds the first byte of x (read little-endian, so the lowest
// byte comes first in data) that is not plain: the lowest bit set in the
// result is that byte's high bit, and the result is 0 if all eight bytes are
// plain. It ORs the word-at-a-time tests of Bit Twiddling Hacks for a byte
// less than 0x20, greater than 0x7e, equal to '"' and equal to '\\'; each
// test may also flag bytes above a byte it rightly flags (borrows and carries
// travel up), never one below, so the lowest flag is exact.
func notPlain8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, b := x^'"'*ones, x^'\\'*ones
	below := (x - 0x20*ones) &^ x // bytes >= 0x80 are left to above
	above := (x + ones) | x
	quote := (q - ones) &^ q
	backslash := (b - ones) &^ b
	return (below | above | quote | backslash) & highs
}

// scanInteger reads the integer -?(0|[1-9][0-9]*) that starts at data[i],
// if it is within the range of an int64, and returns it and the index after
// it. What follows is not looked at: the caller wants a ',' or '}' there,
// which leaves no room for a fraction or an exponent.
func scanInteger(data []byte, i int) (n int64, end int, ok bool) {
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	digits := j
	for j < len(data) && '0' <= data[j] && data[j] <= '9' {
		j++
	}
	if j == digits || (data[digits] == '0' && j > digits+1) {
		return 0, 0, false
	}
	if j-digits <= maxSafeDigits {
		// Cannot overflow: strconv.ParseInt would take it and give the same.
		for _, c := range data[digits:j] {
			n = n*10 + int64(c-'0')
		}
		if digits > i {
			n = -n
		}
		return n, j, true
	}
	n, err := strconv.ParseInt(string(data[i:j]), 10, 64)
	return n, j, err == nil
}

// maxSafeDigits is the most decimal digits that always fit in an int64
// (10^18 - 1 < 2^63 - 1). scanInteger adds up such integers itself: the
// call to strconv.ParseInt, with its checks for bases, signs, underscores
// and overflow, was a quarter of binding a CDR's duration.
const maxSafeDigits = 18

// hasLiteral reports whether the literal lit (null, true or false) starts at
// data[i].
func hasLiteral(data []byte, i int, lit string) bool {
	return len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit
}

// scanValue reads the value that starts at data[i] into dst (an *optString
// or an *optInt), or skips it when dst is nil, the member being unknown, and
// returns the index after it. A string is not bound yet: scanValue returns
// where it is, for bindStrings.
func scanValue(data []byte, i int, dst any) (int, stringSpan, bool) {
	if i == len(data) {
		return 0, stringSpan{}, false
	}
	switch c := data[i]; {
	case c == 'n':
		return i + 4, stringSpan{}, hasLiteral(data, i, "null") // leaves the member unset, as decodeObject does
	case c == 't':
		return i + 4, stringSpan{}, dst == nil && hasLiteral(data, i, "true")
	case c == 'f':
		return i + 5, stringSpan{}, dst == nil && hasLiteral(data, i, "false")
	case c == '"':
		end, ok := scanString(data, i)
		switch f := dst.(type) {
		case nil:
			return end, stringSpan{}, ok
		case *optString:
			return end, stringSpan{dst: f, start: i + 1, end: end - 1}, ok
		}
	case c == '-' || '0' <= c && c <= '9':
		n, end, ok := scanInteger(data, i)
		switch f := dst.(type) {
		case nil:
			return end, stringSpan{}, ok
		case *optInt:
			if ok {
				f.V, f.Set = n, true
			}
			return end, stringSpan{}, ok
		}
	}
	return 0, stringSpan{}, false // another kind, or one the member does not take
}

// scanName reads the member name that starts at data[i] and returns the
// index of the member it names (-1 if none does), the name and the index
// after it. Producers write the members in their order, leaving some out,
// so it first compares what follows with the names of members[next:] in
// turn, like every member's name printable ASCII without quotes or escapes,
// which saves scanning it and looking it up.
func scanName(data []byte, i int, members []member, next int) (k int, name []byte, end int, ok bool) {
	if i < len(data) && data[i] == '"' {
		// Members a producer leaves out (omitempty) are skipped: the name
		// is then one of the members after members[next].
		for k := next; k < len(members); k++ {
			want := members[k].name
			if end := i + 1 + len(want); end < len(data) && data[end] == '"' && string(data[i+1:end]) == want {
				return k, data[i+1 : end], end + 1, true
			}
		}
	}
	if end, ok = scanString(data, i); !ok {
		return -1, nil, 0, false
	}
	// A complete string names none of members[next:] (the loop above
	// compared them all), so only the members before next are left.
	name = data[i+1 : end-1]
	return memberIndex(members[:next], name), name, end, true
}

// memberIndex returns the index of the member called name, -1 if none is.
func memberIndex(members []member, name []byte) int {
	for k, m := range members {
		if m.name == string(name) {
			return k
		}
	}
	return -1
}

func containsName(names [][]byte, name []byte) bool {
	for _, n := range names {
		if bytes.Equal(n, name) {
			return true
		}
	}
	return false
}
