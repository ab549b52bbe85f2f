package acceptance

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/events"
	"qianlang.io/services/stacktest"
	"qianlang.io/services/traffic"
)

// faultRate is the open-loop journey rate of the fault test; the
// benchmark, not this test, measures what the platform carries.
func faultRate() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("QIANLANG_FAULT_RATE"), 64); err == nil && v > 0 {
		return v
	}
	return 60
}

// TestPlatformUnderFaults plays continuous traffic (pay, cancel before
// pay, refund after pay, never pay) on two broker groups while the
// provider fails half its refunds and 30 % of its SMS, ships slowly and
// notifies twice, and every service in turn, then a broker group's
// leader, is killed with SIGKILL. After the traffic stops and the faults
// are lifted, every consumer group catches up, dead letters are resent,
// every refund ends REFUNDED, and every invariant holds.
func TestPlatformUnderFaults(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{Groups: 2, OrderTimeout: 8 * time.Second, Args: []string{"--ship-after", "2s"}})
	a := newAPI(t, s)
	a.faults(map[string]any{"refund_error_rate": 0.5, "sms_error_rate": 0.3, "logistics_latency_ms": 500,
		"delivery_ms": 1000, "notify_duplicate_rate": 0.2})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		res *traffic.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := traffic.Run(ctx, traffic.Options{Gateway: s.Gateway, Provider: s.Provider, AdminToken: s.AdminToken,
			Rate: faultRate(), Duration: 75 * time.Second, Users: 100, SKUs: 10})
		done <- outcome{res, err}
	}()

	victims := []string{"order", "inventory", "points", "marketing", "push", "warehouse", "provider", leaderOf(t, s, "broker-a")}
	time.Sleep(8 * time.Second)
	for _, name := range victims {
		old := s.Pid(name)
		s.Kill(name)
		t.Logf("killed %s (pid %d)", name, old)
		s.WaitRestarted(name, old)
		time.Sleep(6 * time.Second)
	}
	out := <-done
	require.NoError(t, out.err)
	t.Logf("traffic:\n%s", out.res.Summary())
	require.Positive(t, out.res.Orders)
	a.world = out.res.World

	a.faults(map[string]any{"refund_error_rate": 0, "sms_error_rate": 0, "logistics_latency_ms": 0, "notify_duplicate_rate": 0})
	resendDeadLetters(t, s)
	waitCaughtUp(t, s, 3*time.Minute)
	checkInvariants(t, a, 3*time.Minute)
}

// mqadmin runs bin/mqadmin against the stack's NameServers.
func mqadmin(t *testing.T, s *stacktest.Stack, args ...string) []byte {
	t.Helper()
	out, err := tryMqadmin(s, args...)
	require.NoError(t, err, "mqadmin %v: %s", args, out)
	return out
}

func tryMqadmin(s *stacktest.Stack, args ...string) ([]byte, error) {
	args = append(args, "-n", strings.Join(s.Namesrv, ";"), "-o", "json")
	return exec.Command(filepath.Join(s.BinDir, "mqadmin"), args...).CombinedOutput()
}

// leaderOf names the broker process that leads group.
func leaderOf(t *testing.T, s *stacktest.Stack, group string) string {
	t.Helper()
	var rows []struct {
		BrokerName string `json:"brokerName"`
		BrokerID   int64  `json:"brokerId"`
		Addr       string `json:"addr"`
	}
	require.NoError(t, json.Unmarshal(mqadmin(t, s, "clusterList"), &rows))
	for _, r := range rows {
		if r.BrokerName == group && r.BrokerID == 0 {
			for name, addr := range s.Brokers {
				if addr == r.Addr {
					return name
				}
			}
		}
	}
	t.Fatalf("no leader of %s in %+v", group, rows)
	return ""
}

var platformGroups = events.Groups

// resendDeadLetters sends every platform group's dead letters back to it.
func resendDeadLetters(t *testing.T, s *stacktest.Stack) {
	t.Helper()
	for _, g := range platformGroups {
		out, err := tryMqadmin(s, "dlqList", "-g", g)
		if err != nil && strings.Contains(string(out), "No topic route info") {
			continue // the group never dead-lettered anything: no %DLQ% topic
		}
		require.NoError(t, err, "dlqList %s: %s", g, out)
		if strings.Contains(string(out), "msgId") || strings.Contains(string(out), "MsgId") {
			t.Logf("dead letters of %s: %s", g, out)
			mqadmin(t, s, "dlqResend", "-g", g)
		}
	}
}

// waitCaughtUp waits until no platform consumer group has messages left
// to consume.
func waitCaughtUp(t *testing.T, s *stacktest.Stack, within time.Duration) {
	t.Helper()
	eventually(t, within, func() bool {
		var rows []struct {
			Group     string `json:"group"`
			DiffTotal int64  `json:"diffTotal"`
		}
		require.NoError(t, json.Unmarshal(mqadmin(t, s, "consumerProgress"), &rows))
		for _, r := range rows {
			for _, g := range platformGroups {
				if r.Group == g && r.DiffTotal > 0 {
					return false
				}
			}
		}
		return true
	}, "consumer groups did not catch up")
}
