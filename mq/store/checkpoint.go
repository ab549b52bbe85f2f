package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"qianlang.io/mq/vfs"
)

// checkpoint records how far the store's files are known durable. It is
// written in place, alternating between two 64-byte slots at offsets 0 and
// 512, each with a sequence number and a checksum, so a torn write leaves
// the other slot intact.
type checkpoint struct {
	Seq            uint64
	CommitLogFlush int64 // CommitLog bytes below this are fsynced
	Dispatched     int64 // entries below this are in fsynced ConsumeQueues
	Timestamp      int64 // ms
	FlushIndex     uint64
	FlushTerm      uint64 // index and term of the entry ending at CommitLogFlush
	DispatchedIdx  uint64 // index of the entry ending at Dispatched
	LogStart       LogPoint
	Hard           HardState
}

// HardState is the consensus state that must survive a restart: the
// current term, the vote cast in it, and the commit index.
type HardState struct {
	Term, Vote, Commit uint64
}

const (
	checkpointSlot = 512
	checkpointLen  = 128
	checkpointV1   = 64 // length of the first format's slot
)

func (c checkpoint) encode() []byte {
	b := make([]byte, checkpointLen)
	be := binary.BigEndian
	for i, v := range []uint64{c.Seq, uint64(c.CommitLogFlush), uint64(c.Dispatched), uint64(c.Timestamp),
		c.FlushIndex, c.FlushTerm, c.DispatchedIdx, c.LogStart.Index, c.LogStart.Term, uint64(c.LogStart.Offset),
		c.Hard.Term, c.Hard.Vote, c.Hard.Commit} {
		be.PutUint64(b[8*i:], v)
	}
	be.PutUint32(b[checkpointLen-4:], crc32.Checksum(b[:checkpointLen-4], castagnoli))
	return b
}

func decodeCheckpoint(b []byte) (checkpoint, bool) {
	be := binary.BigEndian
	n := checkpointLen
	if len(b) < n || crc32.Checksum(b[:n-4], castagnoli) != be.Uint32(b[n-4:]) {
		// The first format: 64-byte slots, the four leading fields.
		n = checkpointV1
		if len(b) < n || crc32.Checksum(b[:n-4], castagnoli) != be.Uint32(b[n-4:]) {
			return checkpoint{}, false
		}
		b = append(b[:32:32], make([]byte, checkpointLen-32)...)
	}
	u := func(i int) uint64 { return be.Uint64(b[8*i:]) }
	c := checkpoint{
		Seq: u(0), CommitLogFlush: int64(u(1)), Dispatched: int64(u(2)), Timestamp: int64(u(3)),
		FlushIndex: u(4), FlushTerm: u(5), DispatchedIdx: u(6),
		LogStart: LogPoint{Index: u(7), Term: u(8), Offset: int64(u(9))},
		Hard:     HardState{Term: u(10), Vote: u(11), Commit: u(12)},
	}
	return c, c.Seq > 0
}

type checkpointFile struct {
	mu   sync.Mutex
	f    vfs.File
	last checkpoint // guarded by mu
	hard HardState  // the newest consensus state; guarded by mu
}

// openCheckpoint opens or creates the checkpoint file and returns the newest
// valid record (zero when none: a new store or both slots damaged).
func openCheckpoint(fs vfs.FS, dir string) (*checkpointFile, checkpoint, error) {
	path := filepath.Join(dir, "checkpoint")
	f, err := fs.OpenReadWrite(path)
	if errors.Is(err, os.ErrNotExist) {
		if f, err = fs.Create(path); err == nil {
			err = fs.SyncDir(dir)
		}
	}
	if err != nil {
		return nil, checkpoint{}, fmt.Errorf("store: open checkpoint: %w", err)
	}
	buf := make([]byte, checkpointSlot+checkpointLen)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	var best checkpoint
	for _, off := range []int{0, checkpointSlot} {
		if off+checkpointV1 > len(buf) {
			continue
		}
		if c, ok := decodeCheckpoint(buf[off:min(off+checkpointLen, len(buf))]); ok && c.Seq > best.Seq {
			best = c
		}
	}
	return &checkpointFile{f: f, last: best, hard: best.Hard}, best, nil
}

// update writes the last record changed by fn, in the slot the previous
// record did not use, and fsyncs.
func (cf *checkpointFile) update(fn func(*checkpoint)) error {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	c := cf.last
	fn(&c)
	c.Hard = cf.hard
	c.Seq = cf.last.Seq + 1
	off := int64(0)
	if c.Seq%2 == 0 {
		off = checkpointSlot
	}
	if _, err := cf.f.WriteAt(c.encode(), off); err != nil {
		return fmt.Errorf("store: write checkpoint: %w", err)
	}
	if err := cf.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync checkpoint: %w", err)
	}
	cf.last = c
	return nil
}

// formatVersion is the on-disk format this code writes. A store written by
// a newer format is refused.
const formatVersion = 1

const formatMagic = "qianlang-store"

// checkFormat reads the FORMAT file, creating it for a new store.
func checkFormat(fs vfs.FS, dir string) error {
	path := filepath.Join(dir, "FORMAT")
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return writeFormat(fs, dir)
	}
	if err != nil {
		return fmt.Errorf("store: open FORMAT: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, _ := f.ReadAt(buf, 0)
	var magic string
	var version int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(buf[:n])), "%s %d", &magic, &version); err != nil || magic != formatMagic {
		return fmt.Errorf("store: %s is not a store FORMAT file: %q", path, buf[:n])
	}
	if version > formatVersion {
		return fmt.Errorf("store: format version %d is newer than supported %d", version, formatVersion)
	}
	return nil
}

func writeFormat(fs vfs.FS, dir string) error {
	tmp := filepath.Join(dir, "FORMAT.tmp")
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("store: create FORMAT: %w", err)
	}
	_, err = f.WriteAt(fmt.Appendf(nil, "%s %d\n", formatMagic, formatVersion), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, filepath.Join(dir, "FORMAT"))
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("store: write FORMAT: %w", err)
	}
	return nil
}
