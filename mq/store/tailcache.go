package store

import "sync"

// tailCache keeps the newest CommitLog bytes in memory so pulls of fresh
// messages and the dispatcher read them without a system call. It holds
// fixed-size chunks of the global offset space; each chunk knows the lowest
// offset it holds valid bytes from. Writers copy every appended byte in;
// readers get a hit only when the whole range is cached.
type tailCache struct {
	chunkSize int64
	maxChunks int

	mu     sync.RWMutex
	chunks map[int64]*cacheChunk // by chunk number
	order  []int64               // chunk numbers, oldest first
}

type cacheChunk struct {
	from int64 // lowest valid global offset in this chunk
	to   int64 // end of valid bytes (exclusive)
	buf  []byte
}

const cacheChunkSize = 4 << 20

func newTailCache(total int64) *tailCache {
	n := int(total / cacheChunkSize)
	if n < 2 {
		return nil
	}
	return &tailCache{chunkSize: cacheChunkSize, maxChunks: n, chunks: make(map[int64]*cacheChunk)}
}

// write copies p, which lands at global offset off, into the cache.
func (c *tailCache) write(off int64, p []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(p) > 0 {
		num := off / c.chunkSize
		start := num * c.chunkSize
		ch := c.chunks[num]
		if ch == nil || off < ch.from || off > ch.to {
			ch = c.newChunkLocked(num, off)
		}
		n := copy(ch.buf[off-start:], p)
		if end := off + int64(n); end > ch.to {
			ch.to = end
		}
		off += int64(n)
		p = p[n:]
	}
}

func (c *tailCache) newChunkLocked(num, from int64) *cacheChunk {
	ch := c.chunks[num]
	if ch == nil {
		var buf []byte
		if len(c.order) >= c.maxChunks {
			old := c.order[0]
			c.order = c.order[1:]
			buf = c.chunks[old].buf
			delete(c.chunks, old)
		} else {
			buf = make([]byte, c.chunkSize)
		}
		ch = &cacheChunk{buf: buf}
		c.chunks[num] = ch
		c.order = append(c.order, num)
	}
	ch.from, ch.to = from, from
	return ch
}

// read fills p from offset off and reports whether the cache held it all.
func (c *tailCache) read(off int64, p []byte) bool {
	if c == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for len(p) > 0 {
		num := off / c.chunkSize
		base := num * c.chunkSize
		need := min(int64(len(p)), base+c.chunkSize-off)
		ch := c.chunks[num]
		if ch == nil || off < ch.from || off+need > ch.to {
			return false
		}
		copy(p, ch.buf[off-base:off-base+need])
		off += need
		p = p[need:]
	}
	return true
}

// truncate forgets everything at or after off.
func (c *tailCache) truncate(off int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for num, ch := range c.chunks {
		switch {
		case ch.from >= off:
			ch.from, ch.to = num*c.chunkSize, num*c.chunkSize // empty; reused on next write
		case ch.to > off:
			ch.to = off
		}
	}
}
