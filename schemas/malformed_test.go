package schemas_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"churnwatch/pipeline/config"
	"churnwatch/schemas"
	"churnwatch/schemas/malformed"
)

func loadMalformed(t *testing.T) []malformed.Case {
	t.Helper()
	cases, err := malformed.Load(filepath.Join("testdata", "malformed", "corpus.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestExpandMalformed(t *testing.T) {
	got, err := malformed.Expand(`a«ff»b«3*xy»«09»`)
	if err != nil || string(got) != "a\xffbxyxyxy\t" {
		t.Errorf("expand = %q, %v", got, err)
	}
	for _, bad := range []string{"«ff", "«zz»", "«fff»", "«0*x»", "«3*»"} {
		if _, err := malformed.Expand(bad); err == nil {
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
		perTopic[tc.Topic]++
		key := tc.Topic + "\x00" + string(tc.Msg)
		if other, dup := seen[key]; dup {
			t.Errorf("%s: %q and %q carry the same message", tc.Topic, other, tc.Name)
		}
		seen[key] = tc.Name
		t.Run(tc.Topic+"/"+tc.Name, func(t *testing.T) {
			decode := decoder(tc.Topic)
			if decode == nil {
				t.Fatalf("unknown topic %q", tc.Topic)
			}
			err := decode(tc.Msg)
			if tc.Reason == "-" {
				// Valid as JSON; the consumer refuses it for its size alone.
				if err != nil {
					t.Errorf("decoder rejects a case marked as size-only: %v", err)
				}
				if len(tc.Msg) <= config.DefaultMaxMessageBytes {
					t.Errorf("size-only case of %d bytes is within the default limit of %d", len(tc.Msg), config.DefaultMaxMessageBytes)
				}
				return
			}
			var fe *schemas.FieldError
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("want a *FieldError with a reason, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.Reason) {
				t.Errorf("error %q does not say %q", err, tc.Reason)
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
