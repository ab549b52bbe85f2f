package replica

import pb "go.etcd.io/raft/v3/raftpb"

// entryRing keeps the newest log entries as raft handed them over for
// writing, up to a byte budget, so that raft reading them back (to send to
// a follower, or as committed entries to apply) costs neither a read of
// the CommitLog nor a copy. Entries are immutable once raft made them, so
// they are shared, never copied.
type entryRing struct {
	ents  []pb.Entry // consecutive indexes
	bytes int
	max   int
}

func (r *entryRing) first() uint64 { return r.ents[0].Index }
func (r *entryRing) last() uint64  { return r.ents[len(r.ents)-1].Index }

// append adds entries just written to the log; entries at or after
// ents[0].Index replace what the ring held from there (a new leader's
// overwrite).
func (r *entryRing) append(ents []pb.Entry) {
	if len(ents) == 0 || r.max <= 0 {
		return
	}
	if len(r.ents) > 0 {
		switch {
		case ents[0].Index > r.last()+1 || ents[0].Index < r.first():
			r.reset()
		case ents[0].Index <= r.last():
			keep := ents[0].Index - r.first()
			for _, e := range r.ents[keep:] {
				r.bytes -= len(e.Data)
			}
			clear(r.ents[keep:])
			r.ents = r.ents[:keep]
		}
	}
	for _, e := range ents {
		r.ents = append(r.ents, e)
		r.bytes += len(e.Data)
	}
	r.trim()
}

func (r *entryRing) reset() {
	clear(r.ents)
	r.ents, r.bytes = r.ents[:0], 0
}

// trim drops the oldest entries beyond the budget, keeping at least one.
// It reslices rather than moving the rest down: a full ring trims on every
// append, and moving thousands of entries each time cost more than the
// append's occasional growth, which copies only the live ones.
func (r *entryRing) trim() {
	drop := 0
	for r.bytes > r.max && drop < len(r.ents)-1 {
		r.bytes -= len(r.ents[drop].Data)
		drop++
	}
	if drop == 0 {
		return
	}
	clear(r.ents[:drop])
	r.ents = r.ents[drop:]
}

// get returns the entries [lo, hi) limited to maxSize bytes (at least one),
// when the ring holds them all.
func (r *entryRing) get(lo, hi, maxSize uint64) ([]pb.Entry, bool) {
	if len(r.ents) == 0 || lo < r.first() || hi > r.last()+1 || lo >= hi {
		return nil, false
	}
	src := r.ents[lo-r.first() : hi-r.first()]
	var size uint64
	n := 0
	for n < len(src) {
		size += uint64(src[n].Size())
		if n > 0 && size > maxSize {
			break
		}
		n++
	}
	out := make([]pb.Entry, n)
	copy(out, src[:n])
	return out, true
}
