//go:build !failpoints

package consumers

// Failpoints are compiled only into the fault-suite binary (build tag
// failpoints, see failpoint_on.go); here they cost nothing.

const commitFirst = false

func failpoint(topic, name string) {}
