package schemas

// DecodeCDR and DecodeBilling bind canonical messages with scanCanonical
// (canonical.go) and everything else with the full path (unmarshal and
// decodeObject). The fast path must never change a result: whatever it
// accepts the full path accepts too, with the same members bound, and the
// decoders return what the full path alone returns, value for value and
// reason for reason. To search for differences:
//
//	go test ./schemas -run XXX -fuzz FuzzFastPathCDR -fuzztime 60s
//	go test ./schemas -run XXX -fuzz FuzzFastPathBilling -fuzztime 60s

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
)

// canonicalRaw is a raw struct with both decoding paths.
type canonicalRaw[R, T any] interface {
	*R
	json.UnmarshalerFrom
	scan(data []byte) bool
	validate() (T, error)
	decode(data []byte) (T, error)
}

// checkFastPath fails if the fast path accepts data and the full path binds
// it differently or not at all, or if decode (DecodeCDR, DecodeBilling)
// returns anything but what the full path alone returns.
func checkFastPath[R, T any, P canonicalRaw[R, T]](t *testing.T, data []byte, decode func([]byte) (T, error)) {
	t.Helper()
	var fast, full R
	if P(&fast).scan(data) {
		if err := unmarshal(data, P(&full)); err != nil {
			t.Fatalf("fast path accepts %q, the full path refuses it: %v", data, err)
		}
		if name, ok := sameMembers(fast, full); !ok {
			t.Fatalf("fast and full paths bind %s of %q differently:\n fast %+v\n full %+v", name, data,
				reflect.ValueOf(fast).FieldByName(name), reflect.ValueOf(full).FieldByName(name))
		}
	}
	got, gotErr := decode(data)
	want, wantErr := P(new(R)).decode(data)
	if !sameError(gotErr, wantErr) {
		t.Fatalf("%T on %q:\n got  %v\n want %v (the full path)", got, data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T on %q:\n got  %+v\n want %+v (the full path)", got, data, got, want)
	}
}

// sameMembers compares the bound members of two raw structs (all fields but
// the arena) and returns the first that differs.
func sameMembers[R any](a, b R) (string, bool) {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		name := va.Type().Field(i).Name
		if name != "strs" && va.Field(i).Interface() != vb.Field(i).Interface() {
			return name, false
		}
	}
	return "", true
}

// sameError reports whether a and b are both nil or are equal *FieldErrors.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var fa, fb *FieldError
	return errors.As(a, &fa) && errors.As(b, &fb) && *fa == *fb
}

func checkFastPaths(t *testing.T, data []byte) {
	t.Helper()
	checkFastPath[rawCDR](t, data, DecodeCDR)
	checkFastPath[rawBilling](t, data, DecodeBilling)
}

// A canonical CDR and billing event, which the cases below change in one
// place each.
const (
	canonicalCDR     = `{"event_id":"ex-c-1","msisdn":"13912340001","peer":"13512349876","direction":"MO","start_time":"2026-11-20T09:15:02+08:00","duration_s":184,"peer_network":"CMCC","forward_to":"","cell_id":"460-00-5712-3301"}`
	canonicalBilling = `{"event_id":"ex-b-1","msisdn":"13912340001","type":"PAYMENT","ts":"2026-11-01T09:00:00+08:00","amount_fen":10000,"balance_fen":15230,"channel":"app"}`
)

// fastPathCase is a message for one decoder, with the error the full path
// refuses it with, word for word ("" when it accepts it).
type fastPathCase struct {
	name string
	msg  string
	err  string
}

// edit returns msg with its first old replaced by new.
func edit(msg, old, new string) string {
	if !strings.Contains(msg, old) {
		panic("no " + old + " in " + msg)
	}
	return strings.Replace(msg, old, new, 1)
}

// cdrGivingUp are CDRs outside the canonical subset: the fast path must
// give up on each, and the full path decide.
var cdrGivingUp = []fastPathCase{
	{"escape in a value", edit(canonicalCDR, `"ex-c-1"`, `"ex\u002dc-1"`), ""},
	{"escaped quote in a value", edit(canonicalCDR, `"ex-c-1"`, `"ex\"c-1"`), ""},
	{"escape in a name", edit(canonicalCDR, `"event_id"`, `"ev\u0065nt_id"`), ""},
	{"a member's name and more", edit(canonicalCDR, `"event_id":`, `"event_id?:`), `field "event_id?:": not valid JSON at byte 13: invalid character 'e' after object name (expecting ':')`},
	{"escape in an unknown name", edit(canonicalCDR, `"cell_id"`, `"x\n":1,"cell_id"`), ""},
	{"duplicate name", edit(canonicalCDR, `"cell_id"`, `"event_id":"ex-c-2","cell_id"`), `field "event_id": duplicate key "event_id" (a key may appear only once in an object)`},
	{"duplicate name with null first", edit(canonicalCDR, `"event_id":"ex-c-1"`, `"event_id":null,"event_id":"ex-c-1"`), `field "event_id": duplicate key "event_id" (a key may appear only once in an object)`},
	{"duplicate unknown name", edit(canonicalCDR, `"cell_id"`, `"x":1,"x":1,"cell_id"`), `field "x": duplicate key "x" (a key may appear only once in an object)`},
	{"nested object", edit(canonicalCDR, `"cell_id"`, `"extra":{"a":1},"cell_id"`), ""},
	{"object for a known member", edit(canonicalCDR, `"460-00-5712-3301"`, `{}`), `field "cell_id": expected a string, got an object`},
	{"array", edit(canonicalCDR, `"cell_id"`, `"tags":["a",1],"cell_id"`), ""},
	{"float", edit(canonicalCDR, `184`, `184.5`), `field "duration_s": expected an integer, got the number "184.5"`},
	{"float of an integer", edit(canonicalCDR, `184`, `184.0`), `field "duration_s": expected an integer, got the number "184.0"`},
	{"exponent", edit(canonicalCDR, `184`, `1e5`), `field "duration_s": expected an integer, got the number "1e5"`},
	{"float in an unknown member", edit(canonicalCDR, `"cell_id"`, `"x":1.5,"cell_id"`), ""},
	{"true for a known member", edit(canonicalCDR, `184`, `true`), `field "duration_s": expected an integer, got a boolean`},
	{"false for a string member", edit(canonicalCDR, `"CMCC"`, `false`), `field "peer_network": expected a string, got a boolean`},
	{"string for an integer member", edit(canonicalCDR, `184`, `"184"`), `field "duration_s": expected an integer, got a string`},
	{"integer for a string member", edit(canonicalCDR, `"13512349876"`, `13512349876`), `field "peer": expected a string, got a number`},
	{"non-ASCII in a value", edit(canonicalCDR, `"460-00-5712-3301"`, `"小区-1"`), ""},
	{"non-ASCII in a name", edit(canonicalCDR, `"cell_id"`, `"区":"x","cell_id"`), ""},
	{"DEL in a value", edit(canonicalCDR, `"460-00-5712-3301"`, "\"460-00\x7f\""), ""},
	{"invalid UTF-8", edit(canonicalCDR, `"460-00-5712-3301"`, "\"460\xff\""), `message is not valid UTF-8 (first bad byte at offset 192)`},
	{"byte order mark", "\ufeff" + canonicalCDR, `not valid JSON at byte 0: invalid character '\ufeff' at start of value`},
	{"trailing data", canonicalCDR + ` x`, `not valid JSON: unexpected data after the object at byte 208`},
	{"a second object", canonicalCDR + `{}`, `not valid JSON: unexpected data after the object at byte 207`},
	{"trailing comma", edit(canonicalCDR, `}`, `,}`), `not valid JSON at byte 206: invalid character ',' at start of value`},
	{"20-digit integer", edit(canonicalCDR, `184`, `12345678901234567890`), `field "duration_s": number "12345678901234567890" is out of range for an integer`},
	{"20-digit integer in an unknown member", edit(canonicalCDR, `"cell_id"`, `"x":12345678901234567890,"cell_id"`), ""},
	{"leading zero", edit(canonicalCDR, `184`, `0184`), `not valid JSON at byte 137: invalid character '1' after object value (expecting ',' or '}')`},
	{"minus alone", edit(canonicalCDR, `184`, `-`), `field "duration_s": not valid JSON at byte 137: invalid character ',' in number (expecting digit)`},
	{"control character", edit(canonicalCDR, `"460-00-5712-3301"`, "\"460\t00\""), `field "cell_id": not valid JSON at byte 192: invalid character '\t' in string (expecting non-control character)`},
	{"NUL in a name", edit(canonicalCDR, `"cell_id"`, "\"\x00\":1,\"cell_id\""), `not valid JSON at byte 179: invalid character '\x00' in string (expecting non-control character)`},
	{"form feed as whitespace", edit(canonicalCDR, `,"peer"`, "\f,\"peer\""), `not valid JSON at byte 43: invalid character '\f' after object value (expecting ',' or '}')`},
	{"more unknown members than remembered", edit(canonicalCDR, `"cell_id"`,
		`"u0":0,"u1":1,"u2":2,"u3":3,"u4":4,"u5":5,"u6":6,"u7":7,"u8":8,"cell_id"`), ""},
	{"truncated", canonicalCDR[:len(canonicalCDR)-1], `not valid JSON: the message ends at byte 206 before the object is complete (truncated?)`},
	{"truncated in a string", canonicalCDR[:20], `not valid JSON: the message ends at byte 20 before the object is complete (truncated?)`},
	{"empty", "", `message is empty`},
	{"null", "null", `message must be a JSON object, got null`},
	{"array message", `[` + canonicalCDR + `]`, `message must be a JSON object, got an array`},
	{"comment", `/**/` + canonicalCDR, `not valid JSON at byte 0: invalid character '/' at start of value`},
}

// billingGivingUp are billing events outside the canonical subset.
var billingGivingUp = []fastPathCase{
	{"escape in a value", edit(canonicalBilling, `"app"`, `"\u0061pp"`), ""},
	{"escape in a name", edit(canonicalBilling, `"amount_fen"`, `"amount\u005ffen"`), ""},
	{"duplicate name", edit(canonicalBilling, `"channel"`, `"amount_fen":1,"channel"`), `field "amount_fen": duplicate key "amount_fen" (a key may appear only once in an object)`},
	{"nested object", edit(canonicalBilling, `"channel"`, `"meta":{"a":[1]},"channel"`), ""},
	{"float", edit(canonicalBilling, `10000`, `100.00`), `field "amount_fen": expected an integer, got the number "100.00"`},
	{"exponent", edit(canonicalBilling, `10000`, `1e5`), `field "amount_fen": expected an integer, got the number "1e5"`},
	{"true", edit(canonicalBilling, `15230`, `true`), `field "balance_fen": expected an integer, got a boolean`},
	{"non-ASCII", edit(canonicalBilling, `"app"`, `"应用"`), ""},
	{"trailing data", canonicalBilling + `]`, `not valid JSON: unexpected data after the object at byte 149`},
	{"20-digit integer", edit(canonicalBilling, `15230`, `-12345678901234567890`), `field "balance_fen": number "-12345678901234567890" is out of range for an integer`},
	{"control character", edit(canonicalBilling, `"app"`, "\"a\npp\""), `field "channel": not valid JSON at byte 145: invalid character '\n' in string (expecting non-control character)`},
}

// cdrCanonical are CDRs the fast path must take: the canonical subset
// with all its freedoms, and names close to a member's (which are unknown
// members, so that validation refuses the message for its missing peer).
var cdrCanonical = []string{
	edit(canonicalCDR, `"peer":`, `"pee":`),
	edit(canonicalCDR, `"peer":`, `"peer_":`),
	canonicalCDR,
	" \t\r\n{ \"event_id\" : \"e\" ,\n\t\"msisdn\":\"+8613912340001\", \"peer\":\"10086\",\"direction\":\"MT\",\r\n" +
		`"start_time":"2026-11-20T01:00:00Z","duration_s":0 } ` + "\n",
	edit(canonicalCDR, `184`, `-0`),
	edit(canonicalCDR, `"CMCC"`, `null`),
	edit(canonicalCDR, `"cell_id"`, `"roaming":false,"vip":true,"x":null,"":"","n":-9223372036854775808,"cell_id"`),
	edit(canonicalCDR, `"460-00-5712-3301"`, `" !#$%&'()*+,-./09:;<=>?@AZ[]^_`+"`"+`az{|}~"`),
}

// billingCanonical are billing events the fast path must take.
var billingCanonical = []string{
	canonicalBilling,
	edit(canonicalBilling, `10000`, `9223372036854775807`),
	edit(canonicalBilling, `15230`, `-9223372036854775808`),
	// Either side of the most digits scanInteger adds up itself.
	edit(canonicalBilling, `10000`, `999999999999999999`),
	edit(canonicalBilling, `15230`, `-999999999999999999`),
	edit(canonicalBilling, `10000`, `1000000000000000000`),
	edit(canonicalBilling, `15230`, `-1000000000000000000`),
	// Members left out, so that the next name is a later member's.
	`{"event_id":"b","msisdn":"13912340003","type":"BALANCE","ts":"2026-11-21T06:00:00Z","balance_fen":7}`,
	`{"event_id":"b","msisdn":"13912340003","ts":"2026-11-21T06:00:00Z","balance_fen":7,"type":"BALANCE"}`,
	edit(canonicalBilling, `"app"`, `null`),
	`{"event_id":"b","msisdn":"13912340003","type":"BALANCE","ts":"2026-11-21T06:00:00-05:30","balance_fen":0,"bill_month":null}`,
}

func TestFastPathAccepts(t *testing.T) {
	for _, msg := range cdrCanonical {
		if !new(rawCDR).scan([]byte(msg)) {
			t.Errorf("the fast path gives up on %q", msg)
		}
		checkFastPath[rawCDR](t, []byte(msg), DecodeCDR)
	}
	for _, msg := range billingCanonical {
		if !new(rawBilling).scan([]byte(msg)) {
			t.Errorf("the fast path gives up on %q", msg)
		}
		checkFastPath[rawBilling](t, []byte(msg), DecodeBilling)
	}
}

func TestFastPathGivesUp(t *testing.T) {
	for _, topic := range []struct {
		name  string
		cases []fastPathCase
		scan  func([]byte) bool
		check func(*testing.T, []byte) error
	}{
		{"cdr", cdrGivingUp, new(rawCDR).scan, func(t *testing.T, data []byte) error {
			checkFastPath[rawCDR](t, data, DecodeCDR)
			_, err := DecodeCDR(data)
			return err
		}},
		{"billing", billingGivingUp, new(rawBilling).scan, func(t *testing.T, data []byte) error {
			checkFastPath[rawBilling](t, data, DecodeBilling)
			_, err := DecodeBilling(data)
			return err
		}},
	} {
		for _, tc := range topic.cases {
			t.Run(topic.name+"/"+tc.name, func(t *testing.T) {
				if topic.scan([]byte(tc.msg)) {
					t.Fatalf("the fast path accepts %q", tc.msg)
				}
				err := topic.check(t, []byte(tc.msg))
				switch {
				case tc.err == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case tc.err != "" && (err == nil || err.Error() != tc.err):
					t.Fatalf("got %v, want %s", err, tc.err)
				}
			})
		}
	}
}

// TestFastPathTakesExamples keeps the fast path from becoming dead code:
// every example message of cdr.voice and billing.events in
// testdata/examples, and every invalid example of theirs (refused for its
// values, not its syntax), is canonical; the valid ones are decoded by the
// fast path alone to what the full path decodes.
func TestFastPathTakesExamples(t *testing.T) {
	invalid := map[string][]string{}
	for _, line := range readLines(t, filepath.Join("testdata", "examples", "invalid.txt")) {
		parts := strings.SplitN(line, "\t", 3)
		invalid[parts[0]] = append(invalid[parts[0]], parts[1])
	}
	for _, topic := range []struct {
		name  string
		check func(t *testing.T, msg []byte, valid bool)
	}{
		{"cdr.voice", func(t *testing.T, msg []byte, valid bool) { checkTakesFastPath[rawCDR, CDR](t, msg, valid) }},
		{"billing.events", func(t *testing.T, msg []byte, valid bool) {
			checkTakesFastPath[rawBilling, BillingEvent](t, msg, valid)
		}},
	} {
		valid := readLines(t, filepath.Join("testdata", "examples", topic.name+".jsonl"))
		if len(valid) < 4 || len(invalid[topic.name]) == 0 {
			t.Fatalf("%s: %d valid and %d invalid examples", topic.name, len(valid), len(invalid[topic.name]))
		}
		for _, msg := range valid {
			t.Run(topic.name+"/valid", func(t *testing.T) { topic.check(t, []byte(msg), true) })
		}
		for _, msg := range invalid[topic.name] {
			t.Run(topic.name+"/invalid", func(t *testing.T) { topic.check(t, []byte(msg), false) })
		}
	}
}

// checkTakesFastPath fails unless the fast path binds msg and the
// validation of what it bound gives what the full path gives, an event if
// valid, the same refusal if not.
func checkTakesFastPath[R, T any, P canonicalRaw[R, T]](t *testing.T, msg []byte, valid bool) {
	t.Helper()
	var r R
	if !P(&r).scan(msg) {
		t.Fatalf("the fast path gives up on %s", msg)
	}
	got, err := P(&r).validate()
	want, wantErr := P(new(R)).decode(msg)
	if (err == nil) != valid || !sameError(err, wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path on %s:\n got  %+v, %v\n want %+v, %v (the full path)", msg, got, err, want, wantErr)
	}
}

// fastPathSeeds are the binding's seeds (the malformed corpus, the decoders'
// fuzz seeds, the examples, the binding's edge cases) and the cases above.
func fastPathSeeds(t testing.TB) [][]byte {
	t.Helper()
	seeds := bindingSeeds(t)
	for _, cases := range [][]fastPathCase{cdrGivingUp, billingGivingUp} {
		for _, c := range cases {
			seeds = append(seeds, []byte(c.msg))
		}
	}
	for _, msgs := range [][]string{cdrCanonical, billingCanonical} {
		for _, m := range msgs {
			seeds = append(seeds, []byte(m))
		}
	}
	for _, member := range []string{`"cell_id":"c"`, `"channel":"app"`, ` "x" : -0 `, `"roaming":false`, `"duration_s":null`} {
		seeds = append(seeds, []byte(member)) // for inCanonical
	}
	return seeds
}

func TestFastPathSeeds(t *testing.T) {
	for _, s := range fastPathSeeds(t) {
		checkFastPaths(t, s)
	}
}

// inCanonical returns msg, a canonical message, with its last member
// replaced by data. Random bytes are seldom a canonical message; spliced
// into one, they try the fast path on every kind of name, value and
// separator within an otherwise canonical object.
func inCanonical(msg string, data []byte) []byte {
	i := strings.LastIndexByte(msg, ',')
	return append(append([]byte(msg[:i+1]), data...), '}')
}

func FuzzFastPathCDR(f *testing.F) {
	for _, s := range fastPathSeeds(f) {
		if len(s) <= 4096 { // the corpus's huge messages would only slow the fuzzer
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastPath[rawCDR](t, data, DecodeCDR)
		checkFastPath[rawCDR](t, inCanonical(canonicalCDR, data), DecodeCDR)
	})
}

func FuzzFastPathBilling(f *testing.F) {
	for _, s := range fastPathSeeds(f) {
		if len(s) <= 4096 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastPath[rawBilling](t, data, DecodeBilling)
		checkFastPath[rawBilling](t, inCanonical(canonicalBilling, data), DecodeBilling)
	})
}

// TestCanonicalMembers checks what scanCanonical assumes of the raw
// structs: few enough members for its bit set, and names it may compare
// with the message's bytes directly (printable ASCII without '"' or '\\').
func TestCanonicalMembers(t *testing.T) {
	for _, members := range [][]member{new(rawCDR).members(), new(rawBilling).members()} {
		if len(members) > maxCanonicalMembers {
			t.Errorf("%d members, more than maxCanonicalMembers", len(members))
		}
		for _, m := range members {
			for i := range len(m.name) {
				if !plain(m.name[i]) {
					t.Errorf("member name %q is not plain", m.name)
				}
			}
		}
	}
}

// TestNotPlain8 holds notPlain8 to plain: for words with one or two bytes
// of every value at every position in a plain background, the lowest flag
// is the first byte plain refuses.
func TestNotPlain8(t *testing.T) {
	firstNotPlain := func(w [8]byte) int {
		for i, c := range w {
			if !plain(c) {
				return i
			}
		}
		return 8
	}
	check := func(w [8]byte) {
		got, want := 8, firstNotPlain(w)
		if m := notPlain8(binary.LittleEndian.Uint64(w[:])); m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != want {
			t.Fatalf("notPlain8(%q) finds byte %d, want %d", w, got, want)
		}
	}
	for _, background := range []byte{' ', '!', '#', 'a', '[', ']', '~'} {
		var w [8]byte
		for i := range w {
			w[i] = background
		}
		check(w)
		for i := range 8 {
			for j := i + 1; j < 8; j++ {
				for a := range 256 {
					for b := range 256 {
						w[i], w[j] = byte(a), byte(b)
						check(w)
					}
				}
				w[i], w[j] = background, background
			}
		}
	}
}
