//go:build failpoints

package consumers

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// This file is compiled only with the build tag failpoints, into the binary
// the fault suite (cmd/churnwatch, TestChaos) runs. It lets the suite kill
// the process at exact points of a flush, which a timed SIGKILL hits only by
// luck, and build the deliberately broken variant its oracle must catch.
//
//	CHURNWATCH_FAILPOINT=NAME:N[:TOPIC]
//	                              SIGKILL the process the Nth time a flush
//	                              reaches NAME (before-store, after-store,
//	                              before-commit), counting only the flushes
//	                              of topics ending in TOPIC when given
//	CHURNWATCH_FAILPOINT_COMMIT_FIRST=1
//	                              commit offsets before storing the batch:
//	                              the bug that loses data on a crash

var (
	commitFirst = os.Getenv("CHURNWATCH_FAILPOINT_COMMIT_FIRST") == "1"

	failpointName, failpointAt, failpointTopic = parseFailpoint(os.Getenv("CHURNWATCH_FAILPOINT"))
	failpointHits                              atomic.Int64
)

func parseFailpoint(s string) (name string, at int64, topic string) {
	if s == "" {
		return "", 0, ""
	}
	parts := strings.SplitN(s, ":", 3)
	at = 1
	if len(parts) > 1 {
		if n, err := strconv.ParseInt(parts[1], 10, 64); err == nil && n > 0 {
			at = n
		}
	}
	if len(parts) > 2 {
		topic = parts[2]
	}
	return parts[0], at, topic
}

func failpoint(topic, name string) {
	if name != failpointName || !strings.HasSuffix(topic, failpointTopic) || failpointHits.Add(1) != failpointAt {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s reached in %s (hit %d): killing the process\n", name, topic, failpointAt)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
