package demo

import (
	"bytes"
	"context"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
)

// TestDemoRuns keeps `make demo` working: the demo program against an
// in-process cluster.
func TestDemoRuns(t *testing.T) {
	rlog.SetLogLevel("error")
	c := mqtest.Start(t, mqtest.Options{})
	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), Options{Namesrv: c.NamesrvAddrs()[0], Topic: "DemoTopic", Messages: 300, Queues: 4, Out: &out}))
	require.Contains(t, out.String(), "consumed 300 messages")
}
