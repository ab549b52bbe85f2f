// Command qldemo drives a running cluster with the official RocketMQ Go
// client for `make demo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"qianlang.io/integration-tests/demo"
)

func main() {
	o := demo.Options{Out: os.Stdout}
	flag.StringVar(&o.Namesrv, "n", "127.0.0.1:9876", "NameServer address")
	flag.StringVar(&o.Topic, "t", "TopicOrderPaySuccess", "topic")
	flag.IntVar(&o.Messages, "count", 3000, "messages to send")
	flag.IntVar(&o.Queues, "queues", 8, "queues of the topic")
	flag.Parse()
	rlog.SetLogLevel("error")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "qldemo:", err)
		stop()
		os.Exit(1)
	}
}
