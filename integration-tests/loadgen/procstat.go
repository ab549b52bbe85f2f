package loadgen

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcWatch samples processes' resident memory and CPU time from /proc
// while a run goes on.
type ProcWatch struct {
	pids    []int
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	peakRSS int64 // bytes, summed over the pids
	cpu0    float64
}

// WatchProcs starts sampling pids every 100 ms.
func WatchProcs(pids []int) *ProcWatch {
	w := &ProcWatch{pids: pids, stop: make(chan struct{}), cpu0: cpuSeconds(pids)}
	w.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	})
	return w
}

func (w *ProcWatch) sample() {
	var sum int64
	for _, pid := range w.pids {
		sum += rss(pid)
	}
	w.mu.Lock()
	w.peakRSS = max(w.peakRSS, sum)
	w.mu.Unlock()
}

// Stop ends sampling and returns the peak RSS (bytes) and the CPU seconds
// the processes used meanwhile.
func (w *ProcWatch) Stop() (peakRSS int64, cpu float64) {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peakRSS, cpuSeconds(w.pids) - w.cpu0
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuSeconds sums utime+stime of the pids (clock ticks of 1/100 s).
func cpuSeconds(pids []int) float64 {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) > 12 {
			u, _ := strconv.ParseInt(fields[11], 10, 64)
			k, _ := strconv.ParseInt(fields[12], 10, 64)
			ticks += u + k
		}
	}
	return float64(ticks) / 100
}
