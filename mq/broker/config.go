package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"qianlang.io/mq/conf"
	"qianlang.io/mq/schedule"
	"qianlang.io/mq/store"
	"qianlang.io/mq/vfs"
)

// Config is a broker's configuration. Keys and defaults follow Apache
// RocketMQ's broker.conf (BrokerConfig, MessageStoreConfig and
// NettyServerConfig).
type Config struct {
	BrokerClusterName string `conf:"brokerClusterName"`
	BrokerName        string `conf:"brokerName"`
	BrokerID          int64  `conf:"brokerId"`
	NamesrvAddr       string `conf:"namesrvAddr"`
	ListenPort        int    `conf:"listenPort"`
	BrokerIP1         string `conf:"brokerIP1"`
	BrokerIP2         string `conf:"brokerIP2"`
	BrokerRole        string `conf:"brokerRole"`
	BrokerPermission  int    `conf:"brokerPermission"`

	StorePathRootDir         string        `conf:"storePathRootDir"`
	StorePathCommitLog       string        `conf:"storePathCommitLog"`
	FlushDiskType            string        `conf:"flushDiskType"`
	MappedFileSizeCommitLog  int64         `conf:"mappedFileSizeCommitLog"`
	MappedFileSizeCQ         int64         `conf:"mappedFileSizeConsumeQueue"`
	FlushIntervalCommitLog   time.Duration `conf:"flushIntervalCommitLog,ms"`
	SyncFlushTimeout         time.Duration `conf:"syncFlushTimeout,ms"`
	FileReservedTime         time.Duration `conf:"fileReservedTime,h"`
	DeleteWhen               string        `conf:"deleteWhen"`
	DiskMaxUsedSpaceRatio    int           `conf:"diskMaxUsedSpaceRatio"`
	DiskSpaceWarningLevel    int           `conf:"diskSpaceWarningLevelRatio"`
	CleanResourceInterval    time.Duration `conf:"cleanResourceInterval,ms"`
	MaxMessageSize           int           `conf:"maxMessageSize"`
	MessageIndexEnable       bool          `conf:"messageIndexEnable"`
	MaxHashSlotNum           int           `conf:"maxHashSlotNum"`
	MaxIndexNum              int           `conf:"maxIndexNum"`
	WarmMappedFileEnable     bool          `conf:"warmMapedFileEnable"`
	AccessMessageInMemoryMax int           `conf:"accessMessageInMemoryMaxRatio"`
	TailCacheSize            int64         `conf:"tailCacheSize"`
	PageCacheHotSize         int64         `conf:"pageCacheHotSize"`

	AutoCreateTopicEnable          bool          `conf:"autoCreateTopicEnable"`
	AutoCreateSubscriptionGroup    bool          `conf:"autoCreateSubscriptionGroup"`
	DefaultTopicQueueNums          int           `conf:"defaultTopicQueueNums"`
	RegisterNameServerPeriod       time.Duration `conf:"registerNameServerPeriod,ms"`
	RegisterBrokerTimeout          time.Duration `conf:"registerBrokerTimeoutMills,ms"`
	LongPollingEnable              bool          `conf:"longPollingEnable"`
	ShortPollingTime               time.Duration `conf:"shortPollingTimeMills,ms"`
	NotifyConsumerIdsChangedEnable bool          `conf:"notifyConsumerIdsChangedEnable"`
	ChannelExpiredTimeout          time.Duration `conf:"channelExpiredTimeout,ms"`
	FlushConsumerOffsetInterval    time.Duration `conf:"flushConsumerOffsetInterval,ms"`
	SlaveReadEnable                bool          `conf:"slaveReadEnable"`
	EnablePropertyFilter           bool          `conf:"enablePropertyFilter"`
	RejectTransactionMessage       bool          `conf:"rejectTransactionMessage"`
	MessageDelayLevel              string        `conf:"messageDelayLevel"`
	// TimerMaxDelay bounds a timer message's wait (RocketMQ 5's
	// timerMaxDelaySec); a parked message must outlive it in the store, so
	// it stays below fileReservedTime. 0 (the default) means
	// fileReservedTime less an hour.
	TimerMaxDelay            time.Duration `conf:"timerMaxDelaySec,s"`
	TransactionTimeOut       time.Duration `conf:"transactionTimeOut,ms"`
	TransactionCheckInterval time.Duration `conf:"transactionCheckInterval,ms"`
	TransactionCheckMax      int           `conf:"transactionCheckMax"`
	MetricsPort              int           `conf:"metricsPort"`
	// AclEnable turns on RocketMQ's plain ACL: every request must be
	// signed by an account of aclConfigFile (a plain_acl.yml).
	AclEnable     bool   `conf:"aclEnable"`
	AclConfigFile string `conf:"aclConfigFile"`

	// Raft broker groups, with Apache's DLedger keys: a group of members
	// that replicate one CommitLog; the leader registers as brokerId 0.
	EnableDLegerCommitLog   bool          `conf:"enableDLegerCommitLog"`
	DLegerGroup             string        `conf:"dLegerGroup"`
	DLegerPeers             string        `conf:"dLegerPeers"`
	DLegerSelfID            string        `conf:"dLegerSelfId"`
	DLegerHeartbeatInterval time.Duration `conf:"dLegerHeartbeatIntervalMs,ms"`
	DLegerElectionTimeout   time.Duration `conf:"dLegerElectionTimeoutMs,ms"`
	// PreferredLeaderID names the member (n0, n1…) that should lead
	// whenever it is up and caught up: another leader hands over to it.
	// Spreading the preferred members of several groups over the
	// machines spreads their leaders. Empty: no preference.
	PreferredLeaderID string `conf:"preferredLeaderId"`
	// DLegerShutdownDrain is how long a leader that handed over its
	// leadership at shutdown keeps serving (forwarding sends to the new
	// leader) so that clients refresh their routes first: the Go client
	// does so every 30 s.
	DLegerShutdownDrain time.Duration `conf:"dLegerShutdownDrainMs,ms"`

	// Java keys accepted for compatibility; they tune Java's thread pools,
	// JVM buffers and mmap behaviour and have no effect here.
	IgnoredKeys

	Logger *slog.Logger `conf:"-"`
	// FS is the file system of the store (vfs.Default when nil); tests
	// inject faults through it.
	FS vfs.FS `conf:"-"`
}

// IgnoredKeys are Java tuning keys a broker.conf may carry.
type IgnoredKeys struct {
	RocketmqHome                   string `conf:"rocketmqHome"`
	ServerWorkerThreads            int    `conf:"serverWorkerThreads"`
	ServerSelectorThreads          int    `conf:"serverSelectorThreads"`
	ServerCallbackExecutorThreads  int    `conf:"serverCallbackExecutorThreads"`
	SendMessageThreadPoolNums      int    `conf:"sendMessageThreadPoolNums"`
	PullMessageThreadPoolNums      int    `conf:"pullMessageThreadPoolNums"`
	UseReentrantLockWhenPutMessage bool   `conf:"useReentrantLockWhenPutMessage"`
	TransientStorePoolEnable       bool   `conf:"transientStorePoolEnable"`
	TransferMsgByHeap              bool   `conf:"transferMsgByHeap"`
	OsPageCacheBusyTimeOutMills    int    `conf:"osPageCacheBusyTimeOutMills"`
	WaitTimeMillsInSendQueue       int    `conf:"waitTimeMillsInSendQueue"`
	FlushCommitLogLeastPages       int    `conf:"flushCommitLogLeastPages"`
	FlushConsumeQueueLeastPages    int    `conf:"flushConsumeQueueLeastPages"`
	FlushIntervalConsumeQueue      int    `conf:"flushIntervalConsumeQueue"`
	TraceTopicEnable               bool   `conf:"traceTopicEnable"`
	StorePathIndex                 string `conf:"storePathIndex"`
	StorePathConsumeQueue          string `conf:"storePathConsumeQueue"`
	HaListenPort                   int    `conf:"haListenPort"`
}

// DefaultConfig returns Apache's defaults.
func DefaultConfig() Config {
	home, _ := os.UserHomeDir()
	host, _ := os.Hostname()
	return Config{
		BrokerClusterName:       "DefaultCluster",
		BrokerName:              host,
		ListenPort:              10911,
		BrokerRole:              "ASYNC_MASTER",
		BrokerPermission:        6,
		StorePathRootDir:        filepath.Join(home, "store"),
		FlushDiskType:           "ASYNC_FLUSH",
		MappedFileSizeCommitLog: 1 << 30,
		MappedFileSizeCQ:        300_000 * 20,
		// Java's default is 500 ms; 100 ms keeps each fsync small, which
		// keeps the stall it causes in the write path short (p99).
		FlushIntervalCommitLog:         100 * time.Millisecond,
		SyncFlushTimeout:               5 * time.Second,
		FileReservedTime:               72 * time.Hour,
		DeleteWhen:                     "04",
		DiskMaxUsedSpaceRatio:          75,
		DiskSpaceWarningLevel:          90,
		CleanResourceInterval:          10 * time.Second,
		MaxMessageSize:                 4 << 20,
		MessageIndexEnable:             true,
		MaxHashSlotNum:                 5_000_000,
		MaxIndexNum:                    20_000_000,
		AccessMessageInMemoryMax:       40,
		TailCacheSize:                  64 << 20,
		PageCacheHotSize:               1 << 30,
		AutoCreateTopicEnable:          true,
		AutoCreateSubscriptionGroup:    true,
		DefaultTopicQueueNums:          8,
		RegisterNameServerPeriod:       30 * time.Second,
		RegisterBrokerTimeout:          6 * time.Second,
		LongPollingEnable:              true,
		ShortPollingTime:               time.Second,
		NotifyConsumerIdsChangedEnable: true,
		ChannelExpiredTimeout:          120 * time.Second,
		FlushConsumerOffsetInterval:    5 * time.Second,
		MessageDelayLevel:              schedule.DefaultLevels,
		TransactionTimeOut:             6 * time.Second,
		TransactionCheckInterval:       30 * time.Second,
		TransactionCheckMax:            15,
		DLegerHeartbeatInterval:        100 * time.Millisecond,
		DLegerElectionTimeout:          time.Second,
		DLegerShutdownDrain:            31 * time.Second,
	}
}

// LoadConfig reads a broker.conf over the defaults.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	p, err := conf.Load(path)
	if err != nil {
		return c, err
	}
	if err := conf.Bind(p, &c); err != nil {
		return c, err
	}
	return c, nil
}

// Validate checks every option and names each bad key and value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, val any, want string) {
		errs = append(errs, fmt.Errorf("broker: %s=%v: %s", key, val, want))
	}
	if !validName(c.BrokerClusterName) {
		bad("brokerClusterName", c.BrokerClusterName, "want letters, digits, %, |, - or _")
	}
	if !validName(c.BrokerName) {
		bad("brokerName", c.BrokerName, "want letters, digits, %, |, - or _")
	}
	if c.BrokerID != 0 && !c.EnableDLegerCommitLog {
		bad("brokerId", c.BrokerID, "a single-node broker is the master, 0")
	}
	if c.EnableDLegerCommitLog {
		c.validateDLeger(bad)
	}
	for _, a := range splitAddrs(c.NamesrvAddr) {
		if _, err := netip.ParseAddrPort(a); err != nil {
			bad("namesrvAddr", c.NamesrvAddr, "want ip:port entries separated by ';'")
			break
		}
	}
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		bad("listenPort", c.ListenPort, "want 0..65535")
	}
	if c.BrokerIP1 != "" {
		if ip := net.ParseIP(c.BrokerIP1); ip == nil || ip.To4() == nil {
			bad("brokerIP1", c.BrokerIP1, "want an IPv4 address")
		}
	}
	if c.BrokerRole != "ASYNC_MASTER" && c.BrokerRole != "SYNC_MASTER" {
		bad("brokerRole", c.BrokerRole, "want ASYNC_MASTER or SYNC_MASTER")
	}
	if c.BrokerPermission&^7 != 0 {
		bad("brokerPermission", c.BrokerPermission, "want a combination of 4 (read), 2 (write), 1 (inherit)")
	}
	if c.StorePathRootDir == "" {
		bad("storePathRootDir", c.StorePathRootDir, "must be set")
	}
	if _, err := store.ParseFlushMode(c.FlushDiskType); err != nil {
		bad("flushDiskType", c.FlushDiskType, err.Error())
	}
	if c.MappedFileSizeCQ%20 != 0 || c.MappedFileSizeCQ < 20*16 {
		bad("mappedFileSizeConsumeQueue", c.MappedFileSizeCQ, "want a multiple of 20 of at least 320")
	}
	if _, err := parseDeleteWhen(c.DeleteWhen); err != nil {
		bad("deleteWhen", c.DeleteWhen, err.Error())
	}
	if c.DiskMaxUsedSpaceRatio < 10 || c.DiskMaxUsedSpaceRatio > 95 {
		bad("diskMaxUsedSpaceRatio", c.DiskMaxUsedSpaceRatio, "want a percentage in 10..95")
	}
	if c.DiskSpaceWarningLevel < 10 || c.DiskSpaceWarningLevel > 99 {
		bad("diskSpaceWarningLevelRatio", c.DiskSpaceWarningLevel, "want a percentage in 10..99")
	}
	if c.AccessMessageInMemoryMax < 0 || c.AccessMessageInMemoryMax > 100 {
		bad("accessMessageInMemoryMaxRatio", c.AccessMessageInMemoryMax, "want a percentage in 0..100")
	}
	if c.DefaultTopicQueueNums < 1 || c.DefaultTopicQueueNums > 1024 {
		bad("defaultTopicQueueNums", c.DefaultTopicQueueNums, "want 1..1024")
	}
	for key, d := range map[string]time.Duration{
		"registerNameServerPeriod": c.RegisterNameServerPeriod, "registerBrokerTimeoutMills": c.RegisterBrokerTimeout,
		"shortPollingTimeMills": c.ShortPollingTime, "channelExpiredTimeout": c.ChannelExpiredTimeout,
		"flushConsumerOffsetInterval": c.FlushConsumerOffsetInterval,
		"transactionTimeOut":          c.TransactionTimeOut,
		"transactionCheckInterval":    c.TransactionCheckInterval,
	} {
		if d <= 0 {
			bad(key, d.Milliseconds(), "want a positive number of milliseconds")
		}
	}
	if _, err := schedule.ParseLevels(c.MessageDelayLevel); err != nil {
		bad("messageDelayLevel", c.MessageDelayLevel, err.Error())
	}
	if c.TimerMaxDelay < 0 || c.TimerMaxDelay > 0 && c.TimerMaxDelay >= c.FileReservedTime {
		bad("timerMaxDelaySec", int64(c.TimerMaxDelay/time.Second), fmt.Sprintf("want 0 (fileReservedTime less an hour) or a positive number of seconds below fileReservedTime (%d h): a parked timer message must outlive its wait in the CommitLog", int64(c.FileReservedTime/time.Hour)))
	}
	if c.TransactionCheckMax < 1 {
		bad("transactionCheckMax", c.TransactionCheckMax, "want at least 1")
	}
	if c.AclEnable && c.AclConfigFile == "" {
		bad("aclConfigFile", c.AclConfigFile, "must name a plain_acl.yml when aclEnable=true")
	}
	if c.PageCacheHotSize < 0 {
		bad("pageCacheHotSize", c.PageCacheHotSize, "want bytes >= 0 (0 keeps every page cached)")
	}
	if c.MetricsPort < 0 || c.MetricsPort > 65535 {
		bad("metricsPort", c.MetricsPort, "want 0..65535 (0: off)")
	}
	if len(errs) == 0 {
		so := c.StoreOptions()
		if err := so.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("broker: store options (mappedFileSizeCommitLog, maxMessageSize, maxHashSlotNum, maxIndexNum, flushIntervalCommitLog, syncFlushTimeout, fileReservedTime, cleanResourceInterval, tailCacheSize): %w", err))
		}
	}
	return errors.Join(errs...)
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// parseDeleteWhen parses "04" or "04;16" into hours.
func parseDeleteWhen(s string) ([]int, error) {
	var hours []int
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		h, err := strconv.Atoi(p)
		if err != nil || h < 0 || h > 23 {
			return nil, fmt.Errorf("want hours 00..23 separated by ';'")
		}
		hours = append(hours, h)
	}
	return hours, nil
}

// timerMax is the longest wait a timer message may ask for.
func (c *Config) timerMax() time.Duration {
	if c.TimerMaxDelay > 0 {
		return c.TimerMaxDelay
	}
	if c.FileReservedTime > 2*time.Hour {
		return c.FileReservedTime - time.Hour
	}
	return c.FileReservedTime / 2
}

// StoreOptions maps the broker keys onto the store's options (tools that
// open a stopped broker's store use it too).
func (c *Config) StoreOptions() store.Options {
	o := store.DefaultOptions(c.StorePathRootDir)
	o.CommitLogDir = c.StorePathCommitLog
	if c.FS != nil {
		o.FS = c.FS
	}
	o.Logger = c.Logger
	o.SegmentSize = c.MappedFileSizeCommitLog
	o.QueueFileEntries = c.MappedFileSizeCQ / 20
	o.Flush, _ = store.ParseFlushMode(c.FlushDiskType)
	o.FlushInterval = c.FlushIntervalCommitLog
	o.SyncFlushTimeout = c.SyncFlushTimeout
	o.FileReservedTime = c.FileReservedTime
	o.DeleteWhen, _ = parseDeleteWhen(c.DeleteWhen)
	o.DiskMaxUsedSpaceRatio = float64(c.DiskMaxUsedSpaceRatio) / 100
	o.DiskWarningRatio = float64(c.DiskSpaceWarningLevel) / 100
	o.CleanInterval = c.CleanResourceInterval
	o.MaxMessageSize = c.MaxMessageSize
	o.MessageIndexEnable = c.MessageIndexEnable
	o.IndexSlots = c.MaxHashSlotNum
	o.IndexEntries = c.MaxIndexNum
	o.WarmSegments = c.WarmMappedFileEnable
	o.TailCacheBytes = c.TailCacheSize
	o.HotBytes = c.PageCacheHotSize
	o.Replicated = c.EnableDLegerCommitLog
	return o
}

// advertisedIP is brokerIP1, or the first non-loopback IPv4 address, or
// 127.0.0.1.
func (c *Config) advertisedIP() string {
	if c.BrokerIP1 != "" {
		return c.BrokerIP1
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}
