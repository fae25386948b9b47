package schemas_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"churnwatch/pipeline/config"
	"churnwatch/schemas"
)

// malformedCase is one line of testdata/malformed/corpus.tsv.
type malformedCase struct {
	topic, name string
	reason      string // "-": the decoder accepts it; only the size limit rejects it
	msg         []byte
}

// loadMalformed reads the malformed corpus (format in
// testdata/malformed/README.md; consumers/malformed_test.go reads the same
// file).
func loadMalformed(t *testing.T) []malformedCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "malformed", "corpus.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []malformedCase
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 || f[0] == "" || f[1] == "" || f[2] == "" {
			t.Fatalf("corpus.tsv line %d: want topic<TAB>name<TAB>reason<TAB>message, got %q", i+1, line)
		}
		msg, err := expandMalformed(f[3])
		if err != nil {
			t.Fatalf("corpus.tsv line %d: %v", i+1, err)
		}
		cases = append(cases, malformedCase{topic: f[0], name: f[1], reason: f[2], msg: msg})
	}
	return cases
}

// expandMalformed turns «hh» into the byte 0xhh and «N*text» into text
// repeated N times.
func expandMalformed(s string) ([]byte, error) {
	var out []byte
	for {
		i := strings.Index(s, "«")
		if i < 0 {
			return append(out, s...), nil
		}
		out = append(out, s[:i]...)
		s = s[i+len("«"):]
		j := strings.Index(s, "»")
		if j < 0 {
			return nil, fmt.Errorf("« without »")
		}
		macro := s[:j]
		s = s[j+len("»"):]
		if n, text, ok := strings.Cut(macro, "*"); ok {
			count, err := strconv.Atoi(n)
			if err != nil || count < 1 || text == "" {
				return nil, fmt.Errorf("bad repetition «%s»", macro)
			}
			out = append(out, bytes.Repeat([]byte(text), count)...)
			continue
		}
		b, err := strconv.ParseUint(macro, 16, 8)
		if err != nil || len(macro) != 2 {
			return nil, fmt.Errorf("bad byte «%s»", macro)
		}
		out = append(out, byte(b))
	}
}

func TestExpandMalformed(t *testing.T) {
	got, err := expandMalformed(`a«ff»b«3*xy»«09»`)
	if err != nil || string(got) != "a\xffbxyxyxy\t" {
		t.Errorf("expand = %q, %v", got, err)
	}
	for _, bad := range []string{"«ff", "«zz»", "«fff»", "«0*x»", "«3*»"} {
		if _, err := expandMalformed(bad); err == nil {
			t.Errorf("expand(%q) accepted a malformed macro", bad)
		}
	}
}

// TestMalformedCorpus checks every malformed message against its decoder:
// each is refused with a *FieldError whose text holds the case's reason.
func TestMalformedCorpus(t *testing.T) {
	cases := loadMalformed(t)
	perTopic := map[string]int{}
	seen := map[string]string{}
	for _, tc := range cases {
		perTopic[tc.topic]++
		key := tc.topic + "\x00" + string(tc.msg)
		if other, dup := seen[key]; dup {
			t.Errorf("%s: %q and %q carry the same message", tc.topic, other, tc.name)
		}
		seen[key] = tc.name
		t.Run(tc.topic+"/"+tc.name, func(t *testing.T) {
			decode := decoder(tc.topic)
			if decode == nil {
				t.Fatalf("unknown topic %q", tc.topic)
			}
			err := decode(tc.msg)
			if tc.reason == "-" {
				// Valid as JSON; the consumer refuses it for its size alone.
				if err != nil {
					t.Errorf("decoder rejects a case marked as size-only: %v", err)
				}
				if len(tc.msg) <= config.DefaultMaxMessageBytes {
					t.Errorf("size-only case of %d bytes is within the default limit of %d", len(tc.msg), config.DefaultMaxMessageBytes)
				}
				return
			}
			var fe *schemas.FieldError
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("want a *FieldError with a reason, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes: a reason must stay short even for huge input", len(err.Error()))
			}
		})
	}
	for _, topic := range inputTopics {
		if perTopic[topic] < 10 {
			t.Errorf("%s: only %d malformed cases", topic, perTopic[topic])
		}
	}
}
