package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"

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
}

const (
	checkpointSlot = 512
	checkpointLen  = 64
)

func (c checkpoint) encode() []byte {
	b := make([]byte, checkpointLen)
	binary.BigEndian.PutUint64(b[0:], c.Seq)
	binary.BigEndian.PutUint64(b[8:], uint64(c.CommitLogFlush))
	binary.BigEndian.PutUint64(b[16:], uint64(c.Dispatched))
	binary.BigEndian.PutUint64(b[24:], uint64(c.Timestamp))
	binary.BigEndian.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
	return b
}

func decodeCheckpoint(b []byte) (checkpoint, bool) {
	if len(b) < checkpointLen || crc32.Checksum(b[:60], castagnoli) != binary.BigEndian.Uint32(b[60:]) {
		return checkpoint{}, false
	}
	c := checkpoint{
		Seq:            binary.BigEndian.Uint64(b[0:]),
		CommitLogFlush: int64(binary.BigEndian.Uint64(b[8:])),
		Dispatched:     int64(binary.BigEndian.Uint64(b[16:])),
		Timestamp:      int64(binary.BigEndian.Uint64(b[24:])),
	}
	return c, c.Seq > 0
}

type checkpointFile struct {
	f    vfs.File
	last checkpoint
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
		if off+checkpointLen > len(buf) {
			continue
		}
		if c, ok := decodeCheckpoint(buf[off:]); ok && c.Seq > best.Seq {
			best = c
		}
	}
	return &checkpointFile{f: f, last: best}, best, nil
}

// write stores c in the slot the previous record did not use and fsyncs.
func (cf *checkpointFile) write(c checkpoint) error {
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
