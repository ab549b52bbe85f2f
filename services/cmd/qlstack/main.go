// Command qlstack starts the whole platform on loopback and supervises it.
//
//	qlstack up --dir DIR [--base-port 20000] [--groups 1|2] [--order-timeout 30m]
//	           [--seckill-order-rate 500] [--quiz-min-answer-ms 1000]
//	           [--bin-dir DIR] [--deploy-dir DIR] [--components a,b,…]
//	qlstack down --dir DIR [--timeout 3m]
//
// up prints one line "ready" once DIR/stack.json is written, and stops
// everything in order on SIGTERM or SIGINT. down stops a stack started in
// the background and waits until it is gone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"qianlang.io/services/stack"
)

func main() { os.Exit(run(os.Args[1:])) }

const usage = `usage:
  qlstack up --dir DIR [flags]    start the platform; "qlstack up -h" lists the flags
  qlstack down --dir DIR          stop a stack started in the background`

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	switch args[0] {
	case "up":
		return up(args[1:], log)
	case "down":
		return down(args[1:], log)
	case "help", "-h", "--help":
		fmt.Println(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "qlstack: unknown command %q\n%s\n", args[0], usage)
		return 2
	}
}

func up(args []string, log *slog.Logger) int {
	opts := stack.DefaultOptions()
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			opts.BinDir = filepath.Dir(exe)
		}
	}
	fs := flag.NewFlagSet("qlstack up", flag.ContinueOnError)
	opts.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "qlstack up: unexpected arguments %q\n", fs.Args())
		return 2
	}
	opts.Logger, opts.Stdout = log, os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := stack.Run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "qlstack up:", err)
		return 1
	}
	return 0
}

func down(args []string, log *slog.Logger) int {
	fs := flag.NewFlagSet("qlstack down", flag.ContinueOnError)
	dir := fs.String("dir", "", "the stack's directory (required)")
	timeout := fs.Duration("timeout", 3*time.Minute, "longest wait for the stack to stop")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "qlstack down: --dir is required")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	err := stack.Down(ctx, *dir, log)
	if errors.Is(err, stack.ErrNotRunning) {
		fmt.Fprintln(os.Stderr, "qlstack down:", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qlstack down:", err)
		return 1
	}
	return 0
}
