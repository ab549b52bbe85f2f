// Package procstat reads the CPU time processes have used from /proc, to
// split a load run's CPU between the parts of the stack.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc/<pid>/stat.
const clockTicks = 100

// CPUSeconds returns the user + system CPU time pid has used.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: fields start
	// after its last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return (utime + stime) / clockTicks, nil
}

// Sample is the CPU seconds of named processes at one moment; a process
// that cannot be read is left out.
type Sample map[string]float64

// Take samples every pid of procs (name → pid).
func Take(procs map[string]int) Sample {
	s := Sample{}
	for name, pid := range procs {
		if v, err := CPUSeconds(pid); err == nil {
			s[name] = v
		}
	}
	return s
}

// Since returns the CPU seconds each process used from earlier to s,
// grouped by group(name). A process restarted in between (its counter
// went down) counts from zero.
func (s Sample) Since(earlier Sample, group func(name string) string) map[string]float64 {
	out := map[string]float64{}
	for name, v := range s {
		d := v - earlier[name]
		if d < 0 {
			d = v
		}
		out[group(name)] += d
	}
	return out
}
