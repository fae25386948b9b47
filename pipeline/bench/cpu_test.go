package bench

import (
	"net"
	"os"
	"testing"
	"time"
)

// TestClickHouseProcess: the process listening on a loopback port is found
// by the port (here this test's own listener); an address on another host
// or a port nobody listens on finds none.
func TestClickHouseProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if pid := clickHouseProcess(ln.Addr().String()); pid != os.Getpid() {
		t.Errorf("clickHouseProcess(%s) = %d, want this process %d", ln.Addr(), pid, os.Getpid())
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if pid := clickHouseProcess("192.0.2.1:" + port); pid != 0 {
		t.Errorf("an address on another host gave pid %d", pid)
	}
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := free.Addr().String()
	free.Close()
	if pid := clickHouseProcess(addr); pid != 0 {
		t.Errorf("a port nobody listens on gave pid %d", pid)
	}
}

// TestProcessUsage: the CPU read from /proc grows with work done, and
// agrees with getrusage for this process to within the /proc tick.
func TestProcessUsage(t *testing.T) {
	before, err := processUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self := selfUsage().CPU()
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
	}
	after, err := processUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if used := after.CPU() - before.CPU(); used < 100*time.Millisecond {
		t.Errorf("/proc says %v of CPU for 300 ms of spinning", used)
	}
	if d := (selfUsage().CPU() - self) - (after.CPU() - before.CPU()); d > 100*time.Millisecond || d < -100*time.Millisecond {
		t.Errorf("getrusage and /proc disagree by %v", d)
	}
}

// TestSelfUsageFaults: touching fresh memory shows as minor page faults,
// in getrusage and in /proc, which the throughput phase reports beside
// each side's system time.
func TestSelfUsageFaults(t *testing.T) {
	before := selfUsage()
	proc, err := processUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	fresh := make([]byte, 64<<20)
	for i := 0; i < len(fresh); i += 4096 {
		fresh[i] = 1
	}
	used := selfUsage().sub(before)
	if used.MinorFaults < 4096 { // 16,384 pages touched; allow huge pages and prefaulting
		t.Errorf("%d minor page faults for 64 MiB of fresh memory", used.MinorFaults)
	}
	procNow, err := processUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if n := procNow.sub(proc).MinorFaults; n < 4096 {
		t.Errorf("/proc says %d minor page faults for 64 MiB of fresh memory", n)
	}
	if used.CPU() <= 0 {
		t.Errorf("no CPU time for touching 64 MiB: %+v", used)
	}
}
