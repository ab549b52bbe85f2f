// Command mqadmin is the administration tool, with Apache RocketMQ's
// subcommand names and flags:
//
//	mqadmin clusterList      -n ip:port
//	mqadmin topicList        -n ip:port [-c cluster]
//	mqadmin updateTopic      -n ip:port -t topic (-b brokerAddr | -c cluster) [-r 8] [-w 8] [-p 6] [-o false]
//	mqadmin topicStatus      -n ip:port -t topic
//	mqadmin consumerProgress -n ip:port [-g group] [-t topic]
//
// Output is an aligned table; add -json for JSON. The implementation is in
// package qianlang.io/mq/admin/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"qianlang.io/mq/admin/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mqadmin:", err)
		stop()
		os.Exit(1)
	}
}
