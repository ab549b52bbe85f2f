package namesrv

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"qianlang.io/mq/conf"
)

// Options configure a NameServer. Keys follow Apache's namesrv.conf.
type Options struct {
	ListenPort  int    `conf:"listenPort"`
	BindAddress string `conf:"bindAddress"`
	// ScanNotActiveBrokerInterval is how often expired brokers are swept.
	ScanNotActiveBrokerInterval time.Duration `conf:"scanNotActiveBrokerInterval,ms"`
	// BrokerExpiredTime drops a broker not heard from for this long, unless
	// the broker registered with its own heartbeatTimeoutMillis.
	BrokerExpiredTime  time.Duration `conf:"brokerChannelExpiredTime,ms"`
	OrderMessageEnable bool          `conf:"orderMessageEnable"`

	// Java keys accepted for compatibility; they tune Java's thread pools
	// and have no effect here.
	RocketmqHome                  string `conf:"rocketmqHome"`
	KVConfigPath                  string `conf:"kvConfigPath"`
	ConfigStorePath               string `conf:"configStorePath"`
	ProductEnvName                string `conf:"productEnvName"`
	ClusterTest                   bool   `conf:"clusterTest"`
	ServerWorkerThreads           int    `conf:"serverWorkerThreads"`
	ServerCallbackExecutorThreads int    `conf:"serverCallbackExecutorThreads"`
	ServerSelectorThreads         int    `conf:"serverSelectorThreads"`
	ServerChannelMaxIdleTime      int    `conf:"serverChannelMaxIdleTimeSeconds"`
	DefaultThreadPoolNums         int    `conf:"defaultThreadPoolNums"`

	Logger *slog.Logger `conf:"-"`
}

// DefaultOptions returns the defaults: port 9876, a sweep every 10 s and
// expiry after 120 s of silence.
func DefaultOptions() Options {
	return Options{
		ListenPort:                  9876,
		BindAddress:                 "0.0.0.0",
		ScanNotActiveBrokerInterval: 10 * time.Second,
		BrokerExpiredTime:           120 * time.Second,
	}
}

// LoadOptions reads a namesrv.conf over the defaults.
func LoadOptions(path string) (Options, error) {
	o := DefaultOptions()
	if path == "" {
		return o, nil
	}
	p, err := conf.Load(path)
	if err != nil {
		return o, err
	}
	if err := conf.Bind(p, &o); err != nil {
		return o, err
	}
	return o, nil
}

// Validate names the first bad option.
func (o *Options) Validate() error {
	var errs []error
	if o.ListenPort < 0 || o.ListenPort > 65535 {
		errs = append(errs, fmt.Errorf("namesrv: listenPort=%d: want 0..65535", o.ListenPort))
	}
	if net.ParseIP(o.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("namesrv: bindAddress=%q: want an IP address", o.BindAddress))
	}
	if o.ScanNotActiveBrokerInterval <= 0 {
		errs = append(errs, fmt.Errorf("namesrv: scanNotActiveBrokerInterval=%d: want a positive number of ms", o.ScanNotActiveBrokerInterval.Milliseconds()))
	}
	if o.BrokerExpiredTime <= 0 {
		errs = append(errs, fmt.Errorf("namesrv: brokerChannelExpiredTime=%d: want a positive number of ms", o.BrokerExpiredTime.Milliseconds()))
	}
	return errors.Join(errs...)
}

// Addr is the address to listen on.
func (o *Options) Addr() string {
	return net.JoinHostPort(o.BindAddress, strconv.Itoa(o.ListenPort))
}
