// Command qlbench is the load generator of the load-test harness.
//
//	qlbench topic   -n ns -t topic [-queues 8]
//	qlbench produce -client native|official|nats -n ns -t topic -size 1024 -duration 10s [-window 256] [-conns 4] [-rate 0] [-batch 1] [-watch-pid pid,...]
//	qlbench consume -client native|official -n ns -t topic [-expect n]
//	qlbench delay   -n ns -t topic [-pending 100000] [-lead 20s] [-spread 60s]
//	qlbench txn     -n ns -t topic [-workers 16] [-plain] [-duration 10s]
//	qlbench filter  -n ns -t topic [-messages 200000] [-fill] [-expr "a = 3"]
//
// Every command prints one result line; -json prints JSON instead.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"qianlang.io/integration-tests/loadgen"
)

func main() {
	// The generator shares the machine with the servers it measures:
	// collecting its garbage less often leaves them more of the CPU. The
	// same for every system measured.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := loadgen.Main(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "qlbench:", err)
		stop()
		os.Exit(1)
	}
}
