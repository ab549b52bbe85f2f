package member

import (
	"context"
	"time"

	"qianlang.io/mq/remoting"
	"qianlang.io/mq/replica"
)

// Forward relays a request that reached a follower (a send, a table
// change) to the leader and its answer back, so clients whose route is
// not yet refreshed keep working. During an election it waits for the new
// leader, up to leaderWait, then the client is told to retry; when this
// member turns out to lead, the broker serves the request itself once
// settled. It answers on c, from a goroutine of its own.
func (m *Member) Forward(c *remoting.Conn, req *remoting.Command) {
	go m.forward(c, req)
}

func (m *Member) forward(c *remoting.Conn, req *remoting.Command) {
	leader, self := m.waitLeaderAddr(leaderWait)
	if self {
		if resp := m.hooks.Serve(context.Background(), c, req); resp != nil {
			c.Respond(req, resp)
		}
		return
	}
	defer req.Release()
	if leader == "" {
		c.Respond(req, req.Errorf(remoting.ServiceNotAvailable, "service not available now: group %s is electing a leader", m.cfg.Group))
		return
	}
	fields := append(remoting.Fields(nil), req.ExtFields...)
	body := append([]byte(nil), req.Body...)
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ForwardTimeout-leaderWait)
	defer cancel()
	resp, err := m.fwd.Invoke(ctx, leader, remoting.NewRequest(req.Code, fields, body))
	if err != nil {
		c.Respond(req, req.Errorf(remoting.ServiceNotAvailable, "service not available now: forwarding to leader %s: %v", leader, err))
		return
	}
	out := req.Response(resp.Code, resp.Remark)
	out.ExtFields = resp.ExtFields
	out.Body = resp.Body
	c.Respond(req, out)
}

// waitLeaderAddr waits up to d for a leader: the client address of
// another member that leads, or self when this member leads and has
// settled. Neither: no leader in time.
func (m *Member) waitLeaderAddr(d time.Duration) (addr string, self bool) {
	deadline := time.Now().Add(d)
	for {
		s := m.n().Status()
		switch {
		case s.Role == replica.Leader && s.Settled:
			return "", true
		case s.Role != replica.Leader && s.Leader != 0:
			if addr, ok := m.tables.Members.Get(s.Leader); ok && addr != m.addr {
				return addr, false
			}
		}
		if time.Now().After(deadline) {
			return "", false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
