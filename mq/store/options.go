package store

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"qianlang.io/mq/vfs"
)

// FlushMode says when a put is acknowledged.
type FlushMode int

const (
	// AsyncFlush acknowledges once the data is written to the page cache;
	// a background loop fsyncs every FlushInterval.
	AsyncFlush FlushMode = iota
	// SyncFlush acknowledges only after the data is fsynced. Puts that wait
	// together share one fsync (group commit).
	SyncFlush
)

func (m FlushMode) String() string {
	if m == SyncFlush {
		return "SYNC_FLUSH"
	}
	return "ASYNC_FLUSH"
}

// ParseFlushMode parses Apache's flushDiskType values.
func ParseFlushMode(s string) (FlushMode, error) {
	switch s {
	case "ASYNC_FLUSH":
		return AsyncFlush, nil
	case "SYNC_FLUSH":
		return SyncFlush, nil
	}
	return 0, fmt.Errorf("want ASYNC_FLUSH or SYNC_FLUSH")
}

// Options configure a Store.
type Options struct {
	// Dir is the store root (storePathRootDir).
	Dir string
	// CommitLogDir holds the CommitLog segments (storePathCommitLog);
	// Dir/commitlog when empty.
	CommitLogDir string
	FS           vfs.FS
	Logger       *slog.Logger

	// SegmentSize is the size of a CommitLog segment file
	// (mappedFileSizeCommitLog), 1 GiB by default.
	SegmentSize int64
	// QueueFileEntries is the number of 20-byte entries in a ConsumeQueue
	// file (300,000 by default).
	QueueFileEntries int64
	// IndexSlots and IndexEntries size an IndexFile (maxHashSlotNum,
	// maxIndexNum).
	IndexSlots   int
	IndexEntries int
	// MessageIndexEnable turns the key index on (default true).
	MessageIndexEnable bool

	Flush FlushMode
	// FlushInterval is the async flush period (flushIntervalCommitLog).
	FlushInterval time.Duration
	// SyncFlushTimeout bounds the wait for an fsync in SyncFlush mode
	// (syncFlushTimeout); a put still waiting then gets ErrFlushTimeout.
	SyncFlushTimeout time.Duration
	// TailCacheBytes is how much of the newest CommitLog data is kept in
	// memory to serve pulls and dispatch without system calls.
	TailCacheBytes int64
	// HotBytes bounds the page cache the CommitLog keeps: flushed data more
	// than HotBytes behind the end is dropped from the cache (0: never).
	// Reads of older data then come from disk.
	HotBytes int64
	// WarmSegments fills new segments with zeros ahead of use
	// (warmMapedFileEnable), which makes later fsyncs cheaper.
	WarmSegments bool
	// WarmRate caps the zero-fill of a segment prepared in the
	// background, in bytes per second (512 MiB/s by default). The fill
	// also keeps pace with the writes into the segment before it, a
	// quarter ahead: the zeros go to the same disk as the log being
	// written and should not crowd out its fsyncs.
	WarmRate int64

	// FileReservedTime is how long CommitLog segments are kept.
	FileReservedTime time.Duration
	// DeleteWhen lists the hours of the day when expired files are deleted
	// ("04" or "04;16").
	DeleteWhen []int
	// DiskMaxUsedSpaceRatio: above this used fraction of the disk, expired
	// files are deleted at once instead of at DeleteWhen.
	DiskMaxUsedSpaceRatio float64
	// DiskWarningRatio: above this used fraction, puts are refused with
	// ErrDiskFull until space returns.
	DiskWarningRatio float64
	// CleanInterval is how often retention and the disk check run.
	CleanInterval time.Duration

	// MaxMessageSize bounds one message body (maxMessageSize).
	MaxMessageSize int

	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// Replicated makes the CommitLog a consensus log: entries arrive
	// through AppendEntries and become visible through Commit; Put is
	// refused. See replicated.go.
	Replicated bool

	// OnCompletions, when set, runs after each batch of put completions
	// (the done callbacks of one write or one fsync), on the goroutine
	// that ran them: callers that queue responses in done can flush them
	// here, once per batch.
	OnCompletions func()
}

// DefaultOptions returns the defaults for a store rooted at dir.
func DefaultOptions(dir string) Options {
	return Options{
		Dir:                   dir,
		FS:                    vfs.Default,
		SegmentSize:           1 << 30,
		QueueFileEntries:      300_000,
		IndexSlots:            5_000_000,
		IndexEntries:          20_000_000,
		MessageIndexEnable:    true,
		Flush:                 AsyncFlush,
		FlushInterval:         500 * time.Millisecond,
		SyncFlushTimeout:      5 * time.Second,
		TailCacheBytes:        64 << 20,
		FileReservedTime:      72 * time.Hour,
		DeleteWhen:            []int{4},
		DiskMaxUsedSpaceRatio: 0.75,
		DiskWarningRatio:      0.90,
		CleanInterval:         10 * time.Second,
		MaxMessageSize:        4 << 20,
		WarmRate:              512 << 20,
	}
}

// Validate reports the first invalid option, naming it.
func (o *Options) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("store: "+format, args...))
		}
	}
	check(o.Dir != "", "Dir must be set")
	check(o.FS != nil, "FS must be set")
	check(o.SegmentSize >= 64<<10, "SegmentSize %d must be at least 64 KiB", o.SegmentSize)
	check(o.SegmentSize >= int64(o.MaxMessageSize)+(64<<10), "SegmentSize %d must exceed MaxMessageSize %d by 64 KiB", o.SegmentSize, o.MaxMessageSize)
	check(o.QueueFileEntries >= 16, "QueueFileEntries %d must be at least 16", o.QueueFileEntries)
	check(o.IndexSlots >= 16, "IndexSlots %d must be at least 16", o.IndexSlots)
	check(o.IndexEntries >= 16, "IndexEntries %d must be at least 16", o.IndexEntries)
	check(o.FlushInterval > 0, "FlushInterval %v must be positive", o.FlushInterval)
	check(o.SyncFlushTimeout > 0, "SyncFlushTimeout %v must be positive", o.SyncFlushTimeout)
	check(o.TailCacheBytes >= 0, "TailCacheBytes %d must not be negative", o.TailCacheBytes)
	check(o.HotBytes >= 0, "HotBytes %d must not be negative", o.HotBytes)
	check(!o.WarmSegments || o.WarmRate > 0, "WarmRate %d must be positive with WarmSegments", o.WarmRate)
	check(o.FileReservedTime > 0, "FileReservedTime %v must be positive", o.FileReservedTime)
	for _, h := range o.DeleteWhen {
		check(h >= 0 && h < 24, "DeleteWhen hour %d must be in 0..23", h)
	}
	check(o.DiskMaxUsedSpaceRatio > 0 && o.DiskMaxUsedSpaceRatio <= 1, "DiskMaxUsedSpaceRatio %v must be in (0, 1]", o.DiskMaxUsedSpaceRatio)
	check(o.DiskWarningRatio > 0 && o.DiskWarningRatio <= 1, "DiskWarningRatio %v must be in (0, 1]", o.DiskWarningRatio)
	check(o.CleanInterval > 0, "CleanInterval %v must be positive", o.CleanInterval)
	check(o.MaxMessageSize > 0, "MaxMessageSize %d must be positive", o.MaxMessageSize)
	return errors.Join(errs...)
}

func (o *Options) fill() {
	if o.CommitLogDir == "" {
		o.CommitLogDir = filepath.Join(o.Dir, "commitlog")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}
