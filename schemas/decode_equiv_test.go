package schemas

// The raw* structs bind messages by hand (bind.go) where they used to be
// structs of pointers decoded by json.Unmarshal. The refusal reasons are
// part of the interface (upstream teams match on them, the DLQ keeps them),
// and the validation after the binding is shared, so the binding alone is
// compared here with the pointer structs it replaced: every message must
// bind to the same values, or fail with the same *FieldError, word for word.
// The malformed corpus only checks that a reason contains a phrase; this
// checks the whole text, for the corpus, the fuzz seeds, the examples and a
// list of edge cases of the binding itself. To search for differences:
//
//	go test ./schemas -run XXX -fuzz FuzzBindingEquivalence -fuzztime 60s

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"churnwatch/schemas/malformed"
)

// The pointer structs as they were.
type (
	pointerCDR struct {
		EventID     *string `json:"event_id"`
		MSISDN      *string `json:"msisdn"`
		Peer        *string `json:"peer"`
		Direction   *string `json:"direction"`
		StartTime   *string `json:"start_time"`
		DurationS   *int64  `json:"duration_s"`
		PeerNetwork *string `json:"peer_network"`
		ForwardTo   *string `json:"forward_to"`
		CellID      *string `json:"cell_id"`
	}
	pointerBilling struct {
		EventID    *string `json:"event_id"`
		MSISDN     *string `json:"msisdn"`
		Type       *string `json:"type"`
		TS         *string `json:"ts"`
		AmountFen  *int64  `json:"amount_fen"`
		BalanceFen *int64  `json:"balance_fen"`
		Channel    *string `json:"channel"`
		BillMonth  *string `json:"bill_month"`
	}
	pointerCRM struct {
		EventID *string  `json:"event_id"`
		MSISDN  *string  `json:"msisdn"`
		Type    *string  `json:"type"`
		TS      *string  `json:"ts"`
		Profile *Profile `json:"profile"`
	}
	pointerTaskUpdate struct {
		TaskID *string `json:"task_id"`
		MSISDN *string `json:"msisdn"`
		Status *string `json:"status"`
		By     *string `json:"by"`
		To     *string `json:"to"`
		Note   *string `json:"note"`
		TS     *string `json:"ts"`
	}
)

// pointerUnmarshal is unmarshal as it was, decoding into a pointer struct.
func pointerUnmarshal(data []byte, v any) error {
	if i := firstNonSpace(data); i == len(data) {
		return &FieldError{Reason: "message is empty"}
	} else if data[i] != '{' {
		if val := jsontext.Value(data); val.IsValid() {
			return &FieldError{Reason: "message must be a JSON object, got " + kindName(val.Kind())}
		}
	}
	if !utf8.Valid(data) {
		return &FieldError{Reason: fmt.Sprintf("message is not valid UTF-8 (first bad byte at offset %d)", invalidUTF8At(data))}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// checkSameBinding decodes data into a raw struct and into the pointer
// struct it replaced, and fails unless both give the same error or the same
// values, field by field (by name).
func checkSameBinding[R any, P any](t *testing.T, data []byte) {
	t.Helper()
	var raw R
	var ptr P
	errRaw := unmarshal(data, any(&raw).(json.UnmarshalerFrom))
	errPtr := pointerUnmarshal(data, &ptr)
	if errRaw != nil || errPtr != nil {
		var feRaw, fePtr *FieldError
		if !errors.As(errRaw, &feRaw) || !errors.As(errPtr, &fePtr) || *feRaw != *fePtr {
			t.Fatalf("%T and %T disagree on %q:\n got  %v\n want %v", raw, ptr, data, errRaw, errPtr)
		}
		return
	}
	rv, pv := reflect.ValueOf(raw), reflect.ValueOf(ptr)
	for i := range pv.NumField() {
		name := pv.Type().Field(i).Name
		want, got := pv.Field(i), rv.FieldByName(name)
		var same bool
		switch g := got.Interface().(type) {
		case optString:
			same = want.IsNil() && !g.Set && g.V == "" || !want.IsNil() && g.Set && g.V == want.Elem().String()
		case optInt:
			same = want.IsNil() && !g.Set && g.V == 0 || !want.IsNil() && g.Set && g.V == want.Elem().Int()
		default:
			same = reflect.DeepEqual(g, want.Interface())
		}
		if !same {
			t.Fatalf("%T and %T disagree on %s of %q:\n got  %+v\n want %+v", raw, ptr, name, data, got, want)
		}
	}
}

func checkSameBindings(t *testing.T, data []byte) {
	t.Helper()
	checkSameBinding[rawCDR, pointerCDR](t, data)
	checkSameBinding[rawBilling, pointerBilling](t, data)
	checkSameBinding[rawCRM, pointerCRM](t, data)
	checkSameBinding[rawTaskUpdate, pointerTaskUpdate](t, data)
}

// bindingEdgeCases are the corners of the hand binding: null and other
// kinds where a string or an integer is expected, integer syntax, escaped
// and duplicated names, and broken JSON at every place the binding reads.
var bindingEdgeCases = []string{
	`{}`, ` {} `, `{"x":1}`, `[1,`, `[1] x`, `[`, `null x`, `nul`, `"abc`, `1 2`, `tru`, `{"a":1} {`, `{"a"}`, `{"a":}`, `{,}`,
	`{"event_id":null}`, `{"event_id":""}`, `{"event_id":"a\"b\u00e9\n"}`, `{"event_id":"\ud83d\ude00"}`, `{"event_id":"\ud800"}`,
	`{"event_id":1}`, `{"event_id":true}`, `{"event_id":[]}`, `{"event_id":{}}`, `{"event_id":[1,}`, `{"event_id":{"a":1,"a":2}}`,
	`{"event_id":n}`, `{"event_id":nul`, `{"event_id":nullx}`, `{"event_id":"a"x}`, `{"event_id":"e",}`, `{"event_id" "e"}`,
	`{"event_id":"e" "x":1}`, `{"event_id":"e"}x`, `{"event_id":1}x`, `{"event_id":1`, `{"event_id":"e"`, `{"event_id":`,
	`{"event_id":"e","event_id":null}`, `{"event_id":null,"event_id":"e"}`, `{"event_id":"e","ev\u0065nt_id":"f"}`,
	`{"ms\u0069sdn":"13800000001"}`, `{"ms\u0069sdn":1}`, `{"msisdn":"1","MSISDN":"2"}`, `{"x":1,"x":2}`, `{"":1,"":2}`,
	`{"\u0000":1}`, `{"x":{"y":[1,{"z":1,"z":2}]}}`,
	`{"duration_s":0}`, `{"duration_s":-0}`, `{"duration_s":null}`, `{"duration_s":1e2}`, `{"duration_s":1E2}`, `{"duration_s":1.0}`,
	`{"duration_s":-0.0}`, `{"duration_s":7.5}`, `{"duration_s":1e400}`, `{"duration_s":1.5e400}`, `{"duration_s":01}`, `{"duration_s":-}`,
	`{"duration_s":-9223372036854775808}`, `{"duration_s":-9223372036854775809}`, `{"duration_s":9223372036854775807}`,
	`{"duration_s":9223372036854775808}`, `{"duration_s":18446744073709551616}`, `{"duration_s":99999999999999999999.5}`,
	`{"duration_s":"5"}`, `{"duration_s":"5"x}`, `{"duration_s":true}`, `{"duration_s":[1,`, `{"duration_s":{"a":1,"a":2}}`,
	`{"duration_s":nul`, `{"duration_s":nulx}`, `{"duration_s":1x}`, `{"amount_fen":null,"balance_fen":true}`,
	`{"profile":null}`, `{"profile":{}}`, `{"profile":"gold"}`, `{"profile":{"tier":1}}`, `{"profile":{"interests":[1]}}`,
	`{"profile":{"group":[]}}`, `{"profile":{"x":1,"x":2}}`, `{"profile":{"tier":"gold","tier":"gold"}}`, `{"profile":{"region":"a"`,
	"{\"event_id\":\"e\"}\x00", "{\"event_id\":\"e\xff\"}", "\xef\xbb\xbf{}", " \t\r\n{\"event_id\" : \"e\" , \"msisdn\" : null }\n",
}

// bindingSeeds returns every message the tests know: the malformed corpus,
// the decoders' fuzz seeds, the examples and bindingEdgeCases.
func bindingSeeds(t testing.TB) [][]byte {
	t.Helper()
	var seeds [][]byte
	cases, err := malformed.Load(filepath.Join("testdata", "malformed", "corpus.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		seeds = append(seeds, c.Msg)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode*", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fuzz seeds (%v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if arg, ok := strings.CutPrefix(strings.TrimSpace(line), "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(arg, ")"))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				seeds = append(seeds, []byte(s))
			}
		}
	}
	files, _ = filepath.Glob(filepath.Join("testdata", "examples", "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if fields := bytes.Split(line, []byte("\t")); len(fields) == 3 { // invalid.txt
				line = fields[1]
			}
			seeds = append(seeds, line)
		}
	}
	for _, s := range bindingEdgeCases {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

func TestBindingEquivalence(t *testing.T) {
	for _, s := range bindingSeeds(t) {
		checkSameBindings(t, s)
	}
}

func FuzzBindingEquivalence(f *testing.F) {
	for _, s := range bindingSeeds(f) {
		if len(s) <= 4096 { // the corpus's huge messages would only slow the fuzzer
			f.Add(s)
		}
	}
	f.Fuzz(checkSameBindings)
}
