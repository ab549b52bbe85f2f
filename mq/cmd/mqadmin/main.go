// Command mqadmin is the administration tool, with Apache RocketMQ's
// subcommand names and flags, for example:
//
//	mqadmin clusterList         -n ip:port
//	mqadmin updateTopic         -n ip:port -t topic (-b brokerAddr | -c cluster) [-r 8] [-w 8] [-p 6] [-o false]
//	mqadmin consumerProgress    -n ip:port [-g group] [-t topic]
//	mqadmin queryMsgByKey       -n ip:port -t topic -k key [-b begin] [-e end]
//	mqadmin resetOffsetByTime   -n ip:port -g group -t topic -s time [-f=false]
//	mqadmin dlqResend           -n ip:port -g group [-i msgId]
//
// "mqadmin help" lists them all. Output is an aligned table; -o json
// prints JSON. -ak/-sk sign requests for a broker with ACL on. Errors go
// to stderr with exit status 1. The implementation is in package
// qianlang.io/mq/admin/cli.
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
