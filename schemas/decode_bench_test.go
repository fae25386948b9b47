package schemas_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"churnwatch/schemas"
)

// examples returns the example messages of a topic (schemas/testdata/examples).
func examples(b *testing.B, topic string) [][]byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "examples", topic+".jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	var out [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		b.Fatalf("no examples for %s", topic)
	}
	return out
}

// benchDecode decodes and validates the topic's examples in turn; every one
// must be valid. Run with: go test ./schemas -run XXX -bench Decode
func benchDecode[T any](b *testing.B, topic string, decode func([]byte) (T, error)) {
	msgs := examples(b, topic)
	for _, m := range msgs {
		if _, err := decode(m); err != nil {
			b.Fatalf("%s example %s: %v", topic, m, err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n int64
	for i := 0; b.Loop(); i++ {
		m := msgs[i%len(msgs)]
		n += int64(len(m))
		if _, err := decode(m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(n / int64(max(b.N, 1)))
}

func BenchmarkDecodeCDR(b *testing.B)     { benchDecode(b, "cdr.voice", schemas.DecodeCDR) }
func BenchmarkDecodeBilling(b *testing.B) { benchDecode(b, "billing.events", schemas.DecodeBilling) }
func BenchmarkDecodeCRM(b *testing.B)     { benchDecode(b, "crm.events", schemas.DecodeCRM) }
func BenchmarkDecodeTaskUpdate(b *testing.B) {
	benchDecode(b, "churn.task-updates", schemas.DecodeTaskUpdate)
}
