package schemas

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The raw* structs bind an object's members by hand on top of the JSON
// layer's tokenizer (jsontext.Decoder). They used to be plain structs of
// pointers given to json.Unmarshal, so that an absent member could be told
// from an empty one; the reflection behind that (one reflect.New per member,
// one string per value) was most of the cost of decoding a CDR.
//
// Every reason a message is refused must stay word for word what it was
// (upstream teams match on them, and the DLQ stores them), so the hand
// binding leaves all judgement to the JSON layer:
//   - syntax, UTF-8, escapes, nesting and trailing data are still checked
//     by the decoder, and duplicate member names (top level and nested) are
//     still refused by its namespace check, with the same errors;
//   - only the expected kind of value is bound by hand (a string, an
//     integer, null); any other value is decoded again by the JSON layer
//     into the Go type the member had before (string, int64), so that it
//     builds the very SemanticError it always did, which jsonError words
//     the same way (see decodeAlone); a nested object such as the CRM
//     profile is left to json.UnmarshalDecode altogether;
//   - json.Unmarshal still drives the decoding (it calls UnmarshalJSONFrom),
//     so the top-level handling (end of input, trailing data) is unchanged.
//
// The differential tests in decode_equiv_test.go hold the hand binding to
// the pointer structs it replaced.

// optString is a string member of a message. Set is false when the member is
// absent or null, the two cases a nil *string stood for before.
type optString struct {
	V   string
	Set bool
}

// optInt is an integer member of a message; Set is false when the member is
// absent or null.
type optInt struct {
	V   int64
	Set bool
}

// member says where decodeObject puts the value of the member called name:
// into an *optString, an *optInt, or (any other pointer) whatever
// json.UnmarshalDecode makes of it.
type member struct {
	name string
	dst  any
}

// decodeObject reads one JSON object from dec into members, skipping the
// members it does not list. It makes the decoder calls the JSON layer's
// struct decoder made for the pointer structs, in the same order, so that
// the first error found in a message is the same one.
func decodeObject(dec *jsontext.Decoder, strs *stringArena, members []member) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case '{':
	case 'n':
		return nil // as for a struct: null leaves it zero
	default:
		// unmarshal hands only objects (a '{' first) to the raw structs.
		return &json.SemanticError{JSONKind: tok.Kind()}
	}
	for dec.PeekKind() != '}' {
		quoted, err := dec.ReadValue()
		if err != nil {
			return err // includes a duplicate name, found by the decoder
		}
		// A name written as one of the members' names (none has an
		// escape) is that name; only an unknown one may be a member's name
		// spelled with escapes ("ms\u0069sdn"), which counts as the member.
		dst := lookup(members, quoted[1:len(quoted)-1])
		if dst == nil && bytes.IndexByte(quoted, '\\') >= 0 {
			var buf [64]byte
			name, err := jsontext.AppendUnquote(buf[:0], quoted)
			if err != nil {
				return err // not reached: the decoder has validated the name
			}
			dst = lookup(members, name)
		}
		switch v := dst.(type) {
		case nil:
			err = dec.SkipValue() // an unknown member, still checked
		case *optString:
			err = strs.read(dec, v)
		case *optInt:
			err = readInt(dec, v)
		default:
			err = json.UnmarshalDecode(dec, v)
		}
		if err != nil {
			return err
		}
	}
	if _, err = dec.ReadToken(); err != nil {
		return err
	}
	strs.resolve()
	return nil
}

// unquote appends the value of a JSON string that the decoder has read (and
// so validated) to dst. Most strings have no escape sequence: they need only
// their quotes removed, which is much cheaper than jsontext.AppendUnquote.
func unquote(dst []byte, quoted jsontext.Value) ([]byte, error) {
	if len(quoted) >= 2 && bytes.IndexByte(quoted, '\\') < 0 {
		return append(dst, quoted[1:len(quoted)-1]...), nil
	}
	return jsontext.AppendUnquote(dst, quoted)
}

// lookup returns where the member called name goes, nil if nowhere.
func lookup(members []member, name []byte) any {
	for _, m := range members {
		if m.name == string(name) {
			return m.dst
		}
	}
	return nil
}

// readInt reads an integer member. On a JSON number strconv.ParseInt
// succeeds exactly when the JSON layer would decode it into an int64 (an
// optional minus and digits, in range), and to the same value; anything else
// goes to the JSON layer (see decodeAlone), whose integer rules and errors
// (for 7.5, 1e400 or 99999999999999999999) stay exactly as they were.
func readInt(dec *jsontext.Decoder, f *optInt) error {
	val, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch val.Kind() {
	case 'n':
		return nil
	case '0':
		if n, err := strconv.ParseInt(string(val), 10, 64); err == nil {
			f.V, f.Set = n, true
			return nil
		}
	}
	var n int64
	if err := decodeAlone(dec, val, &n); err != nil {
		return err
	}
	f.V, f.Set = n, true // not reached: ParseInt takes every JSON integer in range
	return nil
}

// decodeAlone decodes val, the member value dec has just read, into dst
// with the JSON layer, and places an error at that member. It is how values
// of an unexpected kind are refused: the JSON layer builds the SemanticError
// (kind, value, Go type, cause) it built when it decoded the member itself,
// and only the position is filled in, as it filled it in then.
func decodeAlone(dec *jsontext.Decoder, val jsontext.Value, dst any) error {
	err := json.Unmarshal(val, dst)
	if serr, ok := err.(*json.SemanticError); ok {
		serr.JSONPointer = dec.StackPointer()
		serr.ByteOffset += dec.InputOffset() - int64(len(val))
	}
	return err
}

// stringArena collects the unquoted string values of one message and hands
// them out, once the message is read, as substrings of a single string: one
// allocation per message instead of one per value. A kept field of a decoded
// event therefore keeps the other string values of its message alive, but
// not the message itself nor its unknown members: about a hundred bytes for
// a CDR.
type stringArena struct {
	buf     []byte
	pending []pendingString
}

// pendingString is a value in stringArena.buf waiting for its string.
type pendingString struct {
	dst        *optString
	start, end int
}

// read reads a string member into the arena.
func (a *stringArena) read(dec *jsontext.Decoder, f *optString) error {
	val, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch val.Kind() {
	case 'n':
		return nil
	case '"':
		start := len(a.buf)
		if a.buf, err = unquote(a.buf, val); err != nil {
			return err // not reached: the decoder has validated the string
		}
		a.keep(f, start)
		return nil
	}
	var s string
	if err := decodeAlone(dec, val, &s); err != nil {
		return err
	}
	start := len(a.buf) // not reached: only a string or null decodes into a string
	a.buf = append(a.buf, s...)
	a.keep(f, start)
	return nil
}

// keep records that f's value is a.buf[start:].
func (a *stringArena) keep(f *optString, start int) {
	a.pending = append(a.pending, pendingString{dst: f, start: start, end: len(a.buf)})
	f.Set = true
}

// resolve gives every string read its value.
func (a *stringArena) resolve() {
	s := string(a.buf)
	for _, p := range a.pending {
		p.dst.V = s[p.start:p.end]
	}
}

// maxPooledArena bounds the arena a pooled raw struct keeps: a message with
// a huge (and refused) value must not pin its size in the pool.
const maxPooledArena = 4 << 10

// reset empties the arena for the next message.
func (a *stringArena) reset() stringArena {
	if cap(a.buf) > maxPooledArena {
		return stringArena{}
	}
	return stringArena{buf: a.buf[:0], pending: a.pending[:0]}
}

// rawPool recycles raw structs: they escape to the heap through
// json.Unmarshal, and their arenas are worth keeping.
type rawPool[T any] struct{ p sync.Pool }

func (p *rawPool[T]) get() *T {
	if r, ok := p.p.Get().(*T); ok {
		return r
	}
	return new(T)
}

func (p *rawPool[T]) put(r *T) { p.p.Put(r) }

// ptr returns the value as a new *int64, nil when absent or null.
func (f optInt) ptr() *int64 {
	if !f.Set {
		return nil
	}
	v := f.V
	return &v
}
