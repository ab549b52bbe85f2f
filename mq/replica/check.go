package replica

import (
	"bytes"
	"fmt"

	"qianlang.io/mq/store"
)

// CheckLogs compares the CommitLogs of a group's stores byte for byte, from
// the highest first offset among them to the end of the lowest commit
// index. Replicas write every entry at the same offset with the same
// bytes, so any difference is a bug (or damage). It returns the index
// compared up to.
func CheckLogs(stores ...*store.Store) (uint64, error) {
	if len(stores) < 2 {
		return 0, nil
	}
	upTo := stores[0].AppliedIndex()
	var from int64
	for _, s := range stores {
		upTo = min(upTo, s.AppliedIndex())
		from = max(from, s.LogMin())
	}
	if upTo == 0 {
		return 0, nil
	}
	end, err := stores[0].LogEnd(upTo)
	if err != nil {
		return 0, fmt.Errorf("replica: check: replica 0: %w", err)
	}
	for i, s := range stores[1:] {
		e, err := s.LogEnd(upTo)
		if err != nil {
			return 0, fmt.Errorf("replica: check: replica %d: %w", i+1, err)
		}
		if e != end {
			return 0, fmt.Errorf("replica: check: entry %d ends at offset %d on replica 0 but %d on replica %d", upTo, end, e, i+1)
		}
	}
	const chunk = 1 << 20
	want := make([]byte, chunk)
	got := make([]byte, chunk)
	for off := from; off < end; off += chunk {
		n := min(chunk, end-off)
		if err := stores[0].ReadLog(want[:n], off); err != nil {
			return 0, fmt.Errorf("replica: check: read replica 0 at %d: %w", off, err)
		}
		for i, s := range stores[1:] {
			if err := s.ReadLog(got[:n], off); err != nil {
				return 0, fmt.Errorf("replica: check: read replica %d at %d: %w", i+1, off, err)
			}
			if !bytes.Equal(want[:n], got[:n]) {
				k := 0
				for want[k] == got[k] {
					k++
				}
				at := off + int64(k)
				return 0, fmt.Errorf("replica: check: replicas 0 and %d differ at commit log offset %d: %s on replica 0, %s on replica %d",
					i+1, at, describe(stores[0], at, upTo), describe(s, at, upTo), i+1)
			}
		}
	}
	return upTo, nil
}

// describe names the entry that holds CommitLog offset off.
func describe(s *store.Store, off int64, upTo uint64) string {
	lo, hi := s.FirstIndex(), upTo
	for lo < hi {
		mid := lo + (hi-lo)/2
		end, err := s.LogEnd(mid)
		if err != nil {
			return err.Error()
		}
		if end <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	t, _ := s.Term(lo)
	end, _ := s.LogEnd(lo)
	return fmt.Sprintf("entry %d (term %d, ends at %d)", lo, t, end)
}
