// Package namesrv is the NameServer: the routing registry every broker
// registers with and every client asks for topic routes.
//
// Several NameServers run independently, with no state shared between
// them; each broker registers with all of them every 30 s. A NameServer
// forgets a broker when the broker unregisters, when the connection it
// registered over closes, or when it has been silent for the expiry time.
package namesrv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// Server is a NameServer.
type Server struct {
	opts   Options
	log    *slog.Logger
	routes *routes
	srv    *remoting.Server
	now    func() time.Time

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New returns a NameServer; Start makes it listen.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "namesrv"), routes: newRoutes(), now: time.Now, stop: make(chan struct{})}
	s.srv = remoting.NewServer(remoting.HandlerFunc(s.serve), remoting.ServerOptions{
		Logger: s.log,
		Conn:   remoting.ConnOptions{OnClose: s.connClosed},
	})
	return s, nil
}

// Start listens and starts the expiry sweep.
func (s *Server) Start() error {
	if err := s.srv.Listen(s.opts.Addr()); err != nil {
		return fmt.Errorf("namesrv: listen on %s: %w", s.opts.Addr(), err)
	}
	s.wg.Add(1)
	go s.sweepLoop()
	s.log.Info("name server started", "addr", s.srv.Addr().String())
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string {
	a := s.srv.Addr()
	if a == nil {
		return ""
	}
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Close stops serving. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		_ = s.srv.Close()
		s.log.Info("name server stopped")
	})
	return nil
}

func (s *Server) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.ScanNotActiveBrokerInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for _, addr := range s.routes.expire(s.now(), s.opts.BrokerExpiredTime) {
				s.log.Warn("broker expired", "addr", addr, "after", s.opts.BrokerExpiredTime)
			}
		}
	}
}

func (s *Server) connClosed(c *remoting.Conn) {
	for _, addr := range s.routes.dropConn(c.ID()) {
		s.log.Info("broker connection closed; broker removed", "addr", addr)
	}
}

func (s *Server) serve(_ context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	switch req.Code {
	case remoting.RegisterBroker:
		return s.register(c, req)
	case remoting.UnregisterBroker:
		return s.unregister(req)
	case remoting.BrokerHeartbeat:
		return s.brokerHeartbeat(req)
	case remoting.GetRouteInfoByTopic:
		return s.route(req)
	case remoting.GetBrokerClusterInfo:
		return withBody(req, s.routes.clusterInfo())
	case remoting.GetAllTopicListFromNameServer:
		return withBody(req, protocol.TopicList{TopicList: s.routes.topicList("")})
	case remoting.GetTopicsByCluster:
		return withBody(req, protocol.TopicList{TopicList: s.routes.topicList(req.ExtFields.Str("cluster"))})
	case remoting.DeleteTopicInNamesrv:
		topic, err := req.ExtFields.Required("topic")
		if err != nil {
			return req.Errorf(remoting.InvalidParameter, "%v", err)
		}
		s.routes.deleteTopic(topic, req.ExtFields.Str("clusterName"))
		s.log.Info("topic deleted", "topic", topic)
		return req.Response(remoting.Success, "")
	case remoting.GetKVConfig:
		return req.Errorf(remoting.QueryNotFound, "No config item, Namespace: %s Key: %s", req.ExtFields.Str("namespace"), req.ExtFields.Str("key"))
	}
	return req.Errorf(remoting.RequestCodeNotSupported, " request type %d not supported", req.Code)
}

func withBody(req *remoting.Command, v any) *remoting.Command {
	resp := req.Response(remoting.Success, "")
	resp.Body = protocol.Encode(v)
	return resp
}

func (s *Server) register(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	f := req.ExtFields
	reg := registration{
		Cluster: f.Str("clusterName"), BrokerName: f.Str("brokerName"), BrokerAddr: f.Str("brokerAddr"),
		HAServerAddr: f.Str("haServerAddr"), ConnID: c.ID(),
	}
	var err error
	if reg.BrokerID, err = f.Int64("brokerId"); err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	if reg.Cluster == "" || reg.BrokerName == "" || reg.BrokerAddr == "" {
		return req.Errorf(remoting.InvalidParameter, "register needs clusterName, brokerName and brokerAddr")
	}
	if t, err := f.Int64Or("raftTerm", 0); err == nil && t > 0 {
		reg.Term = uint64(t)
	}
	if ms, _ := f.Int64Or("heartbeatTimeoutMillis", 0); ms > 0 {
		reg.Timeout = time.Duration(ms) * time.Millisecond
	}
	if len(req.Body) > 0 {
		body, err := protocol.DecodeRegisterBody(req.Body, f.Bool("compressed", false))
		if err != nil {
			return req.Errorf(remoting.SystemError, "%v", err)
		}
		reg.Topics = body.TopicConfigSerializeWrapper.TopicConfigTable
		reg.DataVersion = body.TopicConfigSerializeWrapper.DataVersion
	}
	if s.routes.register(reg, s.now()) {
		s.log.Info("broker registered", "cluster", reg.Cluster, "broker", reg.BrokerName, "id", reg.BrokerID, "addr", reg.BrokerAddr, "topics", len(reg.Topics))
	}
	resp := req.Response(remoting.Success, "")
	ha, master := s.routes.masterHA(reg.BrokerName)
	resp.ExtFields = remoting.Fields{{Key: "haServerAddr", Value: ha}, {Key: "masterAddr", Value: master}}
	return resp
}

func (s *Server) unregister(req *remoting.Command) *remoting.Command {
	name, addr := req.ExtFields.Str("brokerName"), req.ExtFields.Str("brokerAddr")
	s.routes.unregister(name, addr)
	s.log.Info("broker unregistered", "broker", name, "addr", addr)
	return req.Response(remoting.Success, "")
}

func (s *Server) brokerHeartbeat(req *remoting.Command) *remoting.Command {
	if !s.routes.heartbeat(req.ExtFields.Str("brokerAddr"), s.now()) {
		return req.Errorf(remoting.SystemError, "broker %s is not registered", req.ExtFields.Str("brokerAddr"))
	}
	return req.Response(remoting.Success, "")
}

func (s *Server) route(req *remoting.Command) *remoting.Command {
	topic := req.ExtFields.Str("topic")
	rd, ok := s.routes.route(topic)
	if !ok {
		return req.Errorf(remoting.TopicNotExist, "No topic route info in name server for the topic: %s", topic)
	}
	return withBody(req, rd)
}

// BrokerCount is the number of live broker addresses (for tests and
// metrics).
func (s *Server) BrokerCount() int {
	s.routes.mu.RLock()
	defer s.routes.mu.RUnlock()
	return len(s.routes.live)
}
