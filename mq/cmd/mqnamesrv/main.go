// Command mqnamesrv runs a NameServer.
//
//	mqnamesrv [-c namesrv.conf] [-p port]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"qianlang.io/mq/namesrv"
)

func main() { os.Exit(run()) }

func run() int {
	confPath := flag.String("c", "", "namesrv.conf in Apache's properties format")
	port := flag.Int("p", -1, "listen port (overrides listenPort)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts, err := namesrv.LoadOptions(*confPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqnamesrv:", err)
		return 2
	}
	if *port >= 0 {
		opts.ListenPort = *port
	}
	opts.Logger = log
	s, err := namesrv.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqnamesrv:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := s.Start(); err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	fmt.Printf("The Name Server boot success. serializeType=JSON, address %s\n", s.Addr())
	<-ctx.Done()
	_ = s.Close()
	return 0
}
