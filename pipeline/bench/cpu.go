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

// processUsage returns the CPU time a process has used, in user and system
// mode, and its minor page faults.
func processUsage(pid int) (Usage, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	// The command name (field 2) may hold spaces; the fields after it do
	// not. f[0] is field 3 (state): minflt is field 10, utime 14, stime 15.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return Usage{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	minflt, err0 := strconv.ParseInt(f[7], 10, 64)
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return Usage{}, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	// USER_HZ is 100 on every Linux the pipeline supports.
	tick := 10 * time.Millisecond
	return Usage{User: time.Duration(utime) * tick, System: time.Duration(stime) * tick, MinorFaults: minflt}, nil
}

// Usage is what getrusage (or /proc) says of a process: CPU time in user
// and system mode, and minor page faults (first touches of memory the
// process took from the kernel, or took back after returning it), which
// show as system time and cost about 13 us each on the benchmark's VM.
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
// server over a phase, and the share of the machine's CPU time the
// hypervisor took for other guests (steal) over it.
type CPUMeter struct {
	chPID       int
	self        Usage
	ch          Usage
	chAvailable bool
	machine     cpuTimes
	machineOK   bool
}

// StartCPU starts measuring; the server is the local process listening on
// clickHouseAddr, if any.
func StartCPU(clickHouseAddr string) *CPUMeter {
	m := &CPUMeter{chPID: clickHouseProcess(clickHouseAddr), self: selfUsage()}
	if m.chPID != 0 {
		ch, err := processUsage(m.chPID)
		m.ch, m.chAvailable = ch, err == nil
	}
	m.machine, m.machineOK = readCPUTimes()
	return m
}

// Stop returns what was used since StartCPU: by this process and, when
// known, by the ClickHouse server.
func (m *CPUMeter) Stop() (self, ch Usage, chKnown bool) {
	u := m.stop()
	return u.self, u.ch, u.chKnown
}

// phaseUse is what a phase used: this process, the ClickHouse server (when
// chKnown), and the share of all the machine's CPU time that was stolen
// (when stealKnown).
type phaseUse struct {
	self, ch   Usage
	chKnown    bool
	steal      float64
	stealKnown bool
}

func (m *CPUMeter) stop() phaseUse {
	u := phaseUse{self: selfUsage().sub(m.self)}
	if now, ok := readCPUTimes(); ok && m.machineOK {
		_, u.steal, u.stealKnown = now.since(m.machine)
	}
	if !m.chAvailable {
		return u
	}
	if now, err := processUsage(m.chPID); err == nil {
		u.ch, u.chKnown = now.sub(m.ch), true
	}
	return u
}
