package mqtest_test

import (
	"bytes"
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/message"
	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/remoting"
	"qianlang.io/mq/vfs"
)

// BenchmarkGroupSend measures a Raft group of three in one process: single
// 128-byte sends framed as the official Go client frames them, 512 in
// flight over 4 connections to the leader. ns/op is wall time per
// acknowledged message with everything (three members, client) sharing
// GOMAXPROCS; allocs/op counts the whole process. T2-fsync2ms gives every
// CommitLog fsync 2 ms more, as a disk whose fsync reaches the media
// (this machine's virtual disk answers in well under one).
func BenchmarkGroupSend(b *testing.B) {
	for _, tc := range []struct {
		name      string
		flush     string
		syncDelay time.Duration
	}{{"T1", "ASYNC_FLUSH", 0}, {"T2", "SYNC_FLUSH", 0}, {"T2-fsync2ms", "SYNC_FLUSH", 2 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			fs := vfs.NewErrorFS(vfs.Default)
			if tc.syncDelay > 0 {
				fs.InjectLatency(vfs.OpSync, func(p string) bool { return strings.Contains(p, "commitlog") }, tc.syncDelay)
			}
			c := mqtest.Start(b, mqtest.Options{Replicas: 3, Broker: func(_ int, cfg *broker.Config) {
				cfg.FlushDiskType = tc.flush
				cfg.MappedFileSizeCommitLog = 1 << 30
				cfg.FS = fs
			}})
			c.CreateTopic("Bench", 8)
			addr := c.Brokers[c.Leader(0)].Addr()
			benchSends(b, addr, "Bench", 128, 4, 512)
		})
	}
}

// BenchmarkSend is BenchmarkGroupSend against one standalone broker
// (ASYNC_FLUSH): the request path without replication.
func BenchmarkSend(b *testing.B) {
	c := mqtest.Start(b, mqtest.Options{Broker: func(_ int, cfg *broker.Config) {
		cfg.MappedFileSizeCommitLog = 1 << 30
	}})
	c.CreateTopic("Bench", 8)
	benchSends(b, c.Brokers[0].Addr(), "Bench", 128, 4, 512)
}

func benchSends(b *testing.B, addr, topic string, size, conns, window int) {
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), size)
	uniq := message.NewUniqIDGenerator(netip.MustParseAddr("127.0.0.1"))
	var clients []*remoting.Conn
	for range conns {
		cl := remoting.NewClient(remoting.ClientOptions{})
		b.Cleanup(func() { _ = cl.Close() })
		cn, err := cl.Conn(ctx, addr)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, cn)
	}
	slots := make(chan struct{}, window)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		slots <- struct{}{}
		t := time.Now()
		req := remoting.NewRequest(remoting.SendMessage, remoting.Fields{
			{Key: "producerGroup", Value: "bench"}, {Key: "topic", Value: topic},
			{Key: "defaultTopic", Value: "TBW102"}, {Key: "defaultTopicQueueNums", Value: "4"},
			{Key: "queueId", Value: strconv.Itoa(i % 8)}, {Key: "sysFlag", Value: "0"},
			{Key: "bornTimestamp", Value: strconv.FormatInt(t.UnixMilli(), 10)}, {Key: "flag", Value: "0"},
			{Key: "properties", Value: message.PropUniqKey + "\x01" + uniq.Next(t) + "\x02"}, {Key: "reconsumeTimes", Value: "0"},
			{Key: "unitMode", Value: "false"}, {Key: "maxReconsumeTimes", Value: "0"}, {Key: "batch", Value: "false"},
		}, body)
		wg.Add(1)
		err := clients[i%conns].InvokeAsync(req, 10*time.Second, func(resp *remoting.Command, err error) {
			if err == nil {
				err = resp.AsError()
				resp.Release() // as the load generator does
			}
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
			<-slots
			wg.Done()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
}
