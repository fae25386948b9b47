package bench

import (
	"runtime/debug"
	"testing"
)

// TestRevisionOf: a run records the commit its binary was built from, marked
// when the work tree had changes, and nothing when the build recorded none.
func TestRevisionOf(t *testing.T) {
	const rev = "2710810d1c5f3f4f6f3a4f0e2a2b9f8c7d6e5f4a"
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"clean", []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}, rev},
		{"modified", []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: rev}}, rev + "+modified"},
		{"no vcs", []debug.BuildSetting{{Key: "GOOS", Value: "linux"}}, ""},
	} {
		if got := revisionOf(tc.settings); got != tc.want {
			t.Errorf("%s: revision %q, want %q", tc.name, got, tc.want)
		}
	}
}
