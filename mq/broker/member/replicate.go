package member

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"qianlang.io/mq/broker/meta"
	"qianlang.io/mq/replica"
)

func (m *Member) proposeLeader() {
	body, _ := json.Marshal(meta.Entry{Leader: &meta.Leader{ID: m.cfg.Self.ID, Addr: m.addr}})
	m.n().ProposeMeta(body, func(err error) {
		if err != nil && !errors.Is(err, replica.ErrNotLeader) {
			m.log.Warn("announcing leadership failed", "err", err)
		}
	})
}

// replicateMeta runs on the leader: it replicates the tables that changed
// since it last did; for consumer offsets only what changed, and the whole
// table after a takeover, after a failed proposal and every
// offsetsWholeEvery.
func (m *Member) replicateMeta() {
	if !m.Leads() {
		return
	}
	tables := m.tables.TableEntry()
	tv, gv := tables.Version.Topics, tables.Version.Groups
	m.mu.Lock()
	last := m.proposed
	whole := m.offsetsWhole || time.Since(m.offsetsWholeAt) >= offsetsWholeEvery
	m.mu.Unlock()
	var e meta.Entry
	if tv != last.topics || gv != last.groups {
		e = tables
	}
	m.offsetsMu.Lock()
	defer m.offsetsMu.Unlock()
	offsets := m.tables.Offsets
	ov := last.offsets
	if offsets.Version() != last.offsets {
		if whole {
			e.Offsets, ov = offsets.TakeAll()
		} else {
			e.OffsetUpdates, e.OffsetRemovals, ov = offsets.TakeChanges()
		}
	}
	if e.Offsets == nil && e.OffsetUpdates == nil && e.OffsetRemovals == nil && ov != last.offsets {
		// Nothing to say: the table changed only in ways it had
		// replicated already.
		m.mu.Lock()
		m.proposed.offsets = ov
		m.mu.Unlock()
		ov = last.offsets
	}
	if e.Topics == nil && ov == last.offsets {
		return
	}
	body, err := json.Marshal(e)
	if err != nil {
		m.log.Error("encoding replicated metadata failed", "err", err)
		return
	}
	m.n().ProposeMeta(body, func(err error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			// Tried again next round; changes taken for this entry are
			// only in the table now, so the whole table goes, even if
			// nothing changes until then.
			m.offsetsWhole = true
			m.proposed.offsets = 0
			return
		}
		if e.Topics != nil {
			m.proposed.topics, m.proposed.groups = tv, gv
		}
		if ov != last.offsets {
			m.proposed.offsets = ov
		}
		if e.Offsets != nil {
			m.offsetsWhole, m.offsetsWholeAt = false, time.Now()
		}
	})
}

// Replicate replicates a part of the tables now and waits until a
// majority holds it or ctx ends: admin changes are answered only then, so
// a new leader knows every topic an admin was told exists; an offset reset
// survives a leader change at once; a new leader grants no queue lock a
// live consumer holds.
func (m *Member) Replicate(ctx context.Context, part meta.Part) error {
	var err error
	switch part {
	case meta.TopicsAndGroups:
		err = m.replicateTables(ctx)
	case meta.ConsumerOffsets:
		err = m.replicateOffsets(ctx)
	case meta.QueueLocks:
		locks := m.tables.Locks.Owners()
		err = m.proposeWait(ctx, meta.Entry{Locks: &locks}, nil)
	default:
		err = fmt.Errorf("unknown part %d", part)
	}
	if err != nil {
		return fmt.Errorf("member: replicate %s to group %s: %w", part, m.cfg.Group, err)
	}
	return nil
}

func (m *Member) replicateTables(ctx context.Context) error {
	e := m.tables.TableEntry()
	if err := m.proposeWait(ctx, e, nil); err != nil {
		return err
	}
	m.mu.Lock()
	m.proposed.topics, m.proposed.groups = e.Version.Topics, e.Version.Groups
	m.mu.Unlock()
	return nil
}

// replicateOffsets replicates the whole offset table, proposed in turn
// with the leader's periodic changes, so none taken before this table
// lands after it.
func (m *Member) replicateOffsets(ctx context.Context) error {
	m.offsetsMu.Lock()
	offsets, _ := m.tables.Offsets.Snapshot()
	return m.proposeWait(ctx, meta.Entry{Offsets: offsets}, m.offsetsMu.Unlock)
}

// proposeWait proposes e and waits for its commit; proposed, when not
// nil, runs once e is proposed.
func (m *Member) proposeWait(ctx context.Context, e meta.Entry, proposed func()) error {
	body, err := json.Marshal(e)
	if err != nil {
		if proposed != nil {
			proposed()
		}
		return err
	}
	ch := make(chan error, 1)
	m.n().ProposeMeta(body, func(err error) { ch <- err })
	if proposed != nil {
		proposed()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applyMeta applies a committed metadata entry. A leader's own entries
// (of its term) carry tables older than its own, so it only notes them as
// held; the entries of an earlier term that commit after it took over
// (say an admin change its predecessor answered just before dying) are
// installed like on a follower, before it settles and serves (see Leads).
func (m *Member) applyMeta(index, term uint64, payload []byte) {
	<-m.ready
	var e meta.Entry
	if err := json.Unmarshal(payload, &e); err != nil {
		m.log.Error("undecodable metadata entry; skipped", "index", index, "err", err)
		return
	}
	if e.Leader != nil {
		if _, err := m.tables.Members.Put(e.Leader.ID, e.Leader.Addr); err != nil {
			m.log.Error("recording the leader's address failed", "err", err)
		}
	}
	s := m.n().Status()
	own := s.Role == replica.Leader && term == s.Term
	if err := m.install(e, index, own); err != nil {
		m.log.Error("applying replicated metadata failed", "index", index, "err", err)
	}
}

// install installs an entry's tables and registers again when the topics
// changed: the NameServers route by them.
func (m *Member) install(e meta.Entry, index uint64, own bool) error {
	topics, err := m.tables.Install(e, index, own)
	if topics {
		m.hooks.Register()
	}
	return err
}

// snapshotData is the metadata a far-behind follower gets with a snapshot.
func (m *Member) snapshotData() []byte {
	<-m.ready
	body, err := json.Marshal(m.tables.Snapshot())
	if err != nil {
		m.log.Error("encoding snapshot metadata failed", "err", err)
		return nil
	}
	return body
}

// restoreData installs the metadata of a snapshot on a follower.
func (m *Member) restoreData(b []byte) {
	<-m.ready
	var e meta.Entry
	if err := json.Unmarshal(b, &e); err != nil {
		m.log.Error("undecodable snapshot metadata; tables stay as they were", "err", err)
		return
	}
	if err := m.install(e, 0, false); err != nil {
		m.log.Error("installing snapshot metadata failed", "err", err)
	}
}
