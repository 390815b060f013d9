package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a bench ran and how busy it was, because every
// number of the report depends on it.
type Machine struct {
	CPUModel  string    `json:"cpu_model"`
	Cores     int       `json:"cores"`
	MemoryGiB float64   `json:"memory_gib"`
	Kernel    string    `json:"kernel"`
	Go        string    `json:"go"`
	Commit    string    `json:"commit"`
	Date      time.Time `json:"date"`
	LoadAvg   string    `json:"load_average_at_start"` // 1, 5, 15 minutes
	// Busy lists the processes other than the bench that used more than 5%
	// of a core during a short sample before the bench started.
	Busy []BusyProcess `json:"busy_processes_at_start"`
}

// BusyProcess is a process seen using CPU.
type BusyProcess struct {
	PID     int     `json:"pid"`
	Command string  `json:"command"`
	Cores   float64 `json:"cores"` // CPU seconds per second
}

// Describe samples the machine for sample (CPU use of other processes).
func Describe(root string, sample time.Duration) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	m.Busy = busyProcesses(sample)
	return m
}

// busyProcesses samples every process's CPU time twice.
func busyProcesses(d time.Duration) []BusyProcess {
	self := os.Getpid()
	before := procTimes()
	time.Sleep(d)
	after := procTimes()
	var out []BusyProcess
	for pid, t1 := range after {
		t0, ok := before[pid]
		if !ok || pid == self {
			continue
		}
		c := (t1 - t0) / d.Seconds()
		if c > 0.05 {
			out = append(out, BusyProcess{PID: pid, Command: commandOf(pid), Cores: round2(c)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cores > out[j].Cores })
	return out
}

// procTimes is every process's user+system CPU seconds.
func procTimes() map[int]float64 {
	out := map[int]float64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, err := cpuSeconds(pid); err == nil {
			out[pid] = t
		}
	}
	return out
}

// clockTick is USER_HZ, 100 on every Linux the daemon supports.
const clockTick = 100

// cpuSeconds is a process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTick, nil
}

// commandOf names a process by its executable and first argument (enough
// to tell a training run from a build).
func commandOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(c))
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	s := filepath.Base(args[0])
	if len(args) > 1 {
		s += " " + filepath.Base(args[1])
	}
	return s
}

// machineBusy is the machine's busy CPU seconds (all cores) so far.
func machineBusy() (busy, total float64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fs := strings.Fields(sc.Text())
	if len(fs) < 5 || fs[0] != "cpu" {
		return 0, 0
	}
	var v []float64
	for _, x := range fs[1:] {
		n, _ := strconv.ParseFloat(x, 64)
		v = append(v, n/clockTick)
	}
	for i, x := range v {
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, total
}

// memStatus reads VmRSS and VmHWM (peak) of a process, in bytes.
func memStatus(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }
