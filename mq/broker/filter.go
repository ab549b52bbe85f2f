package broker

import (
	"fmt"
	"sync"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/sql92"
	"qianlang.io/mq/store"
)

// tagFilter matches messages by tag. The ConsumeQueue's tags code is only a
// first cut: codes are computed here from the subscription's tag strings
// with the same Java hash the store uses, and a candidate is confirmed by
// comparing its TAGS property as a string, so hash collisions and the Go
// client's different hashing of non-ASCII tags never skip or pass a message
// wrongly.
type tagFilter struct {
	tags  map[string]bool
	codes map[int64]bool
}

// newTagFilter builds a filter from a TAG expression; nil means "all".
func newTagFilter(expr string) *tagFilter {
	tags := protocol.ParseTags(expr)
	if len(tags) == 0 {
		return nil
	}
	f := &tagFilter{tags: make(map[string]bool, len(tags)), codes: make(map[int64]bool, len(tags))}
	for _, t := range tags {
		f.tags[t] = true
		f.codes[message.TagsCode(t)] = true
	}
	return f
}

func (f *tagFilter) MatchTagsCode(code int64) bool { return f.codes[code] }
func (f *tagFilter) NeedsMessage() bool            { return true }
func (f *tagFilter) MatchMessage(props string) bool {
	tag, _ := message.Property(props, message.PropTags)
	return f.tags[tag]
}

// sqlFilter matches messages by a SQL92 expression over their properties
// (enablePropertyFilter). The tags code says nothing about them, so every
// candidate is read.
type sqlFilter struct{ expr *sql92.Expr }

func (f sqlFilter) MatchTagsCode(int64) bool { return true }
func (f sqlFilter) NeedsMessage() bool       { return true }
func (f sqlFilter) MatchMessage(props string) bool {
	return f.expr.Match(func(k string) (string, bool) { return message.Property(props, k) })
}

// sqlCache holds compiled expressions: every pull of a SQL92 subscriber
// would otherwise compile its expression again.
type sqlCache struct {
	mu    sync.Mutex
	exprs map[string]*sql92.Expr
}

func (c *sqlCache) compile(src string) (*sql92.Expr, error) {
	c.mu.Lock()
	e, ok := c.exprs[src]
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	e, err := sql92.Compile(src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.exprs == nil || len(c.exprs) >= 4096 {
		c.exprs = make(map[string]*sql92.Expr)
	}
	c.exprs[src] = e
	c.mu.Unlock()
	return e, nil
}

// subscriptionFilter resolves the filter of a pull: the request's own
// subscription when it carries one, otherwise the group's heartbeat
// subscription, otherwise everything (the client filters tags itself, and
// refusing would stall a consumer that pulls before its first heartbeat
// lands). Push consumers send expressionType TAG even for SQL92
// subscriptions, so those are found through the heartbeat. A nil filter
// matches everything.
func (b *Broker) subscriptionFilter(group, topic string, sysFlag int32, expr, exprType string) (store.Filter, error) {
	if sysFlag&pullHasSubscription == 0 {
		sub, ok := b.clients.subscription(group, topic)
		if !ok {
			return nil, nil
		}
		expr, exprType = sub.SubString, sub.ExpressionType
	}
	return b.filterFor(expr, exprType)
}

// filterFor builds the filter of one subscription expression.
func (b *Broker) filterFor(expr, exprType string) (store.Filter, error) {
	switch exprType {
	case "", protocol.ExpressionTag:
		if f := newTagFilter(expr); f != nil {
			return f, nil
		}
		return nil, nil
	case protocol.ExpressionSQL92:
		if !b.cfg.EnablePropertyFilter {
			return nil, fmt.Errorf("the broker %s does not filter by SQL92: set enablePropertyFilter=true", b.cfg.BrokerName)
		}
		e, err := b.sql.compile(expr)
		if err != nil {
			return nil, fmt.Errorf("the SQL92 expression %q does not parse: %w", expr, err)
		}
		return sqlFilter{e}, nil
	}
	return nil, fmt.Errorf("unknown expression type %q: want TAG or SQL92", exprType)
}
