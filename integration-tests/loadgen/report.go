package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Labeled is a Report with the run's labels, one JSON line per run in the
// results file the bench script collects.
type Labeled struct {
	System string `json:"system"` // qianlang or nats
	Tier   string `json:"tier"`   // durability tier, see docs/benchmarks.md
	Report
}

// ReadResults reads a results file.
func ReadResults(r io.Reader) ([]Labeled, error) {
	var out []Labeled
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var l Labeled
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			return nil, fmt.Errorf("loadgen: results line %q: %w", line, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// group is the runs of one configuration.
type group struct {
	key  string
	runs []Labeled
}

func groupKey(l Labeled) string {
	mode := "closed"
	if l.Rate > 0 {
		mode = fmt.Sprintf("open %d/s", l.Rate)
	}
	return fmt.Sprintf("%s|%s|%s|%s|%d|%s|%d|%s", l.System, l.Tier, l.Command, l.Client, l.Size, mode, l.Batch, l.Load)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(xs []float64) string {
	if len(xs) < 2 {
		return "-"
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return fmt.Sprintf("%.0f–%.0f", s[0], s[len(s)-1])
}

// WriteMarkdown renders the runs as the results section of
// docs/benchmarks.md: one row per configuration with medians over its
// repetitions.
func WriteMarkdown(w io.Writer, runs []Labeled, command, machine string) error {
	byKey := map[string]*group{}
	var order []string
	for _, r := range runs {
		k := groupKey(r)
		if byKey[k] == nil {
			byKey[k] = &group{key: k}
			order = append(order, k)
		}
		byKey[k].runs = append(byKey[k].runs, r)
	}
	fmt.Fprintf(w, "Run %s on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine)
	fmt.Fprintf(w, "Command: `%s`. Each row is the median of its runs (range in brackets); latencies are per message, publish to acknowledgement, from HDR histograms.\n\n", command)
	fmt.Fprintln(w, "| System | Tier | Test | Client | Size | Load | Runs | msgs/s (range) | MiB/s | p50 | p99 | p99.9 | Server RSS peak | Server CPU-s / 10⁶ msgs | Client CPU-s / 10⁶ msgs |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range order {
		g := byKey[k]
		var tput, mb, p50, p99, p999, rss, cpu, ccpu []float64
		for _, r := range g.runs {
			tput = append(tput, r.Result.MsgsPerS)
			mb = append(mb, r.Result.MBPerS)
			p50 = append(p50, float64(r.Result.P50))
			p99 = append(p99, float64(r.Result.P99))
			p999 = append(p999, float64(r.Result.P999))
			rss = append(rss, r.PeakRSSMiB)
			cpu = append(cpu, r.CPUPerMillion)
			ccpu = append(ccpu, r.ClientCPUPerMillion)
		}
		r := g.runs[0]
		load := "closed, window " + fmt.Sprint(r.Window)
		if r.Rate > 0 {
			load = fmt.Sprintf("open, %d msgs/s", r.Rate)
		}
		if r.Batch > 1 {
			load += fmt.Sprintf(", batches of %d", r.Batch)
		}
		if r.Command == "consume" {
			load = "drain backlog"
		}
		if r.Load != "" {
			load = r.Load
		}
		lat := func(xs []float64) string {
			if r.Command == "consume" || r.Command == "filter" {
				return "-"
			}
			return time.Duration(median(xs)).Round(10 * time.Microsecond).String()
		}
		opt := func(v float64, f string) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf(f, v)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d | %.0f (%s) | %.1f | %s | %s | %s | %s | %s | %s |\n",
			r.System, r.Tier, r.Command, r.Client, sizeName(r.Size), load, len(g.runs),
			median(tput), spread(tput), median(mb), lat(p50), lat(p99), lat(p999),
			opt(median(rss), "%.0f MiB"), opt(median(cpu), "%.1f"), opt(median(ccpu), "%.1f"))
	}
	writeRatios(w, byKey, order)
	return nil
}

// writeRatios adds a table of our closed-loop throughput over the peer's
// for every tier and size both were run at: the ratio of the medians, and
// the range of the ratios of runs taken one after the other (the i-th run
// of each, which the bench script interleaves).
func writeRatios(w io.Writer, byKey map[string]*group, order []string) {
	header := false
	for _, k := range order {
		peer := byKey[k]
		p := peer.runs[0]
		if p.Client != "nats" || p.Command != "produce" || p.Rate > 0 {
			continue
		}
		var ours *group
		for _, k2 := range order {
			o := byKey[k2].runs[0]
			if strings.HasPrefix(o.System, "qianlang") && o.Client == "native" && o.Command == "produce" &&
				o.Rate == 0 && o.Tier == p.Tier && o.Size == p.Size && o.Batch == p.Batch && o.Window == p.Window {
				ours = byKey[k2]
				break
			}
		}
		if ours == nil {
			continue
		}
		if !header {
			fmt.Fprint(w, "\nOur throughput over the peer's, closed loop:\n\n")
			fmt.Fprintln(w, "| Tier | Size | Ours | Peer | Ratio of medians | Ratios of run pairs |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|")
			header = true
		}
		a, b := throughputs(ours.runs), throughputs(peer.runs)
		pairs := "-"
		if len(a) == len(b) {
			r := make([]float64, len(a))
			for i := range a {
				r[i] = a[i] / b[i]
			}
			s := append([]float64(nil), r...)
			sort.Float64s(s)
			pairs = fmt.Sprintf("%.2f×–%.2f×", s[0], s[len(s)-1])
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f× | %s |\n", p.Tier, sizeName(p.Size),
			ours.runs[0].System, p.System, median(a)/median(b), pairs)
	}
}

func throughputs(runs []Labeled) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = r.Result.MsgsPerS
	}
	return out
}

func sizeName(n int) string {
	switch {
	case n == 0:
		return "-"
	case n%1024 == 0:
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// MachineDescription summarizes this machine for the report.
func MachineDescription() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d vCPU %s%s, Linux %s", n, cpu, mem, strings.TrimSpace(string(kernel)))
}
