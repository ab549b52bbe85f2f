// Command mqbroker runs a broker.
//
//	mqbroker -c broker.conf [-n "ip:port;ip:port"]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"qianlang.io/mq/broker"
)

func main() { os.Exit(run()) }

// gcPercent is the broker's GOGC unless the environment sets one. Most of
// a broker's live heap is its long-lived caches (the 64 MiB tail cache, a
// group member's 32 MiB ring of recent entries); Go's default of 100 lets
// the heap grow by as much again before collecting, and every fresh page
// costs a fault. At 50 a group of three on one machine used 180–190 MiB
// less memory with the same throughput and CPU (docs/benchmarks.md).
const gcPercent = 50

func run() int {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	confPath := flag.String("c", "", "broker.conf in Apache's properties format (required)")
	namesrv := flag.String("n", "", "NameServer addresses, ';'-separated (overrides namesrvAddr)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (for profiling)")
	flag.Parse()
	if *confPath == "" {
		fmt.Fprintln(os.Stderr, "mqbroker: -c broker.conf is required")
		flag.Usage()
		return 2
	}
	cfg, err := broker.LoadConfig(*confPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 2
	}
	if *namesrv != "" {
		cfg.NamesrvAddr = *namesrv
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.Logger = log
	if *pprofAddr != "" {
		go func() { log.Error("pprof server stopped", "err", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	b, err := broker.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbroker:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := b.Start(); err != nil {
		log.Error("start failed", "err", err)
		_ = b.Close()
		return 1
	}
	fmt.Printf("The broker[%s, %s] boot success. serializeType=JSON and name server is %s\n", cfg.BrokerName, b.Addr(), cfg.NamesrvAddr)
	<-ctx.Done()
	stop() // a second signal ends the process at once (a leader may drain for dLegerShutdownDrainMs)
	if err := b.Close(); err != nil {
		log.Error("shutdown finished with errors", "err", err)
		return 1
	}
	return 0
}
