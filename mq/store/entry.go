package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Entry framing in the CommitLog; see doc.go.
const (
	entryHeaderSize = 32
	entryMagic      = 0x514C4531 // "QLE1"
	blankMagic      = 0x514C4530 // "QLE0": rest of the segment is unused
	blankSize       = 8
)

// Offsets of the entry header's fields (big-endian); a blank marker has
// its size and magic at the same offsets.
const (
	entryOffSize  = 0  // uint32: the whole entry, header included
	entryOffMagic = 4  // uint32: entryMagic, or blankMagic
	entryOffCRC   = 8  // uint32: CRC-32C of [entryOffType, size)
	entryOffType  = 12 // uint8: EntryType; 3 reserved zero bytes follow
	entryOffTerm  = 16 // uint64
	entryOffIndex = 24 // uint64
)

// entryTypeOf, entryTermOf and entryIndexOf read a field of the entry
// header at the start of e.
func entryTypeOf(e []byte) EntryType { return EntryType(e[entryOffType]) }
func entryTermOf(e []byte) uint64    { return binary.BigEndian.Uint64(e[entryOffTerm:]) }
func entryIndexOf(e []byte) uint64   { return binary.BigEndian.Uint64(e[entryOffIndex:]) }

// EntryType says what an entry's payload holds.
type EntryType uint8

const (
	// EntryMessages holds concatenated stored-message records.
	EntryMessages EntryType = 1
	// EntryNoop holds nothing (a Raft leader's first entry).
	EntryNoop EntryType = 2
	// EntryConfig holds replication metadata (Raft configuration changes).
	EntryConfig EntryType = 3
	// EntryMeta holds replicated broker metadata.
	EntryMeta EntryType = 4
	// EntryConfigV2 holds a Raft joint-consensus configuration change.
	EntryConfigV2 EntryType = 5
)

// ErrCorrupt is wrapped by every error about damaged store data.
var ErrCorrupt = errors.New("store: corrupt data")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EntryHeader is the fixed part of a CommitLog entry.
type EntryHeader struct {
	Size  uint32 // header + payload
	Type  EntryType
	Term  uint64
	Index uint64
}

// appendEntryHeader reserves and fills the header of an entry whose payload
// follows at dst[start+entryHeaderSize:]; call sealEntry once the payload is
// appended.
func appendEntryHeader(dst []byte, typ EntryType, term, index uint64) []byte {
	var h [entryHeaderSize]byte
	binary.BigEndian.PutUint32(h[entryOffMagic:], entryMagic)
	h[entryOffType] = byte(typ)
	binary.BigEndian.PutUint64(h[entryOffTerm:], term)
	binary.BigEndian.PutUint64(h[entryOffIndex:], index)
	return append(dst, h[:]...)
}

// sealEntry writes the size and checksum of the entry that starts at
// entry[0] and spans all of entry.
func sealEntry(entry []byte) {
	binary.BigEndian.PutUint32(entry[entryOffSize:], uint32(len(entry)))
	binary.BigEndian.PutUint32(entry[entryOffCRC:], crc32.Checksum(entry[entryOffType:], castagnoli))
}

// AppendEntry appends a whole entry with the given payload to dst.
func AppendEntry(dst []byte, typ EntryType, term, index uint64, payload []byte) []byte {
	start := len(dst)
	dst = appendEntryHeader(dst, typ, term, index)
	dst = append(dst, payload...)
	sealEntry(dst[start:])
	return dst
}

// entryState classifies the bytes at a position of a segment.
type entryState int

const (
	entryValid entryState = iota
	entryBlank            // end-of-segment marker
	entryEnd              // zeros: no more data in this segment
	entryTorn             // damaged or incomplete
)

// peekEntry classifies the entry whose first bytes are hdr (at least
// blankSize of them, or all that remain) when remaining bytes are left in
// its segment. For entryValid it returns the entry size, which must still
// be checked with checkEntry.
func peekEntry(hdr []byte, remaining int) (int, entryState, error) {
	if remaining < blankSize {
		if allZero(hdr[:min(len(hdr), remaining)]) {
			return 0, entryEnd, nil
		}
		return 0, entryTorn, fmt.Errorf("%w: %d stray bytes at segment end", ErrCorrupt, remaining)
	}
	size := int(binary.BigEndian.Uint32(hdr[entryOffSize:]))
	magic := binary.BigEndian.Uint32(hdr[entryOffMagic:])
	switch {
	case size == 0 && magic == 0:
		return 0, entryEnd, nil
	case magic == blankMagic:
		if size != remaining {
			return 0, entryTorn, fmt.Errorf("%w: blank marker of %d bytes where %d remain", ErrCorrupt, size, remaining)
		}
		return size, entryBlank, nil
	case magic != entryMagic:
		return 0, entryTorn, fmt.Errorf("%w: bad entry magic %#x", ErrCorrupt, magic)
	case size < entryHeaderSize || size > remaining:
		return 0, entryTorn, fmt.Errorf("%w: entry size %d with %d bytes left", ErrCorrupt, size, remaining)
	}
	return size, entryValid, nil
}

// checkEntry verifies the checksum of the whole entry b and decodes its
// header.
func checkEntry(b []byte) (EntryHeader, error) {
	var h EntryHeader
	if len(b) < entryHeaderSize || int(binary.BigEndian.Uint32(b[entryOffSize:])) != len(b) || binary.BigEndian.Uint32(b[entryOffMagic:]) != entryMagic {
		return h, fmt.Errorf("%w: not a whole entry", ErrCorrupt)
	}
	if got, want := crc32.Checksum(b[entryOffType:], castagnoli), binary.BigEndian.Uint32(b[entryOffCRC:]); got != want {
		return h, fmt.Errorf("%w: entry checksum %#x, want %#x", ErrCorrupt, got, want)
	}
	h.Size = uint32(len(b))
	h.Type = entryTypeOf(b)
	h.Term = entryTermOf(b)
	h.Index = entryIndexOf(b)
	return h, nil
}

// DecodeEntry decodes the entry at the start of b for callers outside the
// segment scan (replication, tests): it returns the header and the payload.
func DecodeEntry(b []byte) (EntryHeader, []byte, error) {
	if len(b) < blankSize {
		return EntryHeader{}, nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	size, st, err := peekEntry(b, len(b))
	if st != entryValid {
		if err == nil {
			err = fmt.Errorf("%w: no entry", ErrCorrupt)
		}
		return EntryHeader{}, nil, err
	}
	h, err := checkEntry(b[:size])
	if err != nil {
		return h, nil, err
	}
	return h, b[entryHeaderSize:size], nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func blankMarker(size int) []byte {
	var b [blankSize]byte
	binary.BigEndian.PutUint32(b[entryOffSize:], uint32(size))
	binary.BigEndian.PutUint32(b[entryOffMagic:], blankMagic)
	return b[:]
}
