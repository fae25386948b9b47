package bench

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The two cores of a benchmark machine are shared by the pipeline (with its
// in-process broker) and ClickHouse, and wall-clock throughput swings with
// whatever else runs there. CPU time per event is steadier, and says which
// side a change made cheaper, so a run records both sides' CPU over the
// throughput phase: this process's from getrusage, the ClickHouse server's
// from /proc, when it runs on this machine.

// clickHouseProcess finds the local process listening on addr's TCP port and
// returns its pid, or 0 when addr is not on this machine or /proc does not
// say (another user's process, a container).
func clickHouseProcess(addr string) int {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, inode is field 9.
			if len(f) < 10 || f[3] != "0A" {
				continue
			}
			if i := strings.LastIndexByte(f[1], ':'); i >= 0 {
				if p, err := strconv.ParseUint(f[1][i+1:], 16, 32); err == nil && int(p) == port {
					inodes["socket:["+f[9]+"]"] = true
				}
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if target, err := os.Readlink(fd); err == nil && inodes[target] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

// processCPU returns the user plus system CPU time a process has used.
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it do not.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	// USER_HZ is 100 on every Linux the pipeline supports.
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// Usage is what getrusage says of this process: CPU time in user and system
// mode, and minor page faults (first touches of memory the heap took from
// the kernel, or took back after returning it), which show as system time.
type Usage struct {
	User, System time.Duration
	MinorFaults  int64
}

// CPU is the CPU time in both modes.
func (u Usage) CPU() time.Duration { return u.User + u.System }

// selfUsage returns what this process has used so far.
func selfUsage() Usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}
	}
	return Usage{User: time.Duration(ru.Utime.Nano()), System: time.Duration(ru.Stime.Nano()), MinorFaults: ru.Minflt}
}

func (u Usage) sub(v Usage) Usage {
	return Usage{User: u.User - v.User, System: u.System - v.System, MinorFaults: u.MinorFaults - v.MinorFaults}
}

// CPUMeter measures the CPU of this process and of the local ClickHouse
// server over a phase.
type CPUMeter struct {
	chPID       int
	self        Usage
	ch          time.Duration
	chAvailable bool
}

// StartCPU starts measuring; the server is the local process listening on
// clickHouseAddr, if any.
func StartCPU(clickHouseAddr string) *CPUMeter {
	m := &CPUMeter{chPID: clickHouseProcess(clickHouseAddr), self: selfUsage()}
	if m.chPID != 0 {
		ch, err := processCPU(m.chPID)
		m.ch, m.chAvailable = ch, err == nil
	}
	return m
}

// Stop returns the CPU used since StartCPU: this process's (with its split
// and page faults) and, when known, the ClickHouse server's.
func (m *CPUMeter) Stop() (self Usage, ch time.Duration, chKnown bool) {
	self = selfUsage().sub(m.self)
	if !m.chAvailable {
		return self, 0, false
	}
	now, err := processCPU(m.chPID)
	if err != nil {
		return self, 0, false
	}
	return self, now - m.ch, true
}
