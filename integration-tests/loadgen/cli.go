package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/protocol"
)

// Report is one command's machine-readable output.
type Report struct {
	Command    string  `json:"command"`
	Client     string  `json:"client"`
	Size       int     `json:"size"`
	Window     int     `json:"window"`
	Conns      int     `json:"conns"`
	Rate       int     `json:"rate"`
	Batch      int     `json:"batch"`
	Result     Result  `json:"result"`
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
	ServerCPU  float64 `json:"server_cpu_s,omitempty"`
	// CPUPerMillion is server CPU-seconds per million messages.
	CPUPerMillion float64 `json:"server_cpu_s_per_million,omitempty"`
	// ClientCPUPerMillion is the load generator's own CPU-seconds per
	// million messages.
	ClientCPUPerMillion float64 `json:"client_cpu_s_per_million,omitempty"`
	// Load describes a feature benchmark's load, shown in the report's
	// Load column.
	Load string `json:"load,omitempty"`
}

// Main runs qlbench with args and writes its result to out.
func Main(ctx context.Context, args []string, out io.Writer) error {
	rlog.SetLogLevel("error")
	if len(args) == 0 {
		return errors.New("usage: qlbench topic|produce|consume [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	namesrv := fs.String("n", "127.0.0.1:9876", "NameServer address")
	topic := fs.String("t", "BenchTopic", "topic")
	jsonOut := fs.Bool("json", false, "print JSON")
	fs.StringVar(&labels.System, "system", "qianlang", "label: system under test (for -json)")
	fs.StringVar(&labels.Tier, "tier", "T0", "label: durability tier (for -json)")
	switch args[0] {
	case "report":
		in := fs.String("in", "", "results file (JSON lines)")
		doc := fs.String("out", "", "markdown file whose results section is replaced")
		command := fs.String("command", "make bench", "command to cite")
		section := fs.String("section", "results", "the doc's generated section: <!-- NAME:begin --> … <!-- NAME:end -->")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return writeReport(*in, *doc, *command, *section)
	case "topic":
		queues := fs.Int("queues", 8, "queues")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return createTopic(ctx, *namesrv, *topic, *queues)
	case "produce":
		return produceCmd(ctx, fs, args[1:], namesrv, topic, jsonOut, out)
	case "delay", "txn", "filter":
		return featureCmd(ctx, args[0], fs, args[1:], namesrv, topic, jsonOut, out)
	case "consume":
		client := fs.String("client", "native", "native or official")
		expect := fs.Int64("expect", 0, "messages to wait for (official client)")
		batch := fs.Int("pull-batch", 32, "messages per pull (native)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var r Result
		var err error
		switch *client {
		case "native":
			r, err = ConsumeNative(ctx, *namesrv, *topic, *batch)
		case "official":
			cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			r, err = ConsumeOfficial(cctx, *namesrv, *topic, *expect)
		default:
			return fmt.Errorf("unknown client %q", *client)
		}
		if err != nil {
			return err
		}
		return report(out, *jsonOut, Report{Command: "consume", Client: *client, Result: r})
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func produceCmd(ctx context.Context, fs *flag.FlagSet, args []string, namesrv, topic *string, jsonOut *bool, out io.Writer) error {
	client := fs.String("client", "native", "native, official or nats")
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS URL (client nats)")
	replicas := fs.Int("replicas", 1, "JetStream stream replicas (client nats)")
	watch := fs.String("watch-pid", "", "comma-separated server pids to sample for RSS and CPU")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's CPU profile here")
	var o Options
	fs.IntVar(&o.Size, "size", 1024, "message bytes")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "discarded warm-up time")
	fs.IntVar(&o.Window, "window", 256, "messages in flight in all (closed loop)")
	fs.IntVar(&o.Conns, "conns", 4, "connections (native), producers (official, nats)")
	fs.IntVar(&o.Rate, "rate", 0, "messages per second (open loop); 0 means closed loop")
	fs.IntVar(&o.Batch, "batch", 1, "messages per request (native)")
	fs.DurationVar(&o.Timeline, "timeline", 0, "print acknowledgements and worst latency per slice of this length (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var senders []Sender
	var err error
	switch *client {
	case "native":
		senders, err = NewNativeSenders(ctx, *namesrv, *topic, o.Conns)
	case "official":
		senders, err = NewOfficialSenders(*namesrv, *topic, o.Conns)
	case "nats":
		senders, err = NewNATSSenders(ctx, *natsURL, "BENCH", *topic, *replicas, o.Conns, o.Window)
	default:
		return fmt.Errorf("unknown client %q", *client)
	}
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range senders {
			_ = s.Close()
		}
	}()
	if term.IsTerminal(int(os.Stderr.Fd())) && !*jsonOut {
		bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(*client+" produce"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("msgs"), progressbar.OptionThrottle(200*time.Millisecond))
		o.Progress = func(n int64) { _ = bar.Add64(n) }
		defer func() { _ = bar.Finish(); fmt.Fprintln(os.Stderr) }()
	}
	var w *ProcWatch
	if *watch != "" {
		var pids []int
		for _, p := range strings.Split(*watch, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return fmt.Errorf("-watch-pid %q: %w", *watch, err)
			}
			pids = append(pids, pid)
		}
		w = WatchProcs(pids)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	self0 := cpuSeconds([]int{os.Getpid()})
	r, err := Produce(ctx, senders, o)
	if err != nil {
		return err
	}
	rep := Report{Command: "produce", Client: *client, Size: o.Size, Window: o.Window, Conns: o.Conns, Rate: o.Rate, Batch: max(o.Batch, 1), Result: r}
	if sent := r.MsgsPerS * (o.Duration + o.Warmup).Seconds(); sent > 0 {
		rep.ClientCPUPerMillion = (cpuSeconds([]int{os.Getpid()}) - self0) / sent * 1e6
	}
	if w != nil {
		peak, cpu := w.Stop()
		rep.PeakRSSMiB = float64(peak) / (1 << 20)
		rep.ServerCPU = cpu
		// CPU covers warm-up too: count every message sent meanwhile.
		sent := r.MsgsPerS * (o.Duration + o.Warmup).Seconds()
		if sent > 0 {
			rep.CPUPerMillion = cpu / sent * 1e6
		}
	}
	if err := report(out, *jsonOut, rep); err != nil {
		return err
	}
	if !*jsonOut {
		for _, sl := range r.Timeline {
			fmt.Fprintf(out, "  +%-8v %7d acks, worst %v\n", sl.At, sl.Acks, sl.Worst)
		}
	}
	return nil
}

// labels are the -system and -tier flags of the running command.
var labels Labeled

func report(out io.Writer, jsonOut bool, r Report) error {
	if jsonOut {
		l := labels
		l.Report = r
		return json.NewEncoder(out).Encode(l)
	}
	extra := ""
	if r.PeakRSSMiB > 0 {
		extra = fmt.Sprintf(", server peak RSS %.0f MiB, %.1f server CPU-s per 10^6 msgs", r.PeakRSSMiB, r.CPUPerMillion)
	}
	if r.ClientCPUPerMillion > 0 {
		extra += fmt.Sprintf(", client %.1f CPU-s per 10^6 msgs", r.ClientCPUPerMillion)
	}
	_, err := fmt.Fprintf(out, "%s %s size=%d: %s%s\n", r.Command, r.Client, r.Size, r.Result, extra)
	return err
}

func createTopic(ctx context.Context, namesrv, topic string, queues int) error {
	a, err := admin.New(namesrv)
	if err != nil {
		return err
	}
	defer a.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		masters, err := a.MasterAddrs(ctx, "")
		if err == nil && len(masters) > 0 {
			for _, bd := range masters {
				tc := protocol.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6}
				if err := a.CreateTopic(ctx, bd.MasterAddr(), tc); err != nil {
					return err
				}
			}
			for time.Now().Before(deadline) {
				if _, err := a.Route(ctx, topic); err == nil {
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			return fmt.Errorf("topic %s not routed", topic)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no broker registered: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeReport replaces the generated results section of doc with a table of
// the runs in the results file.
func writeReport(in, doc, command, section string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	runs, err := ReadResults(f)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := WriteMarkdown(&b, runs, command, MachineDescription()); err != nil {
		return err
	}
	old, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	text := string(old)
	begin, end := "<!-- "+section+":begin -->", "<!-- "+section+":end -->"
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section", doc, begin, end)
	}
	text = text[:i+len(begin)] + "\n" + b.String() + "\n" + text[j:]
	return os.WriteFile(doc, []byte(text), 0o644)
}

// featureCmd runs the business-messaging benchmarks:
//
//	delay:  -pending timers due over -spread, lateness p50/p99
//	txn:    -workers sync sends for -duration, transactional or (-plain) not
//	filter: -messages filled once (-fill), drained with -expr (SQL92) or all
func featureCmd(ctx context.Context, cmd string, fs *flag.FlagSet, args []string, namesrv, topic *string, jsonOut *bool, out io.Writer) error {
	size := fs.Int("size", 1024, "message bytes")
	pending := fs.Int("pending", 100_000, "timers parked at once (delay)")
	lead := fs.Duration("lead", 20*time.Second, "time from the first send to the first due time (delay)")
	spreadFor := fs.Duration("spread", 60*time.Second, "the due times cover this span (delay)")
	workers := fs.Int("workers", 16, "concurrent senders (txn)")
	plain := fs.Bool("plain", false, "plain SendSync instead of transactions (txn)")
	warmup := fs.Duration("warmup", 3*time.Second, "discarded warm-up (txn)")
	duration := fs.Duration("duration", 10*time.Second, "measured time (txn)")
	n := fs.Int("messages", 200_000, "messages in the topic (filter)")
	fill := fs.Bool("fill", false, "send the messages first (filter)")
	expr := fs.String("expr", "", "SQL92 expression; empty drains everything (filter)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep := Report{Command: cmd, Size: *size}
	var err error
	switch cmd {
	case "delay":
		rep.Client, rep.Load = "native", fmt.Sprintf("%d timers due over %v", *pending, *spreadFor)
		rep.Result, err = DelayLateness(ctx, *namesrv, *topic, *pending, *lead, *spreadFor, *size)
	case "txn":
		rep.Client, rep.Load = "official", fmt.Sprintf("%d sync senders, transactional", *workers)
		if *plain {
			rep.Load = fmt.Sprintf("%d sync senders, plain", *workers)
		}
		rep.Result, err = SendSyncThroughput(ctx, *namesrv, *topic, !*plain, *workers, *size, *warmup, *duration)
	case "filter":
		rep.Client, rep.Load = "native", "pull all (scanned/s)"
		if *expr != "" {
			rep.Load = fmt.Sprintf("pull SQL92 %q (scanned/s)", *expr)
		}
		rep.Result, err = FilterPull(ctx, *namesrv, *topic, *n, *size, *expr, *fill)
	}
	if err != nil {
		return err
	}
	return report(out, *jsonOut, rep)
}
