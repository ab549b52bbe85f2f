// Command qlload loads a running platform (started by qlstack) through its
// contract and reports what it carried. Scenario "orders": open-loop order
// journeys (pay, cancel before pay, refund after pay, never pay) at a
// fixed arrival rate, then the time until every consumer group caught up,
// the latency per endpoint, the CPU split per process, and optionally the
// invariant check.
//
//	bin/qlload orders --stack DIR --rate 100 --duration 60s [--check]
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"qianlang.io/services/loadcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := loadcmd.Run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "qlload: %v\n", err)
		os.Exit(1)
	}
}
