// Package loadcmd is qlload: scenarios that load a platform started by
// qlstack through its contract and report what it carried.
package loadcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"qianlang.io/services/invariant"
	"qianlang.io/services/lag"
	"qianlang.io/services/procstat"
	"qianlang.io/services/stack"
	"qianlang.io/services/traffic"
)

// Options of the orders scenario.
type Options struct {
	Stack    string
	Rate     float64
	Duration time.Duration
	Users    int
	SKUs     int
	Mix      traffic.Mix
	Check    bool
	JSON     string
	CatchUp  time.Duration
}

func (o *Options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.Stack, "stack", "", "the --dir of a running qlstack (required)")
	fs.Float64Var(&o.Rate, "rate", 50, "order journeys started per second (open loop)")
	fs.DurationVar(&o.Duration, "duration", 60*time.Second, "how long journeys are started")
	fs.IntVar(&o.Users, "users", 500, "distinct users")
	fs.IntVar(&o.SKUs, "skus", 50, "distinct SKUs")
	fs.Float64Var(&o.Mix.Pay, "pay", traffic.DefaultMix.Pay, "share of journeys that order and pay")
	fs.Float64Var(&o.Mix.CancelBeforePay, "cancel", traffic.DefaultMix.CancelBeforePay, "share that cancel before paying")
	fs.Float64Var(&o.Mix.RefundAfterPay, "refund", traffic.DefaultMix.RefundAfterPay, "share that pay and then cancel (a refund)")
	fs.Float64Var(&o.Mix.NeverPay, "never", traffic.DefaultMix.NeverPay, "share that never pay (closed by the timer)")
	fs.BoolVar(&o.Check, "check", false, "after catching up, check the contract's invariants 1-6")
	fs.StringVar(&o.JSON, "json", "", "also write the report as JSON to this file")
	fs.DurationVar(&o.CatchUp, "catch-up", 2*time.Minute, "longest wait for the consumer groups to catch up")
}

func (o *Options) validate() error {
	switch {
	case o.Stack == "":
		return errors.New("--stack: required (the --dir of a running qlstack)")
	case o.Rate <= 0:
		return fmt.Errorf("--rate %v: must be positive", o.Rate)
	case o.Duration <= 0:
		return fmt.Errorf("--duration %v: must be positive", o.Duration)
	case o.Users <= 0 || o.SKUs <= 0:
		return fmt.Errorf("--users %d / --skus %d: must be positive", o.Users, o.SKUs)
	case o.Mix.Pay < 0 || o.Mix.CancelBeforePay < 0 || o.Mix.RefundAfterPay < 0 || o.Mix.NeverPay < 0:
		return errors.New("--pay, --cancel, --refund, --never: shares must not be negative")
	case o.Mix == (traffic.Mix{}):
		return errors.New("--pay, --cancel, --refund, --never: at least one share must be positive")
	}
	return nil
}

// Report is what a run printed.
type Report struct {
	Rate        float64                       `json:"rate"`
	Duration    string                        `json:"duration"`
	Started     int64                         `json:"journeys"`
	Dropped     int64                         `json:"dropped"`
	Orders      int64                         `json:"orders"`
	Errors      int64                         `json:"errors"`
	Latency     map[string]map[string]float64 `json:"latency_ms"` // endpoint → p50/p99/max
	CatchUpMs   int64                         `json:"catch_up_ms"`
	CPUSeconds  map[string]float64            `json:"cpu_seconds"`
	Invariants  string                        `json:"invariants,omitempty"`
	InvariantOK *bool                         `json:"invariants_ok,omitempty"`
}

// Run runs qlload with args (scenario first).
func Run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "orders" {
		return errors.New("usage: qlload orders --stack DIR [--rate N] [--duration D] [--check] (scenarios: orders)")
	}
	fs := flag.NewFlagSet("qlload orders", flag.ContinueOnError)
	var o Options
	o.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	info, err := stack.ReadInfo(o.Stack)
	if err != nil {
		return fmt.Errorf("--stack %q: %w", o.Stack, err)
	}
	rep, err := orders(ctx, o, info)
	if err != nil {
		return err
	}
	print(out, rep)
	if o.JSON != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.JSON, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if rep.InvariantOK != nil && !*rep.InvariantOK {
		return errors.New("an invariant failed")
	}
	return nil
}

func group(name string) string {
	switch {
	case strings.HasPrefix(name, "broker-"):
		return "brokers"
	case strings.HasPrefix(name, "namesrv-"):
		return "namesrvs"
	}
	return name
}

func orders(ctx context.Context, o Options, info stack.Info) (*Report, error) {
	procs := map[string]int{"qlload": os.Getpid()}
	for n, p := range info.Processes {
		procs[n] = p
	}
	before := procstat.Take(procs)
	res, err := traffic.Run(ctx, traffic.Options{Gateway: info.Gateway, Provider: info.Provider, AdminToken: info.AdminToken,
		Rate: o.Rate, Duration: o.Duration, Users: o.Users, SKUs: o.SKUs, Mix: o.Mix})
	if err != nil {
		return nil, err
	}
	catch, err := lag.WaitZero(ctx, info.Namesrv, o.CatchUp)
	if err != nil {
		return nil, err
	}
	rep := &Report{Rate: o.Rate, Duration: o.Duration.String(), Started: res.Started, Dropped: res.Dropped, Orders: res.Orders,
		Errors: res.Errors, Latency: map[string]map[string]float64{}, CatchUpMs: catch.Milliseconds(),
		CPUSeconds: procstat.Take(procs).Since(before, group)}
	for ep, h := range res.Latencies {
		rep.Latency[ep] = map[string]float64{"p50": ms(res.Percentile(ep, 50)), "p99": ms(res.Percentile(ep, 99)),
			"max": float64(h.Max()) / 1000}
	}
	if o.Check {
		c := invariant.NewClient(info.Gateway, info.Provider, info.AdminToken)
		r, err := invariant.Check(ctx, c, res.World)
		if err != nil {
			return nil, err
		}
		ok := r.OK()
		rep.Invariants, rep.InvariantOK = r.String(), &ok
	}
	return rep, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func print(w io.Writer, r *Report) {
	fmt.Fprintf(w, "orders: %d journeys at %.0f/s for %s (dropped %d), %d orders placed, %d errors\n", r.Started, r.Rate, r.Duration, r.Dropped, r.Orders, r.Errors)
	eps := make([]string, 0, len(r.Latency))
	for ep := range r.Latency {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	for _, ep := range eps {
		l := r.Latency[ep]
		fmt.Fprintf(w, "  %-40s p50 %8.1f ms  p99 %8.1f ms  max %8.1f ms\n", ep, l["p50"], l["p99"], l["max"])
	}
	fmt.Fprintf(w, "consumer groups caught up %.1f s after the last journey ended\n", float64(r.CatchUpMs)/1000)
	names := make([]string, 0, len(r.CPUSeconds))
	var total float64
	for n, v := range r.CPUSeconds {
		names = append(names, n)
		total += v
	}
	sort.Slice(names, func(i, j int) bool { return r.CPUSeconds[names[i]] > r.CPUSeconds[names[j]] })
	fmt.Fprintf(w, "CPU seconds (total %.1f):", total)
	for _, n := range names {
		fmt.Fprintf(w, " %s %.1f", n, r.CPUSeconds[n])
	}
	fmt.Fprintln(w)
	if r.Invariants != "" {
		fmt.Fprint(w, r.Invariants)
	}
}
