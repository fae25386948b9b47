// Package malformed reads the corpus of malformed input messages in
// schemas/testdata/malformed (format in the README beside it), which the
// decoder tests and the consumers' DLQ test both replay.
package malformed

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Case is one line of the corpus.
type Case struct {
	Topic, Name string
	// Reason is a substring of the expected error; "-" when the decoder
	// accepts the message and only the size limit rejects it.
	Reason string
	Msg    []byte
}

// Load reads the corpus file at path.
func Load(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cases []Case
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 || f[0] == "" || f[1] == "" || f[2] == "" {
			return nil, fmt.Errorf("%s line %d: want topic<TAB>name<TAB>reason<TAB>message, got %q", path, i+1, line)
		}
		msg, err := Expand(f[3])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		cases = append(cases, Case{Topic: f[0], Name: f[1], Reason: f[2], Msg: msg})
	}
	return cases, nil
}

// Expand turns «hh» into the byte 0xhh and «N*text» into text repeated N
// times.
func Expand(s string) ([]byte, error) {
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
